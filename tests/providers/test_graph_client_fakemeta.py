"""GraphClient / AsyncGraphSender against the real fakemeta server over a loopback socket."""

import asyncio
import json

import pytest
import requests

from apps.providers.base import ProviderError, SendResult
from apps.providers.meta_cloud.client import AsyncGraphSender, GraphClient
from apps.providers.meta_cloud.payloads import build_send_payload
from apps.providers.meta_cloud.signatures import verify_signature
from apps.providers.meta_cloud.webhooks import (
    InboundMessage,
    StatusUpdate,
    TemplateStatusUpdate,
    parse_webhook,
)
from apps.providers.simulator import engine as E

from .conftest import APP_SECRET

PN, TOKEN = "1061", "tok"
TO = "+15551234567"


def send(graph, mtype, content, to=TO):
    return graph.send_message(phone_number_id=PN, access_token=TOKEN,
                              payload=build_send_payload(to=to, message_type=mtype, content=content))


def test_inbound_then_every_type_reaches_read_with_signed_webhooks(fakemeta, graph, webhook_sink):
    wamid_in = fakemeta.inject_inbound(phone_number_id=PN, from_phone=TO, text="hi there", name="Ana")
    media_id = graph.upload_media(phone_number_id=PN, access_token=TOKEN, data=b"\x89PNG-img", mime_type="image/png",
                                  filename="a.png")
    cases = [
        ("text", {"body": "hello"}),
        ("image", {"id": media_id, "caption": "c"}),
        ("document", {"link": "https://example.com/a.pdf", "filename": "a.pdf"}),
        ("location", {"latitude": 1.5, "longitude": 2.5, "name": "x"}),
        ("interactive", {"kind": "buttons", "body": "Pick", "buttons": [{"id": "a", "title": "A"}]}),
        ("interactive", {"kind": "list", "body": "Pick", "button": "Go",
                         "sections": [{"title": "s", "rows": [{"id": "r", "title": "R"}]}]}),
        ("reaction", {"message_id": wamid_in, "emoji": "👍"}),
        ("contacts", [{"name": {"formatted_name": "Bo"}, "phones": [{"phone": "+15550001111"}]}]),
        ("sticker", {"link": "https://example.com/s.webp"}),
    ]
    wamids = []
    for mtype, content in cases:
        res = send(graph, mtype, content)
        assert isinstance(res, SendResult) and res.provider_message_id.startswith("wamid.")
        assert res.wa_id == "15551234567" and res.message_status is None
        wamids.append(res.provider_message_id)
    assert fakemeta.wait_for(lambda: sum(s["status"] == "read" for s in webhook_sink.statuses()) == len(cases), timeout=30)
    for body, sig in webhook_sink.requests:
        assert verify_signature(body=body, header=sig, app_secret=APP_SECRET)
    items = [i for p in webhook_sink.payloads() for i in parse_webhook(p)]
    inbound = [i for i in items if isinstance(i, InboundMessage)]
    assert [(m.wamid, m.content, m.profile_name, m.from_phone) for m in inbound] == [
        (wamid_in, {"body": "hi there"}, "Ana", TO)]
    by_wamid: dict = {}
    for st in (i for i in items if isinstance(i, StatusUpdate)):
        assert st.phone_number_id == PN and st.waba_id == "W1"
        by_wamid.setdefault(st.wamid, []).append(st.status)
    assert sorted(by_wamid) == sorted(wamids)
    assert all(v == ["sent", "delivered", "read"] for v in by_wamid.values())
    # batched: fewer POSTs than status updates
    assert len(webhook_sink.requests) < 1 + 3 * len(cases)


def test_mark_read(graph):
    assert graph.mark_read(phone_number_id=PN, access_token=TOKEN, wamid="wamid.X") is True


