"""The SMS fallback chain as one table: `fallback.after` failed | undelivered, against what WhatsApp
does (terminal send error, late failed status, delivered in time, delivered late, never claimed). Every
row: at most one SMS, linked both ways, one charge in all (the WhatsApp message's when it delivered
without a fallback, else the SMS's), and a late WhatsApp delivery recorded but not charged."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.billing import services as billing
from apps.conversations.models import Message
from apps.conversations.services import dispatch, fallback
from apps.providers.base import ProviderError, SendResult
from tests.conversations.send_support import contact, redis_keys_clear
from tests.webhooks.inbound_support import connect_number, deliver, status, status_payload

pytestmark = pytest.mark.django_db

TO = "+15557654321"
PRICING = {"billable": True, "pricing_model": "PMP", "category": "service", "type": "regular"}


class Sender:
    def __init__(self):
        self.calls, self.fail = [], False

    async def send_message(self, *, phone_number_id, access_token, payload):
        self.calls.append(payload)
        if self.fail:
            raise ProviderError(code="INVALID_REQUEST", message="bad", upstream_code=100, retryable=False)
        return SendResult(provider_message_id=f"wamid.M{len(self.calls)}", wa_id=payload["to"][1:],
                          message_status=None)


@pytest.fixture
def world(workspace, live_api, monkeypatch):
    redis_keys_clear()
    number = connect_number(workspace)
    contact(workspace, TO)
    sender = Sender()
    monkeypatch.setattr("apps.providers.registry.async_whatsapp_sender", lambda: sender)
    ledger: list[tuple[str, str]] = []
    # The real billing runs; each call that changed the message's money is recorded (cost is billing's marker).
    for name in ("message_charge_from_pricing", "message_charge_sms", "message_reservation_release"):
        def spy(*, message, name=name, real=getattr(billing, name)):
            before = message.cost
            result = real(message=message)
            if message.cost != before or result is not None:
                ledger.append((name, message.pk))
            return result
        monkeypatch.setattr(billing, name, spy)
    return number, sender, ledger


# (name, fallback after, steps, WhatsApp status, SMS count, WhatsApp error code, WhatsApp sends)
MATRIX = [
    ("failed: terminal send error", "failed", ["fail_on_send", "drain"], "failed", 1, "INVALID_REQUEST", 1),
    ("failed: late failed status, twice", "failed", ["drain", "status_failed", "status_failed_again"],
     "failed", 1, "USER_STOPPED_MARKETING", 1),
    ("failed: delivered", "failed", ["drain", "status_delivered", "sweep_late"], "delivered", 0, "", 1),
    ("undelivered: wait ran out, delivered late", "undelivered",
     ["drain", "sweep_late", "status_delivered", "sweep_later", "status_failed"], "delivered", 1, "", 1),
    ("undelivered: delivered in time", "undelivered", ["drain", "status_delivered", "sweep_late"], "delivered", 0,
     "", 1),
    ("undelivered: failed before the wait", "undelivered", ["drain", "status_failed", "sweep_late"], "failed", 1,
     "USER_STOPPED_MARKETING", 1),
    ("undelivered: never claimed before the wait", "undelivered", ["sweep_late", "drain_late"], "failed", 1,
     "FALLBACK_SENT_INSTEAD", 0),
]


@pytest.mark.parametrize(("after", "steps", "wa_status", "sms_count", "wa_error", "wa_sends"),
                         [row[1:] for row in MATRIX], ids=[row[0] for row in MATRIX])
def test_fallback_matrix(world, live_api, after, steps, wa_status, sms_count, wa_error, wa_sends):
    number, sender, ledger = world
    fb = {"sms": {"text": "Your code is 1234"}, "after": after}
    if after == "undelivered":
        fb["wait_seconds"] = 60
    r = live_api.post("/api/v1/messages", {"to": TO, "text": {"body": "Your code is 1234"}, "fallback": fb},
                      format="json")
    assert r.status_code == 202, r.content
    wa = Message.objects.get(pk=r.json()["id"])
    t0 = timezone.now()
    ts = int(t0.timestamp())
    for i, step in enumerate(steps):
        if step == "fail_on_send":
            sender.fail = True
        elif step == "drain":
            dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
        elif step.startswith("status_"):
            wamid = Message.objects.get(pk=wa.pk).provider_message_id
            kind = "failed" if step.startswith("status_failed") else "delivered"
            extra = {"errors": [{"code": 131050, "title": "stopped"}]} if kind == "failed" else {"pricing": PRICING}
            deliver(status_payload([status(wamid, kind, ts + i, **extra)]))
        elif step in ("sweep_late", "sweep_later", "drain_late"):
            later = t0 + timedelta(seconds=61 if step != "sweep_later" else 600)
            with time_machine.travel(later, tick=False):
                if step != "drain_late":
                    dispatch.dispatch_sweep()
                dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
    with time_machine.travel(t0 + timedelta(seconds=700), tick=False):  # the worker drains what is queued
        dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
    wa.refresh_from_db()
    sms = list(Message.objects.filter(channel="sms"))
    assert (wa.status, len(sms), wa.error_code, len(sender.calls)) == (wa_status, sms_count, wa_error, wa_sends)
    if sms_count:
        [s] = sms
        assert (wa.fallback_message_id, s.fallback_for_id, s.status, s.body) == (s.pk, wa.pk, "sent",
                                                                                 "Your code is 1234")
        assert r.json()["id"] == wa.pk and live_api.get(f"/api/v1/messages/{s.pk}").json()[
            "fallback_for_message_id"] == wa.pk
        # one charge: the SMS's; the WhatsApp message's reservation given back once, never charged
        assert [e for e in ledger if e[0] != "message_reservation_release"] == [("message_charge_sms", s.pk)]
        assert ledger.count(("message_reservation_release", wa.pk)) == 1
        if wa_status == "delivered":
            assert wa.delivered_at is not None and wa.pricing == PRICING  # recorded, not charged
    else:
        assert wa.fallback_message_id is None
        charges = [e for e in ledger if e[0] != "message_reservation_release"]
        assert charges == ([("message_charge_from_pricing", wa.pk)] if wa_status == "delivered" else [])
    assert fallback.fallbacks_due_send(now=t0 + timedelta(days=1)) == 0  # nothing left to send, ever


def test_fallback_request_validation(world, live_api):
    bad = [({"sms": {"text": "x"}, "after": "later"}, "fallback.after"),
           ({"sms": {"text": "x"}, "after": "undelivered"}, "fallback.wait_seconds"),
           ({"sms": {"text": "x"}, "after": "undelivered", "wait_seconds": 5}, "fallback.wait_seconds"),
           ({"sms": {"text": "x"}, "wait_seconds": 60}, "fallback.wait_seconds")]
    for fb, field in bad:
        r = live_api.post("/api/v1/messages", {"to": TO, "text": {"body": "hi"}, "fallback": fb}, format="json")
        assert r.status_code == 400 and r.json()["error"]["details"]["field"] == field, (fb, r.content)
    assert Message.objects.count() == 0
