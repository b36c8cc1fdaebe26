"""A test key sends from the sandbox's simulated number: same API, same dispatcher, the in-process
simulator as the far end, and its statuses back through the receive road."""

from __future__ import annotations

import time

import pytest

from apps.conversations.models import Message
from apps.conversations.services import dispatch
from tests.conversations.send_support import redis_keys_clear, sandbox_template_send, template

pytestmark = pytest.mark.django_db


def test_sandbox_template_send_is_dispatched_by_the_simulator_and_statuses_come_back(sandbox_api, workspace):
    redis_keys_clear()
    number, r = sandbox_template_send(sandbox_api, workspace)
    totals = dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    assert totals["sent"] == 1
    m = Message.objects.get(pk=r.json()["id"])
    assert m.status == "sent" and m.provider_message_id.startswith("wamid.")
    from apps.webhooks.services.inbound import inbound_webhooks_sweep

    deadline = time.monotonic() + 30  # the read status is due ~1 s after the send; slack for a loaded machine
    while time.monotonic() < deadline:
        inbound_webhooks_sweep()
        m.refresh_from_db()
        if m.status == "read":
            break
        time.sleep(0.2)
    assert m.status == "read" and m.delivered_at is not None
    assert live_message_count(workspace) == 0  # nothing leaked into the live workspace


def live_message_count(workspace) -> int:
    return Message.objects.filter(workspace=workspace).count()


def test_sandbox_not_on_whatsapp_late_failure_sends_the_linked_sms(sandbox_api, workspace):
    """Meta reports 131026 as a late failed status: the receive road fails the message, and the SMS
    fallback is queued, linked, and sent by the dispatcher through the SMS gateway simulator."""
    redis_keys_clear()
    sandbox = workspace.sandbox
    number = sandbox.phone_numbers.get()
    template(sandbox, number.waba)
    r = sandbox_api.post("/api/v1/messages", {
        "to": "+15550001001", "template": {"name": "order_update", "language": "en", "variables": ["A", "1"]},
        "fallback": {"sms": {"text": "Your order 1 shipped", "sender": "Acme"}}}, format="json")
    assert r.status_code == 202, r.content
    dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)
    from apps.webhooks.services.inbound import inbound_webhooks_sweep

    m = Message.objects.get(pk=r.json()["id"])
    deadline = time.monotonic() + 30  # the read status is due ~1 s after the send; slack for a loaded machine
    while time.monotonic() < deadline and m.status != "failed":
        inbound_webhooks_sweep()
        m.refresh_from_db()
        time.sleep(0.2)
    assert (m.status, m.upstream_code) == ("failed", 131026)
    assert m.fallback_message_id is not None
    assert dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)["sent"] == 1
    sms = Message.objects.get(pk=m.fallback_message_id)
    assert (sms.channel, sms.status, sms.body, sms.to_phone) == ("sms", "sent", "Your order 1 shipped", "+15550001001")
    assert sms.provider_message_id.startswith("sms_")
    got = sandbox_api.get(f"/api/v1/messages/{m.pk}").json()
    assert got["fallback_message_id"] == sms.pk and got["error"]["upstream_code"] == 131026


def test_the_sandbox_sends_through_the_live_send_loop(sandbox_api, workspace, monkeypatch):
    """One paced loop on the dispatcher's event loop for both; only the sender differs."""
    from apps.conversations.services.dispatch import send

    redis_keys_clear()
    senders = []
    real = send._send_paced

    async def spy(items, *, sender, **kwargs):
        senders.append((type(sender).__name__, len(items)))
        await real(items, sender=sender, **kwargs)

    monkeypatch.setattr(send, "_send_paced", spy)
    number, r = sandbox_template_send(sandbox_api, workspace)
    assert dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=5)["sent"] == 1
    assert senders == [("_SandboxSender", 1)]