def test_outside_window_is_accepted_then_fails_131047(graph, fakemeta, webhook_sink):
    res = send(graph, "text", {"body": "cold"}, to="+15557654321")
    assert fakemeta.wait_for(lambda: webhook_sink.statuses(), timeout=30)
    (st,) = [i for p in webhook_sink.payloads() for i in parse_webhook(p)]
    assert (st.wamid, st.status, st.errors[0].code) == (res.provider_message_id, "failed", 131047)


@pytest.mark.parametrize(("to", "code", "ours", "retryable", "http"), [
    ("+" + E.MAGIC_ALWAYS_THROTTLED, 130429, "UPSTREAM_RATE_LIMITED", True, 429),
    ("+" + E.MAGIC_PAIR_LIMITED, 131056, "PAIR_RATE_LIMITED", True, 400),
    ("+" + E.MAGIC_ALWAYS_ERROR, 131000, "UPSTREAM_ERROR", True, 500),
    ("12", 100, "INVALID_REQUEST", False, 400),
])
def test_sync_error_mapping(graph, webhook_sink, to, code, ours, retryable, http):
    with pytest.raises(ProviderError) as exc:
        send(graph, "text", {"body": "x"}, to=to)
    err = exc.value
    assert (err.upstream_code, err.code, err.retryable, err.http_status) == (code, ours, retryable, http)
    assert err.details


def test_auth_error_190(fakemeta):
    client = GraphClient(base_url=fakemeta.base_url, version="v23.0", timeout=5)
    with pytest.raises(ProviderError) as exc:
        client.send_message(phone_number_id=PN, access_token="expired",
                            payload=build_send_payload(to=TO, message_type="text", content={"body": "x"}))
    assert (exc.value.code, exc.value.upstream_code, exc.value.http_status, exc.value.retryable) == (
        "AUTH_FAILED", 190, 401, False)


def test_throughput_130429_from_bucket(fakemeta, graph):
    fakemeta.configure(default_mps=3, pair_limit_enabled=False)
    outcomes = []
    for i in range(5):
        try:
            send(graph, "text", {"body": "x"}, to=f"+1555100{i:04d}")
            outcomes.append("ok")
        except ProviderError as exc:
            outcomes.append(exc.upstream_code)
    assert outcomes == ["ok", "ok", "ok", 130429, 130429]


def test_transient_131000_then_success(graph):
    with pytest.raises(ProviderError) as exc:
        send(graph, "text", {"body": "x"}, to="+" + E.MAGIC_TRANSIENT_ONCE)
    assert exc.value.upstream_code == 131000 and exc.value.retryable
    assert send(graph, "text", {"body": "x"}, to="+" + E.MAGIC_TRANSIENT_ONCE).provider_message_id


def test_network_error_is_retryable():
    client = GraphClient(base_url="http://127.0.0.1:9", version="v23.0", timeout=1)
    with pytest.raises(ProviderError) as exc:
        client.send_message(phone_number_id=PN, access_token=TOKEN, payload={})
    assert exc.value.code == "UPSTREAM_UNAVAILABLE" and exc.value.retryable


def test_media_upload_get_download_with_bearer(graph, fakemeta):
    data = bytes(range(256)) * 40
    media_id = graph.upload_media(phone_number_id=PN, access_token=TOKEN, data=data, mime_type="application/pdf",
                                  filename="doc.pdf")
    info = graph.get_media(media_id=media_id, access_token=TOKEN)
    assert info["mime_type"] == "application/pdf" and info["file_size"] == len(data)
    assert info["url"].startswith(fakemeta.base_url + "/media-download/")
    assert graph.download_media(url=info["url"], access_token=TOKEN, max_bytes=1 << 20) == data
    assert requests.get(info["url"], timeout=5).status_code == 401  # no bearer
    with pytest.raises(ProviderError) as too_big:
        graph.download_media(url=info["url"], access_token=TOKEN, max_bytes=100)
    assert too_big.value.code == "MEDIA_TOO_LARGE"
    fakemeta.configure(media_url_ttl=-1)  # every URL handed out from now on is already expired
    expired = graph.get_media(media_id=media_id, access_token=TOKEN)["url"]
    with pytest.raises(ProviderError) as gone:
        graph.download_media(url=expired, access_token=TOKEN, max_bytes=1 << 20)
    assert gone.value.code == "MEDIA_URL_EXPIRED" and gone.value.http_status == 404
    with pytest.raises(ProviderError) as unknown:
        graph.get_media(media_id="123", access_token=TOKEN)
    assert unknown.value.http_status == 404 and unknown.value.upstream_code == 100


