"""Campaigns under marketing_requires_opt_in: a contact without an opt-in row is skipped and counted
(`skipped_not_opted_in`), apart from opted-out ones, in the expansion, in both hand-out forms (set-based SQL
on PostgreSQL, recipient by recipient elsewhere) and in the preflight."""

import pytest
from django.db import connection, transaction

from apps.campaigns import selectors, services
from apps.campaigns.models import CampaignRecipient
from apps.contacts import services as contacts
from apps.contacts.models import Contact
from apps.conversations.models import Message

pytestmark = pytest.mark.django_db

VARS = {"1": "{{contact.name}}", "2": "Reach"}
FORMS = [pytest.param(True, id="sql", marks=pytest.mark.skipif(connection.vendor != "postgresql",
                                                               reason="the set-based hand-out is PostgreSQL's")),
         pytest.param(False, id="python")]


def _people(workspace):
    opted_in = Contact.objects.create(workspace=workspace, phone="+447700900001", name="In")
    silent = Contact.objects.create(workspace=workspace, phone="+447700900002", name="Never said")
    opted_out = Contact.objects.create(workspace=workspace, phone="+447700900003", name="Out")
    with transaction.atomic():
        contacts.consent_record(contact=opted_in, status="opt_in", source="api")
        contacts.consent_record(contact=opted_out, status="opt_out", source="api")
    return opted_in, silent, opted_out


def _campaign(tenant, number):
    audience = services.audience_create(workspace=tenant.workspace, name="aud", filter={})
    return services.campaign_create(tenant=tenant, data={
        "name": "c", "template": {"name": "promo", "language": "en"}, "audience_id": audience.pk,
        "phone_number_id": number.pk, "variables": VARS})


def _requires(workspace, on: bool):
    workspace.settings = {**workspace.settings, "marketing_requires_opt_in": on}
    workspace.save(update_fields=["settings"])


@pytest.mark.parametrize("sql", FORMS)
def test_contacts_without_an_opt_in_are_skipped_and_counted(tenant, workspace, number, template, settings, sql):
    settings.CAMPAIGN_HAND_OUT_SQL = sql
    opted_in, silent, opted_out = _people(workspace)
    campaign = _campaign(tenant, number)
    preflight = services.campaign_preflight(campaign=campaign)
    assert (preflight["recipients"], preflight["skipped"]["not_opted_in"], preflight["skipped"]["opted_out"]) == (
        1, 1, 1)
    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)
    statuses = dict(CampaignRecipient.objects.filter(campaign=campaign).values_list("contact_id", "status"))
    assert statuses == {opted_in.pk: "queued", silent.pk: "skipped_not_opted_in", opted_out.pk: "skipped_opted_out"}
    assert list(Message.objects.filter(campaign_id=campaign.pk).values_list("contact_id", flat=True)) == [opted_in.pk]
    stats = selectors.campaign_stats(campaign=campaign)
    assert (stats["total"], stats["skipped_not_opted_in"], stats["skipped_opted_out"]) == (3, 1, 1)


@pytest.mark.parametrize("sql", FORMS)
def test_the_hand_out_applies_the_rule_as_it_stands_when_it_runs(tenant, workspace, number, template, settings, sql):
    """Expanded while the workspace did not require an opt-in, handed out after it turned it on: the hand-out
    (either form) asks consent_refuses again and skips the contact with no row."""
    settings.CAMPAIGN_HAND_OUT_SQL = sql
    _requires(workspace, False)
    opted_in, silent, opted_out = _people(workspace)
    campaign = _campaign(tenant, number)
    services.campaign_materialize(campaign=campaign)
    assert CampaignRecipient.objects.get(campaign=campaign, contact=silent).status == "pending"
    _requires(workspace, True)
    services.campaign_start(campaign=campaign)
    services.campaign_step(campaign_id=campaign.pk)
    statuses = dict(CampaignRecipient.objects.filter(campaign=campaign).values_list("contact_id", "status"))
    assert statuses == {opted_in.pk: "queued", silent.pk: "skipped_not_opted_in", opted_out.pk: "skipped_opted_out"}
    assert Message.objects.filter(campaign_id=campaign.pk).count() == 1
