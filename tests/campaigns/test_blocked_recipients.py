"""Campaign hand-out skips a contact the business blocked (Meta's block_users; contacts.contact_block_set
records blocked_at): the recipient is written `skipped_blocked`, counted in the stats and the preflight, and no
message is made — in both hand-out forms (set-based SQL on PostgreSQL, recipient by recipient elsewhere)."""

import pytest
from django.utils import timezone

from apps.campaigns import selectors, services
from apps.campaigns.models import CampaignRecipient
from apps.contacts.models import Contact
from apps.contacts.services import consent_record
from apps.conversations import policy
from apps.conversations.models import Message

pytestmark = pytest.mark.django_db


def test_recipient_classify_puts_blocked_after_the_number_and_before_consent():
    kw = {"requires_opt_in": True, "category": "MARKETING", "missing_variable": True}
    assert policy.recipient_classify(phone="+447700900001", opted_in=False, blocked=True, **kw) == policy.BLOCKED
    assert policy.recipient_classify(phone=None, opted_in=True, blocked=True, **kw) == policy.INVALID_NUMBER
    assert policy.recipient_classify(phone="+447700900001", opted_in=True, blocked=False, **kw) == \
        policy.MISSING_VARIABLE


def test_a_contact_blocked_after_expansion_is_skipped_with_its_reason(tenant, workspace, number, template, hand_out):
    people = [Contact.objects.create(workspace=workspace, phone=f"+44770090010{i}", name=f"P{i}") for i in range(3)]
    for person in people:
        consent_record(contact=person, status="opt_in", source="api")
    audience = services.audience_create(workspace=workspace, name="aud", filter={})
    campaign = services.campaign_create(tenant=tenant, data={
        "name": "c", "template": {"name": "promo", "language": "en"}, "audience_id": audience.pk,
        "phone_number_id": number.pk, "variables": {"1": "{{contact.name}}", "2": "Reach"}})
    services.campaign_materialize(campaign=campaign)
    blocked = people[1]
    Contact.objects.filter(pk=blocked.pk).update(blocked_at=timezone.now())  # what contact_block_set records
    preflight = services.campaign_preflight(campaign=campaign)
    assert (preflight["recipients"], preflight["skipped"]["blocked"]) == (2, 1)
    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)
    statuses = dict(CampaignRecipient.objects.filter(campaign=campaign).values_list("contact_id", "status"))
    assert statuses == {people[0].pk: "queued", blocked.pk: "skipped_blocked", people[2].pk: "queued"}
    assert set(Message.objects.filter(campaign_id=campaign.pk).values_list("contact_id", flat=True)) == {
        people[0].pk, people[2].pk}
    stats = selectors.campaign_stats(campaign=campaign)
    assert (stats["total"], stats["skipped_blocked"]) == (3, 1)