def test_template_create_approve_list_and_send(graph, fakemeta, webhook_sink):
    created = graph.create_template(waba_id="W1", access_token=TOKEN, name="order_update", language="en",
                                    category="UTILITY", components=[{"type": "BODY", "text": "Hi {{1}}"}],
                                    parameter_format="positional")
    assert created["status"] == "PENDING" and created["category"] == "UTILITY" and created["id"].isdigit()
    rejected = graph.create_template(waba_id="W1", access_token=TOKEN, name="reject_this", language="en",
                                     category="MARKETING", components=[{"type": "BODY", "text": "x"}])
    for i in range(3):
        graph.create_template(waba_id="W1", access_token=TOKEN, name=f"extra_{i}", language="en",
                              category="MARKETING", components=[{"type": "BODY", "text": "x"}])
    assert fakemeta.wait_for(lambda: len(webhook_sink.payloads()) >= 5, timeout=30)
    events = {(u.name, u.event) for p in webhook_sink.payloads() for u in parse_webhook(p)
              if isinstance(u, TemplateStatusUpdate)}
    assert {("order_update", "APPROVED"), ("reject_this", "REJECTED")} <= events
    listed = graph.list_templates(waba_id="W1", access_token=TOKEN, limit=2)  # follows 3 pages
    assert {t["name"]: t["status"] for t in listed} == {
        "order_update": "APPROVED", "reject_this": "REJECTED", "extra_0": "APPROVED", "extra_1": "APPROVED",
        "extra_2": "APPROVED"}
    assert {t["id"] for t in listed} >= {created["id"], rejected["id"]}
    res = send(graph, "template", {"name": "order_update", "language": "en", "variables": ["Ana"]})
    assert res.message_status == "accepted"
    with pytest.raises(ProviderError) as exc:
        send(graph, "template", {"name": "order_update", "language": "en", "variables": ["a", "b"]})
    assert (exc.value.upstream_code, exc.value.code) == (132000, "TEMPLATE_REJECTED_UPSTREAM")
    assert graph.delete_template(waba_id="W1", access_token=TOKEN, name="extra_0") is True
    assert "extra_0" not in {t["name"] for t in graph.list_templates(waba_id="W1", access_token=TOKEN)}
    with pytest.raises(ProviderError):
        graph.delete_template(waba_id="W1", access_token=TOKEN, name="extra_0")
    with pytest.raises(ProviderError) as dup:
        graph.create_template(waba_id="W1", access_token=TOKEN, name="order_update", language="en",
                              category="UTILITY", components=[{"type": "BODY", "text": "Hi {{1}}"}])
    assert dup.value.upstream_code == 100


def test_webhook_retry_on_non_200(fakemeta, webhook_sink):
    webhook_sink.fail_next = 2
    wamid = fakemeta.inject_inbound(phone_number_id=PN, from_phone=TO, text="retry me")
    assert fakemeta.wait_for(lambda: webhook_sink.messages(), timeout=30)  # deadline, not pace (~0.75 s of backoff)
    assert [m["id"] for m in webhook_sink.messages()] == [wamid]
    assert fakemeta.stats()["webhooks_retried"] == 2


