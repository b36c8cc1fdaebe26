"""End to end over real sockets: the Django app on a live server, fakemeta on its own port posting
signed webhooks back to /webhooks/meta, the real Graph adapter in between.

customer writes (fake -> signed webhook -> stored -> processed) -> POST /api/v1/messages -> dispatcher ->
fakemeta -> signed sent/delivered/read webhooks -> statuses reach `read`. And a free-form send to a
contact who never wrote is refused with 422 before anything reaches the fake.
"""

from __future__ import annotations

import time

import pytest
import requests

from apps.conversations.models import Message
from apps.core import services as core_services
from apps.providers.simulator.testing import TEST_APP_SECRET, start_fakemeta_in_thread
from apps.webhooks.models import InboundWebhook
from apps.webhooks.services import inbound

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WABA_ID, PNID, DISPLAY = "880000000000001", "990000000000001", "+15550783881"
CUSTOMER = "+16505551234"


def _reset_provider_cache():
    from apps.providers import registry

    registry._instances.clear()  # the Graph client is built from settings; rebuild it for the fake's URL


@pytest.fixture
def fake(live_server, settings):
    settings.META_APP_SECRET = TEST_APP_SECRET
    handle = start_fakemeta_in_thread(webhook_url=f"{live_server.url}/webhooks/meta", app_secret=TEST_APP_SECRET,
                                      pair_limit_enabled=False)
    settings.META_GRAPH_URL = handle.base_url
    _reset_provider_cache()
    handle.register_number(phone_number_id=PNID, waba_id=WABA_ID, display_phone_number=DISPLAY)
    yield handle
    handle.stop()
    _reset_provider_cache()


def _pump_until(predicate, *, timeout: float = 20.0, drain: str | None = None) -> bool:
    """The worker's job, done here: process stored webhooks (and drain the dispatcher) until done."""
    from apps.conversations.services.dispatch import dispatch_drain

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if drain:
            dispatch_drain(phone_number_id=drain, budget_seconds=0.5)
        inbound.inbound_webhooks_sweep()
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_send_and_receive_roundtrip_reaches_read(live_server, fake):
    from apps.wabas.services import waba_connect

    workspace = core_services.workspace_create(name="E2E", slug="e2e")
    number = waba_connect(workspace=workspace, meta_waba_id=WABA_ID, phone_number_id=PNID,
                          display_phone_number=DISPLAY, access_token="EAAG-e2e-token", name="E2E")
    _, secret = core_services.api_key_create(workspace=workspace, name="e2e", sandbox=False)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {secret}"

    # Outside the window (the customer never wrote): 422 before anything is stored or sent.
    sends_before = fake.stats().get("sends", 0)
    refused = api.post(f"{live_server.url}/api/v1/messages", json={"to": CUSTOMER, "text": {"body": "hi?"}},
                       timeout=10)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "OUTSIDE_24H_WINDOW"
    assert Message.objects.filter(direction="outbound").count() == 0
    assert fake.stats().get("sends", 0) == sends_before

    # The customer writes: the fake posts a signed inbound webhook to the live server.
    wamid_in = fake.inject_inbound(phone_number_id=PNID, from_phone=CUSTOMER, text="Do you ship to Lisbon?",
                                   name="Ana")
    assert _pump_until(lambda: Message.objects.filter(provider_message_id=wamid_in).exists())
    inbound_msg = Message.objects.get(provider_message_id=wamid_in)
    assert inbound_msg.workspace == workspace
    assert inbound_msg.body == "Do you ship to Lisbon?"
    assert inbound_msg.contact.last_inbound_at is not None
    assert InboundWebhook.objects.filter(source="meta").count() >= 1

    # Reply inside the window through the public API, then let the dispatcher and webhooks run.
    accepted = api.post(f"{live_server.url}/api/v1/messages",
                        json={"to": CUSTOMER, "text": {"body": "Yes, in 2 days."}}, timeout=10)
    assert accepted.status_code == 202, accepted.text
    message_id = accepted.json()["id"]
    assert _pump_until(lambda: Message.objects.get(pk=message_id).status == "read", drain=number.pk), \
        Message.objects.get(pk=message_id).status
    message = Message.objects.get(pk=message_id)
    assert message.provider_message_id
    assert message.sent_at and message.delivered_at and message.read_at
    # Meta's status timestamps have whole seconds; sent_at is ours, to the microsecond.
    assert message.sent_at.replace(microsecond=0) <= message.delivered_at <= message.read_at
    assert fake.stats().get("sends", 0) == sends_before + 1
    got = api.get(f"{live_server.url}/api/v1/messages/{message_id}", timeout=10)
    assert got.status_code == 200
    assert got.json()["status"] == "read"

    # Meta redelivers every status: nothing changes, no second row.
    from apps.core.models import Event

    before = Event.objects.filter(type__startswith="message.").count()
    for row in InboundWebhook.objects.all():
        inbound.inbound_webhook_reprocess(webhook_id=row.pk)
    assert Event.objects.filter(type__startswith="message.").count() == before
    assert Message.objects.filter(provider_message_id=wamid_in).count() == 1


def test_unsigned_post_over_a_socket_is_401(live_server):
    response = requests.post(f"{live_server.url}/webhooks/meta", data=b'{"object":"x"}',
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 401
    assert InboundWebhook.objects.count() == 0
