"""fakemeta's Messenger / Instagram module over HTTP: its admin routes, the Send API's refusals (no
customer message yet: 10/2018278; wrong token: 190; malformed body: 100), an accepted send's signed delivery
and read webhooks, and the client's mapping of those answers."""

from __future__ import annotations

import json
import time

import pytest
import requests

from apps.providers.meta_cloud.signatures import verify_signature
from apps.providers.meta_social.client import SocialSendClient
from apps.providers.meta_social.webhooks import SocialInbound, SocialReceipt, parse_social_webhook
from apps.providers.simulator.testing import start_fakemeta_in_thread
from tests.providers.conftest import APP_SECRET, WebhookSink

PAGE, IG = "104000000000051", "17841400000000051"


@pytest.fixture
def sink():
    s = WebhookSink()
    yield s
    s.close()


@pytest.fixture
def fake(sink):
    handle = start_fakemeta_in_thread(webhook_url=sink.url, app_secret=APP_SECRET)
    yield handle
    handle.stop()


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.02)
    return predicate()


def _payloads(sink):
    with sink.lock:
        return [(json.loads(b), sig, b) for b, sig in sink.requests]


@pytest.mark.parametrize(("channel", "account"), [("messenger", PAGE), ("instagram", IG)])
def test_admin_routes_send_api_and_receipts(fake, sink, channel, account):
    base = fake.base_url
    assert requests.post(f"{base}/_admin/social/accounts", json={"channel": channel, "account_id": account,
                                                                 "token": "tok"}, timeout=5).status_code == 200
    client = SocialSendClient(base_url=base, version="v23.0", timeout=5)
    body = {"recipient": {"id": "6200000000000051"}, "messaging_type": "RESPONSE", "message": {"text": "hi"}}

    # Nobody wrote: Meta's outside-window refusal, mapped to our code, not retryable.
    with pytest.raises(Exception) as exc:
        client.send(account_id=account, access_token="tok", payload=body)
    assert (exc.value.code, exc.value.upstream_code, exc.value.retryable) == ("OUTSIDE_24H_WINDOW", 10, False)

    wrote = requests.post(f"{base}/_admin/social/inbound", json={"account_id": account, "text": "hello"},
                          timeout=5).json()
    assert _wait(lambda: len(_payloads(sink)) == 1)
    payload, signature, raw = _payloads(sink)[0]
    assert verify_signature(body=raw, header=signature, app_secret=APP_SECRET)
    [item] = parse_social_webhook(payload)
    assert isinstance(item, SocialInbound)
    assert (item.channel, item.account_id, item.sender_id, item.mid, item.body) == (
        channel, account, wrote["user_id"], wrote["mid"], "hello")

    body["recipient"]["id"] = wrote["user_id"]
    with pytest.raises(Exception) as exc:
        client.send(account_id=account, access_token="wrong", payload=body)
    assert exc.value.upstream_code == 190 and not exc.value.retryable
    bad = requests.post(f"{base}/v23.0/{account}/messages", json={"recipient": {"id": wrote["user_id"]}},
                        headers={"Authorization": "Bearer tok"}, timeout=5)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == 100

    result = client.send(account_id=account, access_token="tok", payload=body)
    assert result.provider_message_id
    receipts = 2 if channel == "messenger" else 1
    assert _wait(lambda: len(_payloads(sink)) == 1 + receipts)
    items = [i for p, _, _ in _payloads(sink)[1:] for i in parse_social_webhook(p)]
    assert all(isinstance(i, SocialReceipt) and i.recipient_id == wrote["user_id"] for i in items)
    assert [i.status for i in items] == (["delivered", "read"] if channel == "messenger" else ["read"])
    if channel == "messenger":
        assert items[0].mids == (result.provider_message_id,) and items[1].watermark is not None
    else:
        assert items[0].mids == (result.provider_message_id,)
    sent = requests.get(f"{base}/_admin/social/sent", timeout=5).json()["sent"]
    assert [s["mid"] for s in sent] == [result.provider_message_id]
    client.close()


def test_an_unregistered_id_stays_on_the_whatsapp_route(fake):
    # Not a social account: the WhatsApp engine answers (an unknown number), as before this module.
    r = requests.post(f"{fake.base_url}/v23.0/999999/messages", json={"messaging_product": "whatsapp"},
                      headers={"Authorization": "Bearer x"}, timeout=5)
    assert r.status_code >= 400 and "recipient_id" not in r.text


def test_the_reader_skips_echoes_and_reads_postbacks_and_attachments():
    payload = {"object": "page", "entry": [{"id": PAGE, "messaging": [
        {"sender": {"id": PAGE}, "recipient": {"id": "1"}, "message": {"mid": "m_echo", "is_echo": True, "text": "x"}},
        {"sender": {"id": "1"}, "recipient": {"id": PAGE}, "timestamp": 1700000000000,
         "postback": {"mid": "m_pb", "title": "Get started", "payload": "START"}},
        {"sender": {"id": "1"}, "recipient": {"id": PAGE}, "timestamp": 1700000000000,
         "message": {"mid": "m_img", "attachments": [{"type": "image", "payload": {"url": "https://x/y.jpg"}}]}},
    ]}]}
    postback, image = parse_social_webhook(payload)
    assert (postback.type, postback.body, postback.content["postback"]["payload"]) == ("button", "Get started",
                                                                                       "START")
    assert (image.type, image.content["link"], image.body) == ("image", "https://x/y.jpg", "[image]")
    assert parse_social_webhook({"object": "whatsapp_business_account", "entry": []}) == []