def test_admin_http_endpoints(fakemeta, webhook_sink):
    base = fakemeta.base_url
    r = requests.post(f"{base}/_admin/inbound", json={"phone_number_id": PN, "from": TO,
                                                       "message": {"type": "text", "text": {"body": "via http"}}},
                      timeout=5)
    assert r.status_code == 200 and r.json()["wamid"].startswith("wamid.")
    assert fakemeta.wait_for(lambda: webhook_sink.messages(), timeout=30)
    assert webhook_sink.messages()[0]["text"] == {"body": "via http"}
    assert requests.post(f"{base}/_admin/templates", json={"waba_id": "W1", "name": "seeded", "language": "en",
                                                           "body_text": "x"}, timeout=5).status_code == 200
    assert requests.post(f"{base}/_admin/templates/status", json={
        "waba_id": "W1", "name": "seeded", "language": "en", "status": "PAUSED"}, timeout=5).status_code == 200
    assert requests.get(f"{base}/_admin/stats", timeout=5).json()["requests"] >= 3
    assert requests.get(f"{base}/v23.0/nothing/here/at/all", timeout=5).status_code == 404


def test_async_sender_concurrent_batch(fakemeta, webhook_sink):
    fakemeta.configure(enforce_window=False, pair_limit_enabled=False, default_mps=10_000)

    async def run():
        sender = AsyncGraphSender(base_url=fakemeta.base_url, version="v23.0", timeout=5, concurrency=16)
        items = [(PN, TOKEN, build_send_payload(to=f"+1555200{i:04d}", message_type="text",
                                                content={"body": str(i)})) for i in range(200)]
        items.append((PN, TOKEN, build_send_payload(to="+" + E.MAGIC_ALWAYS_THROTTLED, message_type="text",
                                                    content={"body": "x"})))
        try:
            return await sender.send_many(items)
        finally:
            await sender.aclose()

    results = asyncio.run(run())
    assert all(isinstance(r, SendResult) for r in results[:200])
    assert len({r.provider_message_id for r in results[:200]}) == 200
    assert isinstance(results[200], ProviderError) and results[200].upstream_code == 130429
    assert fakemeta.wait_for(lambda: sum(s["status"] == "read" for s in webhook_sink.statuses()) == 200, timeout=30)
    posts = len(webhook_sink.requests)
    assert posts < 200, f"webhooks should be batched, got {posts} posts"
    body, _ = webhook_sink.requests[0]
    assert json.loads(body)["object"] == "whatsapp_business_account"


def test_subscription_handshake(fakemeta):
    assert fakemeta.call_async(fakemeta.server.verify_webhook, "vt") is True
    assert fakemeta.call_async(fakemeta.server.verify_webhook, "wrong") is False


def test_inbound_media_gets_a_downloadable_placeholder(fakemeta, graph, webhook_sink):
    fakemeta.inject_inbound(phone_number_id=PN, from_phone=TO, message={"type": "image", "image": {"caption": "c"}})
    assert fakemeta.wait_for(lambda: webhook_sink.messages(), timeout=30)
    (msg,) = [i for p in webhook_sink.payloads() for i in parse_webhook(p)]
    assert msg.type == "image" and msg.content["caption"] == "c" and msg.content["mime_type"] == "image/jpeg"
    info = graph.get_media(media_id=msg.content["id"], access_token=TOKEN)
    data = graph.download_media(url=info["url"], access_token=TOKEN, max_bytes=1 << 20)
    assert data.startswith(b"\xff\xd8\xff") and len(data) == info["file_size"]  # a real JPEG


def test_async_sender_survives_a_new_event_loop(fakemeta):
    fakemeta.configure(enforce_window=False)
    sender = AsyncGraphSender(base_url=fakemeta.base_url, version="v23.0", timeout=5, concurrency=4)
    payload = build_send_payload(to=TO, message_type="text", content={"body": "x"})
    first = asyncio.run(sender.send_message(phone_number_id=PN, access_token=TOKEN, payload=payload))
    second = asyncio.run(sender.send_message(phone_number_id=PN, access_token=TOKEN, payload=payload))
    assert first.provider_message_id != second.provider_message_id
    asyncio.run(sender.aclose())
