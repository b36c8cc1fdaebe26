"""Delivery statuses: forward only, idempotent, failed with errors, pricing, bulk-friendly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.conversations.models import Message
from apps.core.models import Event
from apps.webhooks.models import InboundWebhook
from apps.webhooks.services import inbound
from tests.webhooks.inbound_support import connect_number, deliver, fixture, status, status_payload

pytestmark = pytest.mark.django_db
T0 = 1750263700


def ts(n: int) -> datetime:
    return datetime.fromtimestamp(n, tz=UTC)


@pytest.fixture
def number(workspace):
    return connect_number(workspace)


@pytest.fixture
def outbound(workspace, number):
    def make(wamid: str, status: str = "sent", **extra) -> Message:
        return Message.objects.create(workspace=workspace, phone_number=number, type="text", direction="outbound",
                                      status=status, provider_message_id=wamid, to_phone="+16505551234", **extra)
    return make


def events(kind: str | None = None):
    qs = Event.objects.filter(type__startswith="message.")
    return list(qs.filter(type=kind).order_by("sequence") if kind else qs.order_by("sequence"))


def test_sent_delivered_read_move_forward_with_events(outbound):
    message = outbound("wamid.F1", status="queued")
    deliver(status_payload([status("wamid.F1", "sent", T0)]))
    deliver(status_payload([status("wamid.F1", "delivered", T0 + 5)]))
    deliver(status_payload([status("wamid.F1", "read", T0 + 9)]))
    message.refresh_from_db()
    assert message.status == "read"
    assert (message.sent_at, message.delivered_at, message.read_at) == (ts(T0), ts(T0 + 5), ts(T0 + 9))
    assert [e.type for e in events()] == ["message.status_changed", "message.sent", "message.status_changed",
                                          "message.delivered", "message.status_changed", "message.read"]
    last = events("message.read")[0].data
    assert last["message_id"] == message.pk
    assert last["previous_status"] == "delivered"
    assert last["status"] == "read"


def test_repeated_status_changes_nothing(outbound):
    message = outbound("wamid.F2")
    deliver(status_payload([status("wamid.F2", "delivered", T0)]))
    before = len(events())
    again = status_payload([status("wamid.F2", "delivered", T0)])
    again["entry"][0]["time"] = 5  # a new body, same status: Meta's redelivery
    outcome = deliver(again)
    assert outcome.summary.get("statuses", 0) == 0
    assert outcome.summary["statuses_unchanged"] == 1
    message.refresh_from_db()
    assert message.status == "delivered"
    assert len(events()) == before


def test_read_before_delivered_keeps_read_and_records_delivered_at(outbound):
    message = outbound("wamid.F3")
    deliver(status_payload([status("wamid.F3", "read", T0 + 10)]))
    deliver(status_payload([status("wamid.F3", "delivered", T0 + 4)]))
    message.refresh_from_db()
    assert message.status == "read"
    assert message.read_at == ts(T0 + 10)
    assert message.delivered_at == ts(T0 + 4)
    assert [e.type for e in events()] == ["message.status_changed", "message.read"]


def test_late_sent_never_moves_back(outbound):
    message = outbound("wamid.F4", status="delivered")
    deliver(status_payload([status("wamid.F4", "sent", T0)]))
    message.refresh_from_db()
    assert message.status == "delivered"
    assert events() == []


def test_failed_records_error_details(outbound):
    message = outbound("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA")
    outcome = deliver(fixture("status_failed.json"))
    assert outcome.status == "processed", outcome.error
    message.refresh_from_db()
    assert message.status == "failed"
    assert message.upstream_code is not None
    assert message.error_code
    assert message.error_message
    assert message.failed_at is not None
    failed = events("message.failed")
    assert len(failed) == 1
    assert failed[0].data["error"]["upstream_code"] == message.upstream_code


def test_failed_131049_from_meta_doc_example(outbound):
    message = outbound("wamid.F5")
    deliver(status_payload([status("wamid.F5", "failed", T0, errors=[{
        "code": 131049, "title": "This message was not delivered to maintain healthy ecosystem engagement.",
        "message": "This message was not delivered to maintain healthy ecosystem engagement.",
        "error_data": {"details": "In order to maintain a healthy ecosystem engagement, the message failed."}}])]))
    message.refresh_from_db()
    assert message.status == "failed"
    assert message.upstream_code == 131049
    assert "healthy ecosystem" in message.error_message
    assert message.failed_at == ts(T0)


def test_failed_is_not_applied_after_read(outbound):
    message = outbound("wamid.F6", status="read")
    deliver(status_payload([status("wamid.F6", "failed", T0, errors=[{"code": 131000, "title": "x"}])]))
    message.refresh_from_db()
    assert message.status == "read"
    assert events() == []


def test_pricing_is_stored(outbound):
    message = outbound("wamid.F7")
    pricing = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}
    deliver(status_payload([status("wamid.F7", "delivered", T0, pricing=pricing)]))
    message.refresh_from_db()
    assert message.pricing == pricing


def test_oas_delivered_fixture(outbound):
    message = outbound("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA")
    assert deliver(fixture("status_delivered.json")).status == "processed"
    message.refresh_from_db()
    assert message.status == "delivered"


def test_a_batch_of_statuses_costs_few_queries(outbound, django_assert_max_num_queries):
    wamids = [f"wamid.B{i}" for i in range(60)]
    for w in wamids:
        outbound(w)
    payload = status_payload([status(w, "delivered", T0 + 1) for w in wamids]
                             + [status(w, "read", T0 + 2) for w in wamids])
    webhook_id = inbound.inbound_webhook_store(body=__import__("json").dumps(payload).encode())
    with django_assert_max_num_queries(16):
        outcome = inbound.inbound_webhook_process(webhook_id=webhook_id)
    assert outcome.summary["statuses"] == 120
    assert Message.objects.filter(status="read").count() == 60
    assert len(events("message.read")) == 60
    assert len(events("message.delivered")) == 60


def test_status_for_unknown_wamid_waits_then_is_ignored(outbound, settings):
    settings.INBOUND_STATUS_ORPHAN_GRACE_SECONDS = 120
    outcome = deliver(status_payload([status("wamid.NOPE", "sent", T0)]))
    assert outcome.status == "deferred"
    row = InboundWebhook.objects.get()
    assert row.processed_at is None
    assert row.attempts == 0  # waiting for the dispatcher is not a failure
    settings.INBOUND_STATUS_ORPHAN_GRACE_SECONDS = 0
    InboundWebhook.objects.filter(pk=row.pk).update(available_at=row.received_at)
    outcome = inbound.inbound_webhook_process(webhook_id=row.pk)
    assert outcome.status == "processed"
    row.refresh_from_db()
    assert row.summary["ignored"] == [{"kind": "status", "wamid": "wamid.NOPE", "reason": "unknown wamid"}]


def test_status_racing_the_dispatcher_applies_once_the_wamid_is_recorded(outbound, workspace, number):
    message = outbound("", status="sending")
    Message.objects.filter(pk=message.pk).update(provider_message_id=None)
    assert deliver(status_payload([status("wamid.RACE", "sent", T0)])).status == "deferred"
    Message.objects.filter(pk=message.pk).update(provider_message_id="wamid.RACE")
    row = InboundWebhook.objects.get()
    InboundWebhook.objects.filter(pk=row.pk).update(available_at=row.received_at)
    assert inbound.inbound_webhooks_sweep() == 1
    message.refresh_from_db()
    assert message.status == "sent"


def test_statuses_for_unknown_number_are_ignored(outbound):
    message = outbound("wamid.U1")
    outcome = deliver(status_payload([status("wamid.U1", "read", T0)], phone_number_id="777"))
    assert outcome.status == "processed"
    message.refresh_from_db()
    assert message.status == "sent"
    assert outcome.summary["ignored"][0]["reason"] == "unknown phone_number_id"


def test_late_131026_failure_triggers_the_sms_fallback_once(outbound, workspace):
    message = outbound("wamid.SMS1", fallback={"sms": {"text": "Your code is 1234", "sender": "Acme"}})
    failed = status_payload([status("wamid.SMS1", "failed", T0, errors=[
        {"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
         "error_data": {"details": "Receiver is incapable of receiving this message"}}])])
    assert deliver(failed).status == "processed"
    message.refresh_from_db()
    assert message.status == "failed"
    assert message.error_code == "RECIPIENT_NOT_ON_WHATSAPP"
    sms = message.fallback_message
    assert sms is not None
    assert (sms.channel, sms.status, sms.body, sms.to_phone) == ("sms", "queued", "Your code is 1234", "+16505551234")
    assert [e.data.get("fallback_for") for e in events("message.status_changed")][-1] == message.pk
    again = status_payload([status("wamid.SMS1", "failed", T0, errors=[{"code": 131026, "title": "x"}])])
    again["entry"][0]["time"] = 9
    deliver(again)
    assert Message.objects.filter(channel="sms").count() == 1


def test_late_failure_sends_sms_only_for_messages_that_asked(outbound):
    """Any terminal failure brings the fallback (issue 21), and only to a message that asked for one."""
    asked = outbound("wamid.SMS2", fallback={"sms": {"text": "x"}})
    outbound("wamid.SMS3")
    deliver(status_payload([status("wamid.SMS2", "failed", T0, errors=[{"code": 131049, "title": "eco"}]),
                            status("wamid.SMS3", "failed", T0, errors=[{"code": 131026, "title": "undeliverable"}])]))
    assert list(Message.objects.filter(channel="sms").values_list("fallback_for_id", flat=True)) == [asked.pk]
    assert Message.objects.filter(status="failed").count() == 2
