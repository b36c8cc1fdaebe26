"""SMS end to end over real sockets: POST /api/v1/messages (channel sms) -> dispatcher -> the Twilio
adapter -> faketwilio -> signed status callbacks to the live server -> sent, delivered; the price fetched
from the message resource; inbound SMS and STOP through the signed inbound webhook; forged callbacks refused."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import requests

from apps.contacts.models import Contact
from apps.conversations.models import Conversation, Message
from apps.conversations.services.dispatch import dispatch_drain
from apps.conversations.tasks import sms as sms_tasks
from apps.core import services as core_services
from apps.core.models import Event
from apps.providers.sms.twilio import twilio_signature
from tests.sms.conftest import AUTH_TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DISPLAY, CUSTOMER = "+15550783881", "+16505551234"


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def live(live_server, twilio_settings, monkeypatch):
    from apps.wabas.services import waba_connect

    twilio_settings.REACH_PUBLIC_URL = live_server.url
    workspace = core_services.workspace_create(name="SMS", slug="sms-e2e")
    number = waba_connect(workspace=workspace, meta_waba_id="880000000000011", phone_number_id="990000000000011",
                          display_phone_number=DISPLAY, access_token="EAAG-e2e", name="SMS")
    _, secret = core_services.api_key_create(workspace=workspace, name="e2e", sandbox=False)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {secret}"
    fetches: list[str] = []
    monkeypatch.setattr(sms_tasks.sms_price_fetch_task, "delay", fetches.append)  # the broker is the edge
    return workspace, number, api, fetches


def test_sms_send_receipts_price_inbound_and_stop(live_server, live, faketwilio):
    workspace, number, api, fetches = live
    text = "Olá! Seu código é 1234 ✓ " + "x" * 60  # UCS-2, 86 units: two segments
    r = api.post(f"{live_server.url}/api/v1/messages", json={"to": CUSTOMER, "channel": "sms", "text": {"body": text}},
                 timeout=10)
    assert r.status_code == 202, r.text
    assert r.json()["channel"] == "sms"
    mid = r.json()["id"]
    dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
    assert [(q["To"], q["Body"], q["From"], q["StatusCallback"]) for q in faketwilio.requests] == [
        (CUSTOMER, text, "+15005550006", f"{live_server.url}/webhooks/sms/twilio/status")]
    assert _wait(lambda: Message.objects.get(pk=mid).status == "delivered")
    m = Message.objects.get(pk=mid)
    assert m.provider_message_id.startswith("SM") and m.sms_segments == 2
    assert m.sent_at is not None and m.delivered_at is not None
    # Twilio prices a message once final: the receipt asked for the fetch, the task records it. The receipt's
    # request enqueues it after its commit, so the status can be seen a moment before the fetch is asked for.
    assert _wait(lambda: fetches == [mid]), fetches
    assert sms_tasks.sms_price_fetch_task(mid) is True
    m.refresh_from_db()
    assert (m.sms_price_per_segment, m.sms_price_currency) == (Decimal("0.007900"), "USD")
    assert sms_tasks.sms_price_fetch_task(mid) is False  # recorded once
    kinds = list(Event.objects.filter(workspace=workspace, type__in=["message.sent", "message.delivered"])
                 .values_list("type", flat=True).order_by("sequence"))
    assert kinds == ["message.sent", "message.delivered"]

    # The customer texts back, then STOP: an SMS conversation (no WhatsApp window), and the ledger.
    inbound_url = f"{live_server.url}/webhooks/sms/twilio/inbound"
    assert faketwilio.post_inbound(url=inbound_url, from_phone=CUSTOMER, to_phone=DISPLAY, text="Thanks!") == 200
    assert faketwilio.post_inbound(url=inbound_url, from_phone=CUSTOMER, to_phone=DISPLAY, text="STOP") == 200
    inbound = list(Message.objects.filter(direction="inbound").order_by("created_at").values_list(
        "channel", "body", "conversation__channel_kind"))
    assert inbound == [("sms", "Thanks!", "sms"), ("sms", "STOP", "sms")]
    contact = Contact.objects.get(workspace=workspace, phone=CUSTOMER)
    assert contact.last_inbound_at is None  # an SMS opens no WhatsApp window
    assert Conversation.objects.filter(workspace=workspace, channel_kind="sms").count() == 1
    assert Event.objects.filter(workspace=workspace, type="message.inbound").count() == 2

    # After STOP no SMS goes: refused before anything is stored or sent.
    before = Message.objects.count()
    refused = api.post(f"{live_server.url}/api/v1/messages",
                       json={"to": CUSTOMER, "channel": "sms", "text": {"body": "one more"}}, timeout=10)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "CONTACT_OPTED_OUT"
    assert Message.objects.count() == before and len(faketwilio.requests) == 1


def test_undelivered_sms_fails_with_the_reason(live_server, live, faketwilio):
    workspace, number, api, fetches = live
    r = api.post(f"{live_server.url}/api/v1/messages",
                 json={"to": "+15550003001", "channel": "sms", "text": {"body": "hello"}}, timeout=10)
    dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
    mid = r.json()["id"]
    assert _wait(lambda: Message.objects.get(pk=mid).status == "failed")
    m = Message.objects.get(pk=mid)
    assert (m.error_code, m.sent_at is not None, m.sms_segments) == ("SMS_UNDELIVERABLE", True, 1)
    assert "30003" in m.error_message
    assert Event.objects.filter(workspace=workspace, type="message.failed").count() == 1


def test_forged_or_unknown_callbacks_write_nothing(live_server, live, faketwilio):
    url = f"{live_server.url}/webhooks/sms/twilio/status"
    params = {"MessageSid": "SMnope", "MessageStatus": "delivered"}
    forged = requests.post(url, data=params, headers={"X-Twilio-Signature": "AAAA"}, timeout=5)
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "INVALID_SIGNATURE"
    signed = twilio_signature(auth_token=AUTH_TOKEN, url=url, params=params)
    unknown = requests.post(url, data=params, headers={"X-Twilio-Signature": signed}, timeout=5)
    assert unknown.status_code == 503 and unknown.headers["Retry-After"] == "1"
    inbound_url = f"{live_server.url}/webhooks/sms/twilio/inbound"
    stranger = {"MessageSid": "SMx", "From": CUSTOMER, "To": "+19995550000", "Body": "hi"}
    r = requests.post(inbound_url, data=stranger, timeout=5,
                      headers={"X-Twilio-Signature": twilio_signature(auth_token=AUTH_TOKEN, url=inbound_url,
                                                                      params=stranger)})
    assert r.status_code == 200  # an unknown number is acknowledged and ignored
    assert Message.objects.count() == 0 and Event.objects.count() == 0
