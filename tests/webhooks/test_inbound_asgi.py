"""The ASGI fast path for POST /webhooks/meta gives the Django view's answers without its stack."""

from __future__ import annotations

import json

import pytest

from apps.providers.meta_cloud.signatures import sign_body
from apps.webhooks import asgi_inbound
from apps.webhooks.asgi_inbound import MetaWebhookFastPath
from tests.webhooks.inbound_support import body_of, text_payload


class _Downstream:
    def __init__(self):
        self.calls = 0

    async def __call__(self, scope, receive, send):
        self.calls += 1
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"django"})


async def _call(app, *, method="POST", path="/webhooks/meta", body=b"", headers=(), chunks=None):
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)] if chunks else [{"type": "http.request", "body": body}]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path,
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers]}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], content


@pytest.fixture
def stored(monkeypatch):
    # The INSERT itself is inbound_webhook_store's, tested with the view; here: what reaches it.
    bodies: list[bytes] = []
    monkeypatch.setattr(asgi_inbound, "_store", bodies.append)
    return bodies


async def test_fast_path_answers_like_the_view(settings, stored):
    app = MetaWebhookFastPath(_Downstream(), threads=2)
    body = body_of(text_payload(wamid="wamid.ASGI1"))
    status, content = await _call(app, body=body, headers=[
        ("X-Hub-Signature-256", sign_body(body, settings.META_APP_SECRET)), ("Content-Length", str(len(body)))])
    assert (status, content) == (200, b"OK")
    assert stored == [body]
    # Chunked delivery of the same body: reassembled byte for byte (dedupe is the INSERT's ON CONFLICT).
    status, _ = await _call(app, chunks=[body[:10], body[10:]],
                            headers=[("X-Hub-Signature-256", sign_body(body, settings.META_APP_SECRET))])
    assert status == 200
    assert stored == [body, body]

    other = body_of(text_payload(wamid="wamid.ASGI2"))
    for headers in ([], [("X-Hub-Signature-256", "sha256=" + "0" * 64)]):
        status, content = await _call(app, body=other, headers=headers)
        assert status == 401
        assert json.loads(content)["error"]["code"] == "INVALID_SIGNATURE"
    assert len(stored) == 2

    bad = b"{nope"
    status, content = await _call(app, body=bad, headers=[("X-Hub-Signature-256", sign_body(bad, settings.META_APP_SECRET))])
    assert status == 400
    assert json.loads(content)["error"]["code"] == "INVALID_JSON"
    settings.META_WEBHOOK_MAX_BYTES = 100
    big = body_of({"pad": "x" * 500})
    status, _ = await _call(app, body=big, headers=[("Content-Length", str(len(big)))])
    assert status == 413
    status, _ = await _call(app, chunks=[big[:60], big[60:]])  # chunked, no Content-Length
    assert status == 413
    assert len(stored) == 2


async def test_everything_else_goes_to_django():
    downstream = _Downstream()
    app = MetaWebhookFastPath(downstream, threads=1)
    assert (await _call(app, method="GET", path="/webhooks/meta"))[0] == 299
    assert (await _call(app, method="POST", path="/api/v1/messages"))[0] == 299
    assert downstream.calls == 2
