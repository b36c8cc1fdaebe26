"""Block and unblock customers (Meta's block_users API): the Graph request fakemeta receives, the sandbox
simulator, the policy refusing sends to a blocked contact (both send roads), and Meta refusing the call."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.contacts.models import Contact
from apps.conversations.models import Message
from apps.providers import registry
from apps.providers.simulator.testing import start_fakemeta_in_thread
from tests.conversations.send_support import contact, live_number
from tests.webhooks.inbound_support import META_PHONE_ID, META_WABA_ID

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(settings):
    handle = start_fakemeta_in_thread(app_secret=settings.META_APP_SECRET, pair_limit_enabled=False)
    handle.register_number(phone_number_id=META_PHONE_ID, waba_id=META_WABA_ID, display_phone_number="15550783881")
    settings.META_GRAPH_URL = handle.base_url
    registry.reset_for_tests()
    yield handle
    handle.stop()
    registry.reset_for_tests()


def test_block_and_unblock_call_meta_and_gate_sends(workspace, live_api, fake, settings):
    live_number(workspace)
    c = contact(workspace, "+16505551234")
    r = live_api.post(f"/api/v1/contacts/{c.pk}/block", format="json")
    assert r.status_code == 200, r.content
    assert r.json()["blocked"] is True and r.json()["blocked_at"]
    [call] = fake.requests("/block_users")
    assert (call["method"], call["path"]) == ("POST", f"/{settings.META_GRAPH_VERSION}/{META_PHONE_ID}/block_users")
    assert call["body"] == {"messaging_product": "whatsapp", "block_users": [{"user": "+16505551234"}]}
    # The policy refuses sends to them, on the one-statement road and the full one alike.
    for body in ({"to": "+16505551234", "text": {"body": "hi"}},
                 {"to": "+16505551234", "text": {"body": "hi"}, "client_reference": "x"}):
        s = live_api.post("/api/v1/messages", body, format="json")
        assert s.status_code == 422 and s.json()["error"]["code"] == "CONTACT_BLOCKED"
    assert not Message.objects.exists()
    r = live_api.post(f"/api/v1/contacts/{c.pk}/unblock", format="json")
    assert r.status_code == 200 and r.json()["blocked"] is False
    assert fake.requests("/block_users")[-1]["method"] == "DELETE"
    assert Contact.objects.get(pk=c.pk).blocked_at is None
    ok = live_api.post("/api/v1/messages", {"to": "+16505551234", "text": {"body": "hi"}}, format="json")
    assert ok.status_code == 202, ok.content


def test_meta_refusing_the_block_is_502_and_nothing_recorded(workspace, live_api, fake):
    live_number(workspace)
    c = contact(workspace, "+16505551234")
    fake.configure(rejected_tokens=("expired", "invalid", "EAAG-test-token"))
    r = live_api.post(f"/api/v1/contacts/{c.pk}/block", format="json")
    assert r.status_code == 502 and r.json()["error"]["code"] == "UPSTREAM_ERROR"
    assert Contact.objects.get(pk=c.pk).blocked_at is None


def test_sandbox_block_makes_the_simulator_refuse_sends(workspace, sandbox_api):
    from apps.conversations.services import dispatch

    sandbox = workspace.sandbox
    number = sandbox.phone_numbers.get()
    c = Contact.objects.create(workspace=sandbox, phone="+16505551234", last_inbound_at=timezone.now())
    assert sandbox_api.post(f"/api/v1/contacts/{c.pk}/block", format="json").status_code == 200
    from apps.providers.registry import whatsapp_provider

    engine = whatsapp_provider(simulated=True).engine
    assert engine.is_blocked(number.meta_phone_number_id, "16505551234")
    # A message queued before the block (the policy now refuses new ones) is refused by the simulator.
    Contact.objects.filter(pk=c.pk).update(blocked_at=None)
    r = sandbox_api.post("/api/v1/messages", {"to": "+16505551234", "text": {"body": "hi"}}, format="json")
    assert r.status_code == 202
    dispatch.dispatch_drain(phone_number_id=number.pk, budget_seconds=3)
    m = Message.objects.get(pk=r.json()["id"])
    assert (m.status, m.upstream_code) == ("failed", 131009)
