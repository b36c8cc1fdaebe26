"""Every API.md event type is emitted by the code that causes it: one test per type, each driving the
real cause (API call, Meta webhook through the receive road, dispatcher, inbox, campaign services) and
proving it appends exactly one event of that type, which the outbound dispatcher turns into exactly
one delivery for a subscription to "*"."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import transaction

from apps.core.events import public_event_types
from apps.core.models import Event, Membership, User
from apps.webhooks import ssrf
from apps.webhooks.models import WebhookDelivery
from apps.webhooks.services import outbound
from tests.webhooks.inbound_support import (
    META_WABA_ID,
    connect_number,
    deliver,
    fixture,
    status,
    status_payload,
)

pytestmark = pytest.mark.django_db
T0 = 1750263700
COVERED: set[str] = set()


@pytest.fixture(autouse=True)
def public_dns(monkeypatch):
    monkeypatch.setattr(ssrf, "resolve_host", lambda host, port: ["93.184.216.34"])


def _subscribe(workspace):
    return outbound.subscription_create(workspace=workspace, url="https://hooks.example.com/reach", events=["*"])[0]


def exactly_one(event_type: str, workspace, cause: Callable[[], object]) -> Event:
    """Run the cause; exactly one `event_type` event appears in `workspace`, and fan-out makes exactly
    one delivery of it for the "*" subscription."""
    COVERED.add(event_type)
    sub = _subscribe(workspace)
    before = set(Event.objects.filter(type=event_type).values_list("id", flat=True))
    cause()
    new = Event.objects.filter(type=event_type).exclude(id__in=before)
    assert new.count() == 1, f"{event_type}: {new.count()} events"
    event = new.get()
    assert event.workspace_id == workspace.pk
    outbound.events_fan_out()
    deliveries = WebhookDelivery.objects.filter(subscription=sub, event_type=event_type)
    assert list(deliveries.values_list("event_id", flat=True)) == [event.id]
    return event


@pytest.fixture
def number(workspace):
    return connect_number(workspace)


def _outbound_message(workspace, number, wamid: str, status_: str = "sent"):
    from apps.conversations.models import Message

    return Message.objects.create(workspace=workspace, phone_number=number, type="text", direction="outbound",
                                  status=status_, provider_message_id=wamid, to_phone="+16505551234")


def _sandbox_inbound(sandbox_api, body: str = "Hi there", phone: str = "+16505551234"):
    from apps.webhooks.services import inbound

    response = sandbox_api.post("/api/v1/sandbox/inbound", {"from": phone, "type": "text", "text": {"body": body},
                                                            "name": "Ana"}, format="json")
    assert response.status_code == 202, response.content
    inbound.inbound_webhooks_sweep()
    return response.json()


# --- messages ------------------------------------------------------------------------------------


def test_message_inbound(workspace, sandbox_api):
    event = exactly_one("message.inbound", workspace.sandbox, lambda: _sandbox_inbound(sandbox_api))
    assert event.data["message_id"].startswith("msg_")


def test_message_sent_by_the_dispatcher(workspace, sandbox_api):
    from apps.conversations.models import Message
    from apps.conversations.services import dispatch

    _sandbox_inbound(sandbox_api)  # opens the 24 h window
    response = sandbox_api.post("/api/v1/messages", {"to": "+16505551234", "type": "text",
                                                     "text": {"body": "Thanks!"}}, format="json")
    assert response.status_code == 202, response.content
    message = Message.objects.get(pk=response.json()["id"])

    event = exactly_one("message.sent", workspace.sandbox,
                        lambda: dispatch.dispatch_drain(phone_number_id=message.phone_number_id))
    assert event.data["message_id"] == message.pk


def test_message_status_changed(workspace, number):
    _outbound_message(workspace, number, "wamid.SC1", "sent")
    event = exactly_one("message.status_changed", workspace,
                        lambda: deliver(status_payload([status("wamid.SC1", "delivered", T0)])))
    assert (event.data["previous_status"], event.data["status"]) == ("sent", "delivered")


def test_message_delivered(workspace, number):
    _outbound_message(workspace, number, "wamid.D1", "sent")
    exactly_one("message.delivered", workspace,
                lambda: deliver(status_payload([status("wamid.D1", "delivered", T0)])))


def test_message_read(workspace, number):
    _outbound_message(workspace, number, "wamid.R1", "delivered")
    exactly_one("message.read", workspace, lambda: deliver(status_payload([status("wamid.R1", "read", T0)])))


def test_message_failed(workspace, number):
    _outbound_message(workspace, number, "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA", "sent")
    exactly_one("message.failed", workspace, lambda: deliver(fixture("status_failed.json")))


# --- conversations -------------------------------------------------------------------------------


def _conversation(workspace, sandbox_api):
    from apps.conversations.models import Conversation

    _sandbox_inbound(sandbox_api)
    return Conversation.objects.get(workspace=workspace.sandbox)


def test_conversation_assigned(workspace, sandbox_api):
    from apps.conversations.services.inbox import conversation_update

    conversation = _conversation(workspace, sandbox_api)
    agent = User.objects.create_user(username="agent", password="x")
    Membership.objects.create(workspace=workspace, user=agent, role=Membership.Role.AGENT)
    event = exactly_one("conversation.assigned", workspace.sandbox,
                        lambda: conversation_update(conversation=conversation, actor=None, assigned_user_id=agent.pk))
    assert event.data["assigned_user_id"] == agent.pk


def test_conversation_status_changed(workspace, sandbox_api):
    from apps.conversations.services.inbox import conversation_update

    conversation = _conversation(workspace, sandbox_api)
    event = exactly_one("conversation.status_changed", workspace.sandbox,
                        lambda: conversation_update(conversation=conversation, actor=None, state="resolved"))
    assert event.data["state"] == "resolved"


# --- contacts ------------------------------------------------------------------------------------


def _contact(workspace):
    from apps.contacts.services import contact_upsert_by_phone

    return contact_upsert_by_phone(workspace=workspace, phone="+16505551234", name="Ana")


def test_contact_opted_out_by_stop_word(workspace, sandbox_api):
    _sandbox_inbound(sandbox_api, body="Hello")
    event = exactly_one("contact.opted_out", workspace.sandbox, lambda: _sandbox_inbound(sandbox_api, body="STOP"))
    assert event.data["opted_in"] is False


def test_contact_opted_in(workspace):
    from apps.contacts.services import consent_record

    contact = _contact(workspace)
    consent_record(contact=contact, status="opt_out", source="api")
    event = exactly_one("contact.opted_in", workspace,
                        lambda: consent_record(contact=contact, status="opt_in", source="api"))
    assert event.data["contact_id"] == contact.pk


# --- templates and numbers -----------------------------------------------------------------------


def test_template_status_changed(workspace, number):
    from apps.message_templates.models import MessageTemplate

    MessageTemplate.objects.create(workspace=workspace, waba=number.waba, name="abandoned_cart", language="en",
                                   category="MARKETING", status="PENDING", meta_template_id="1689556908129835")
    event = exactly_one("template.status_changed", workspace, lambda: deliver(fixture("template_rejected.json")))
    assert event.data["status"] == "REJECTED"


def test_phone_number_quality_changed(workspace, number):
    payload = {"object": "whatsapp_business_account", "entry": [{"id": META_WABA_ID, "changes": [{
        "field": "phone_number_quality_update",
        "value": {"display_phone_number": "15550783881", "event": "THROUGHPUT_UPGRADE",
                  "current_limit": "TIER_10K", "old_limit": "TIER_1K"}}]}]}
    event = exactly_one("phone_number.quality_changed", workspace, lambda: deliver(payload))
    assert event.data["messaging_tier"] == "TIER_10K"


# --- campaigns -----------------------------------------------------------------------------------


def test_campaign_completed(workspace, settings):
    from apps.campaigns import services as campaigns
    from apps.conversations.models import Message
    from apps.core.models import API_SCOPES
    from apps.core.tenancy import Tenant
    from tests.campaigns.factories import make_contacts, make_number, make_template, set_status

    settings.CAMPAIGN_BATCH_SIZE = 3
    settings.CAMPAIGN_MIN_IN_FLIGHT = 3
    settings.CAMPAIGN_IN_FLIGHT_SECONDS = 0
    tenant = Tenant(workspace=workspace, scopes=frozenset(API_SCOPES))
    number = make_number(workspace)
    make_template(number)
    make_contacts(workspace, 4)
    audience = campaigns.audience_create(workspace=workspace, name="all", filter={})
    campaign = campaigns.campaign_create(tenant=tenant, data={
        "name": "c", "template": {"name": "promo", "language": "en"}, "audience_id": audience.pk,
        "phone_number_id": number.pk, "variables": {"1": "{{contact.name|there}}", "2": "Reach"}})
    campaigns.campaign_start(campaign=campaign)

    def run_to_completion():
        for _ in range(10):
            result = campaigns.campaign_step(campaign_id=campaign.pk)
            set_status(Message.objects.filter(campaign_id=campaign.pk, status="queued").values_list("pk", flat=True),
                       "sent")
            if result == "completed":
                return
        raise AssertionError("campaign never completed")

    event = exactly_one("campaign.completed", workspace, run_to_completion)
    assert event.data["campaign_id"] == campaign.pk


def test_wallet_topped_up(workspace):
    from apps.billing import services as billing

    event = exactly_one("wallet.topped_up", workspace,
                        lambda: billing.wallet_topup(workspace=workspace, amount="12.5", note="invoice 12"))
    assert (event.data["kind"], event.data["amount"], event.data["note"]) == ("topup", "12.5000", "invoice 12")


def test_wallet_low_balance(workspace):
    from apps.billing import services as billing

    wallet = billing.wallet_get_or_create(workspace=workspace)
    billing.wallet_settings_update(workspace=workspace, low_balance_threshold=wallet.balance - 1)

    def spend():
        with transaction.atomic():
            billing.wallet_reserve(workspace=workspace, amount="2")

    event = exactly_one("wallet.low_balance", workspace, spend)
    assert event.data["reserved"] == "2.0000"


def test_link_clicked(workspace, client):
    from apps.links.services import links_create

    [link] = links_create(workspace_id=workspace.pk, items=[{"code": "c" * 22, "url": "https://shop.example/"}])
    event = exactly_one("link.clicked", workspace, lambda: client.get("/l/" + "c" * 22))
    assert (event.data["link_id"], event.data["clicks"], event.data["first_click"]) == (link.pk, 1, True)


def test_contact_merged_when_meta_ties_a_phone_to_a_bsuid(workspace, number):
    import copy

    from apps.contacts.models import Contact

    phone_contact = Contact.objects.create(workspace=workspace, phone="+16505551234")
    deliver(fixture("inbound_bsuid_no_from.json"))  # a second row, keyed by the BSUID
    both = copy.deepcopy(fixture("inbound_bsuid_no_from.json"))
    value = both["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = "16505551234"
    value["messages"][0].update({"id": "wamid.MERGE1", "from": "16505551234"})
    event = exactly_one("contact.merged", workspace, lambda: deliver(both))
    assert event.data["contact_id"] == phone_contact.pk


def test_link_clicked_from_meta_click_tracking(workspace, number):
    message = _outbound_message(workspace, number, "wamid.CLICK1", "delivered")
    payload = fixture("mm_link_click.json")
    payload["entry"][0]["changes"][0]["value"]["user_actions"][0]["id"] = "wamid.CLICK1"
    event = exactly_one("link.clicked", workspace, lambda: deliver(payload))
    assert (event.data["message_id"], event.data["source"]) == (message.pk, "meta")


def test_every_api_event_type_has_a_test_here():
    import sys

    module = sys.modules[__name__]
    names = {n for n in dir(module) if n.startswith("test_")}
    for event_type in public_event_types():
        stem = "test_" + event_type.replace(".", "_")
        assert any(n.startswith(stem) for n in names), f"no test for {event_type}"
