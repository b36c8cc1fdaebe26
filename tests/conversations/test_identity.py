"""API.md "Identity": customers known by a business-scoped user id (BSUID) — inbound through /webhooks/meta
and the simulator, replies by `recipient` (the Graph request fakemeta receives), parent BSUID and username
on the contact, the merge of a phone contact and a BSUID contact, and authentication templates refused for
a BSUID with a clear 422."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.contacts.models import ConsentRecord, Contact, ContactTag
from apps.conversations import policy
from apps.conversations.models import Conversation, Message
from apps.conversations.services import dispatch
from apps.core.models import Event
from apps.providers import registry
from apps.providers.simulator.testing import start_fakemeta_in_thread
from apps.webhooks.models import InboundWebhook
from apps.webhooks.services import inbound
from tests.conversations.send_support import live_number, redis_keys_clear, template
from tests.webhooks.inbound_support import META_PHONE_ID, META_WABA_ID, deliver, fixture, signed_post

pytestmark = pytest.mark.django_db

BSUID, PARENT = "US.13491208655302741918", "US.ENT.99"


def _through_endpoint(payload: dict):
    """POST the payload to /webhooks/meta, signed like Meta, then process the stored row as the task does."""
    response = signed_post(Client(), payload)
    assert response.status_code == 200
    row = InboundWebhook.objects.order_by("-pk").first()
    outcome = inbound.inbound_webhook_process(webhook_id=row.pk)
    assert outcome.status == "processed", outcome.error
    return outcome


def _both_ids_payload(*, wamid: str, wa_id: str = "16505551234", username: str = "ana.w") -> dict:
    payload = copy.deepcopy(fixture("inbound_bsuid_no_from.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = wa_id
    value["contacts"][0]["profile"]["username"] = username
    value["messages"][0].update({"id": wamid, "from": wa_id})
    return payload


@pytest.fixture
def number(workspace):
    return live_number(workspace)


def test_bsuid_only_inbound_through_the_endpoint_keeps_parent_and_username(workspace, number):
    _through_endpoint(fixture("inbound_bsuid_no_from.json"))
    contact = Contact.objects.get(workspace=workspace)
    assert (contact.phone, contact.bsuid, contact.parent_bsuid, contact.username, contact.name) == (
        None, BSUID, PARENT, "ana.w", "Ana")
    event = Event.objects.get(type="message.inbound")
    assert event.data["from"] == BSUID
    assert event.data["contact"] == {"id": contact.pk, "phone": None, "wa_id": None, "bsuid": BSUID, "name": "Ana",
                                     "parent_bsuid": PARENT, "username": "ana.w"}


def test_contacts_api_shows_and_finds_a_contact_without_phone(workspace, number, live_api):
    deliver(fixture("inbound_bsuid_no_from.json"))
    contact = Contact.objects.get()
    got = live_api.get(f"/api/v1/contacts/{contact.pk}").json()
    assert (got["phone"], got["bsuid"], got["parent_bsuid"], got["username"]) == (None, BSUID, PARENT, "ana.w")
    assert [c["id"] for c in live_api.get("/api/v1/contacts", {"bsuid": BSUID}).json()["data"]] == [contact.pk]
    assert [c["id"] for c in live_api.get("/api/v1/contacts", {"search": "@ana.w"}).json()["data"]] == [contact.pk]
    assert live_api.get("/api/v1/contacts", {"bsuid": "US.999"}).json()["data"] == []


def test_reply_by_recipient_is_stored_for_the_bsuid_contact(workspace, number, live_api):
    deliver(fixture("inbound_bsuid_no_from.json"))
    contact = Contact.objects.get()
    Contact.objects.filter(pk=contact.pk).update(last_inbound_at=timezone.now())
    r = live_api.post("/api/v1/messages", {"recipient": BSUID, "text": {"body": "Hello Ana"}}, format="json")
    assert r.status_code == 202, r.content
    body = r.json()
    assert (body["to"], body["recipient"]) == (None, BSUID)
    m = Message.objects.get(pk=body["id"])
    assert (m.to_phone, m.contact_id, m.conversation.contact_id) == (BSUID, contact.pk, contact.pk)
    assert Conversation.objects.filter(contact=contact).count() == 1  # the inbound's conversation, reused
    assert live_api.get(f"/api/v1/messages/{m.pk}").json()["recipient"] == BSUID


@pytest.mark.parametrize("bad", ["13491208655302741918", "us.123", "US.", "US.12-3"])
def test_a_malformed_recipient_is_400_naming_the_field(workspace, number, live_api, bad):
    r = live_api.post("/api/v1/messages", {"recipient": bad, "text": {"body": "x"}}, format="json")
    assert r.status_code == 400
    assert r.json()["error"]["details"]["field"] == "recipient"
    assert not Message.objects.exists() and not Contact.objects.exists()


def test_authentication_template_to_a_bsuid_is_a_clear_422_nothing_written(workspace, number, live_api):
    deliver(fixture("inbound_bsuid_no_from.json"))
    template(workspace, number.waba, name="login_code", category="AUTHENTICATION", body="{{1}} is your code.")
    before = Event.objects.count()
    r = live_api.post("/api/v1/messages", {"recipient": BSUID, "template": {
        "name": "login_code", "language": "en", "variables": ["123456"]}}, format="json")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "RECIPIENT_PHONE_REQUIRED"
    assert r.json()["error"]["details"]["field"] == "recipient"
    assert Message.objects.filter(direction="outbound").count() == 0 and Event.objects.count() == before
    # The same template to a phone goes.
    assert policy.recipient_classify(phone=BSUID, opted_in=True, requires_opt_in=True, category="AUTHENTICATION",
                                     missing_variable=False) == policy.INVALID_NUMBER
    assert policy.recipient_classify(phone=BSUID, opted_in=True, requires_opt_in=True, category="MARKETING",
                                     missing_variable=False) is None


def test_phone_and_bsuid_contacts_of_one_person_are_merged(workspace, number):
    phone_contact = Contact.objects.create(workspace=workspace, phone="+16505551234", name="Ana Phone",
                                           custom_fields={"city": "Lisbon"})
    ConsentRecord.objects.create(workspace=workspace, contact=phone_contact, status="opt_in", source="api")
    deliver(fixture("inbound_bsuid_no_from.json"))  # a BSUID-only row for the same person, with a message
    split = Contact.objects.get(bsuid=BSUID)
    ContactTag.objects.create(workspace=workspace, contact=split, name="vip")
    first = Message.objects.get()
    _through_endpoint(_both_ids_payload(wamid="wamid.BOTH1"))  # Meta now names both: one person
    assert list(Contact.objects.filter(workspace=workspace).values_list("pk", flat=True)) == [phone_contact.pk]
    phone_contact.refresh_from_db()
    assert (phone_contact.phone, phone_contact.bsuid, phone_contact.parent_bsuid, phone_contact.username,
            phone_contact.name, phone_contact.custom_fields) == (
        "+16505551234", BSUID, PARENT, "ana.w", "Ana Phone", {"city": "Lisbon"})
    assert list(phone_contact.tag_rows.values_list("name", flat=True)) == ["vip"]
    msgs = Message.objects.order_by("created_at")
    assert [m.contact_id for m in msgs] == [phone_contact.pk, phone_contact.pk]
    assert len({m.conversation_id for m in msgs}) == 1  # one open conversation per contact and number
    assert Conversation.objects.get().contact_id == phone_contact.pk
    first.refresh_from_db()
    assert first.conversation.unread_count == 2
    merged = Event.objects.get(type="contact.merged")
    assert merged.data == {"contact_id": phone_contact.pk, "merged_contact_id": split.pk, "phone": "+16505551234",
                           "bsuid": BSUID, "parent_bsuid": PARENT, "username": "ana.w", "reason": "inbound"}
    # A repeat of the same webhook neither merges nor writes again.
    deliver(_both_ids_payload(wamid="wamid.BOTH1"))
    assert Event.objects.filter(type="contact.merged").count() == 1 and Message.objects.count() == 2


def test_a_bsuid_contact_that_gains_a_phone_is_not_a_merge(workspace, number):
    deliver(fixture("inbound_bsuid_no_from.json"))
    deliver(_both_ids_payload(wamid="wamid.BOTH2"))
    contact = Contact.objects.get()
    assert (contact.phone, contact.bsuid) == ("+16505551234", BSUID)
    assert not Event.objects.filter(type="contact.merged").exists()


# --- the simulator and fakemeta -------------------------------------------------------------------------


def test_sandbox_inbound_by_bsuid_then_reply_by_recipient(workspace, sandbox_api):
    r = sandbox_api.post("/api/v1/sandbox/inbound", {"from_user_id": BSUID, "parent_user_id": PARENT,
                                                     "username": "ana.w", "text": {"body": "hi"}}, format="json")
    assert r.status_code == 202, r.content
    inbound.inbound_webhooks_sweep()
    contact = Contact.objects.get(workspace=workspace.sandbox)
    assert (contact.phone, contact.bsuid, contact.parent_bsuid, contact.username) == (None, BSUID, PARENT, "ana.w")
    r = sandbox_api.post("/api/v1/messages", {"recipient": BSUID, "text": {"body": "Hello"}}, format="json")
    assert r.status_code == 202, r.content
    m = Message.objects.get(pk=r.json()["id"])
    dispatch.dispatch_drain(phone_number_id=m.phone_number_id, budget_seconds=3)
    inbound.inbound_webhooks_sweep()
    m.refresh_from_db()
    assert m.status in ("sent", "delivered", "read") and m.provider_message_id.startswith("wamid.")


def test_the_graph_request_names_the_bsuid_as_recipient(workspace, settings):
    redis_keys_clear()
    fake = start_fakemeta_in_thread(app_secret=settings.META_APP_SECRET, pair_limit_enabled=False)
    try:
        fake.register_number(phone_number_id=META_PHONE_ID, waba_id=META_WABA_ID, display_phone_number="15550783881")
        fake.inject_inbound(phone_number_id=META_PHONE_ID, from_phone=None, bsuid=BSUID, text="hi")  # its window
        settings.META_GRAPH_URL = fake.base_url
        registry.reset_for_tests()
        number = live_number(workspace)
        contact = Contact.objects.create(workspace=workspace, bsuid=BSUID,
                                         last_inbound_at=timezone.now() - timedelta(minutes=1))
        from apps.conversations.services.sending import message_send_internal

        m = message_send_internal(workspace=workspace, phone_number=number, contact=contact, message_type="text",
                                  content={"body": "Hello"}, sent_by="api")
        dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=3)
        m.refresh_from_db()
        assert m.status == "sent", (m.error_code, m.error_message)
        [request] = fake.requests("/messages")
        assert request["path"] == f"/{settings.META_GRAPH_VERSION}/{META_PHONE_ID}/messages"
        assert request["body"] == {"messaging_product": "whatsapp", "recipient_type": "individual",
                                   "recipient": BSUID, "type": "text", "text": {"body": "Hello"},
                                   **({"biz_opaque_callback_data": request["body"]["biz_opaque_callback_data"]}
                                      if "biz_opaque_callback_data" in request["body"] else {})}
        assert fake.wait_for(lambda: any(s.get("recipient_user_id") == BSUID for s in fake.delivered_statuses()))
        assert not any("recipient_id" in s for s in fake.delivered_statuses())
    finally:
        fake.stop()
        registry.reset_for_tests()
