"""A merge of a phone contact and a BSUID contact (one person, API.md Identity) keeps every row of the absorbed
contact: campaign recipients, list-audience memberships, tracked links and report contact-days move to the
survivor through /webhooks/meta, keeping one row where a unique constraint allows one (one recipient per
campaign per contact: the one whose message exists, else the one still waiting, else the survivor's). And a
guard: every model that points at a contact is one the merge handles."""

from __future__ import annotations

from datetime import date

import pytest
from django.apps import apps

from apps.campaigns.models import Audience, AudienceMember, Campaign, CampaignRecipient
from apps.contacts.models import Contact, SocialIdentity
from apps.conversations.models import Message
from apps.links.models import TrackedLink
from apps.reports.models import ContactMonth
from apps.wabas.models import SocialAccount
from tests.conversations.send_support import live_number, template
from tests.conversations.test_identity import BSUID, _both_ids_payload, _through_endpoint
from tests.webhooks.inbound_support import deliver, fixture

pytestmark = pytest.mark.django_db

R = CampaignRecipient.Status

# Every contact-pointing field and who moves it on a merge (a new one must be added here and to a merger).
HANDLED = {
    ("contacts.ContactTag", "contact"): "contacts.contact_absorb (tags copied)",
    ("contacts.ConsentRecord", "contact"): "contacts.contact_absorb (the latest state carried over)",
    ("contacts.SocialIdentity", "contact"): "contacts.contact_absorb (Messenger / Instagram ids move)",
    ("conversations.Conversation", "contact"): "conversations.identity.contact_merge",
    ("conversations.Message", "contact"): "conversations.identity.contact_merge",
    ("campaigns.AudienceMember", "contact"): "campaigns.services.merge",
    ("campaigns.CampaignRecipient", "contact"): "campaigns.services.merge",
    ("links.TrackedLink", "contact_id"): "links.services.links_contact_merge",
    ("reports.ContactMonth", "contact_id"): "reports.services.contact_months_merge",
}


def test_every_field_that_points_at_a_contact_is_moved_by_the_merge():
    found = set()
    for model in apps.get_models():
        for f in model._meta.concrete_fields:
            if getattr(f, "related_model", None) is Contact or (f.name == "contact_id" and not f.is_relation):
                found.add((model._meta.label, f.name))
    assert found == set(HANDLED)


def _campaign(workspace, number, tpl, audience, name):
    return Campaign.objects.create(workspace=workspace, name=name, audience=audience, phone_number=number,
                                   template=tpl, template_name=tpl.name, template_language=tpl.language)


def _message(workspace, number, contact, campaign):
    return Message.objects.create(workspace=workspace, phone_number=number, contact=contact, type="template",
                                  status="sent", to_phone=contact.phone or contact.bsuid, campaign_id=campaign.pk)


def test_merge_moves_campaign_rows_memberships_links_and_days_keeping_one_per_campaign(workspace):
    number = live_number(workspace)
    tpl = template(workspace, number.waba)
    person = Contact.objects.create(workspace=workspace, phone="+16505551234", name="Ana Phone")
    deliver(fixture("inbound_bsuid_no_from.json"))  # the same person, known only by BSUID so far
    split = Contact.objects.get(bsuid=BSUID)
    both, only_split = (Audience.objects.create(workspace=workspace, name=n, kind="list") for n in ("both", "split"))
    AudienceMember.objects.bulk_create([AudienceMember(audience=both, contact=person),
                                        AudienceMember(audience=both, contact=split),
                                        AudienceMember(audience=only_split, contact=split)])
    sent_to_split, sent_to_person, skipped, waiting = (
        _campaign(workspace, number, tpl, both, n) for n in ("c1", "c2", "c3", "c4"))
    m1 = _message(workspace, number, split, sent_to_split)
    m2 = _message(workspace, number, person, sent_to_person)
    CampaignRecipient.objects.bulk_create([
        # c1: the BSUID row has its message, the phone row waits -> the BSUID row stays (no second send)
        CampaignRecipient(campaign=sent_to_split, contact=person, status=R.PENDING),
        CampaignRecipient(campaign=sent_to_split, contact=split, status=R.QUEUED, message=m1),
        # c2: the phone row has its message -> it stays
        CampaignRecipient(campaign=sent_to_person, contact=person, status=R.QUEUED, message=m2),
        CampaignRecipient(campaign=sent_to_person, contact=split, status=R.PENDING),
        # c3: only the BSUID row -> moved as it is
        CampaignRecipient(campaign=skipped, contact=split, status=R.SKIPPED_NOT_OPTED_IN),
        # c4: a finished skip against a waiting row -> the waiting row stays (classified again at hand-out)
        CampaignRecipient(campaign=waiting, contact=person, status=R.SKIPPED_INVALID),
        CampaignRecipient(campaign=waiting, contact=split, status=R.PENDING),
    ])
    link = TrackedLink.objects.create(workspace=workspace, code="abc123", url="https://example.com/x",
                                      message_id=m1.pk, campaign_id=sent_to_split.pk, contact_id=split.pk)
    month = {"workspace": workspace, "month": date(2026, 12, 1), "direction": "outbound",
             "phone_number_id": number.pk, "campaign_id": sent_to_split.pk}
    ContactMonth.objects.create(contact_id=person.pk, days=0b01, **month)  # 1 December
    ContactMonth.objects.create(contact_id=split.pk, days=0b10, **month)  # 2 December, same dimensions: one row
    ContactMonth.objects.create(contact_id=split.pk, days=0b1, **{**month, "month": date(2026, 11, 1)})
    page = SocialAccount.objects.create(workspace=workspace, channel="messenger", page_id="1234567890")
    psid = SocialIdentity.objects.create(workspace=workspace, account=page, user_id="24681357", contact=split)

    _through_endpoint(_both_ids_payload(wamid="wamid.MERGE1"))  # Meta names both ids: one person

    assert list(Contact.objects.filter(workspace=workspace).values_list("pk", flat=True)) == [person.pk]
    rows = {r.campaign_id: r for r in CampaignRecipient.objects.all()}
    assert set(rows) == {sent_to_split.pk, sent_to_person.pk, skipped.pk, waiting.pk}  # one per campaign
    assert all(r.contact_id == person.pk for r in rows.values())
    assert (rows[sent_to_split.pk].status, rows[sent_to_split.pk].message_id) == (R.QUEUED, m1.pk)
    assert (rows[sent_to_person.pk].status, rows[sent_to_person.pk].message_id) == (R.QUEUED, m2.pk)
    assert rows[skipped.pk].status == R.SKIPPED_NOT_OPTED_IN
    assert rows[waiting.pk].status == R.PENDING
    assert sorted(AudienceMember.objects.values_list("audience__name", "contact_id")) == [
        ("both", person.pk), ("split", person.pk)]
    link.refresh_from_db()
    assert link.contact_id == person.pk
    assert sorted(ContactMonth.objects.values_list("month", "contact_id", "days")) == [
        (date(2026, 11, 1), person.pk, 0b1), (date(2026, 12, 1), person.pk, 0b11)]
    psid.refresh_from_db()
    assert psid.contact_id == person.pk  # the person's Messenger id stays theirs
