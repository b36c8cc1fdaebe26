"""A chunked (no Content-Length) body over the limit is refused with the 413 envelope while streaming."""

from __future__ import annotations

import pytest
from django.test import override_settings

from apps.core.asgi_limits import ApiBodyLimit


async def _call(app, path, chunks, headers=()):
    queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent, reads = [], []

    async def receive():
        reads.append(1)
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": path, "method": "POST", "headers": list(headers)}
    await app(scope, receive, send)
    return sent, len(reads)


async def _drain_app(scope, receive, send):
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@override_settings(API_MAX_BODY_BYTES=100)
async def test_streamed_body_over_the_limit_is_413_and_reading_stops():
    sent, reads = await _call(ApiBodyLimit(_drain_app), "/api/v1/contacts", [b"x" * 60] * 10,
                              headers=[(b"x-request-id", b"rid-7")])
    assert sent[0]["status"] == 413
    assert (b"x-request-id", b"rid-7") in sent[0]["headers"]
    import json

    body = json.loads(sent[1]["body"])
    assert body == {"error": {"code": "PAYLOAD_TOO_LARGE", "message": "The body is over the 100 byte limit.",
                              "details": {"limit_bytes": 100}, "request_id": "rid-7"}}
    assert reads == 2  # stopped at the chunk that crossed the limit


@override_settings(API_MAX_BODY_BYTES=100)
@pytest.mark.parametrize("path,chunks", [("/api/v1/contacts", [b"x" * 50, b"y" * 50]), ("/admin/x", [b"z" * 500])])
async def test_bodies_within_the_limit_or_outside_api_pass(path, chunks):
    sent, _ = await _call(ApiBodyLimit(_drain_app), path, chunks)
    assert sent[0]["status"] == 200


@override_settings(API_MAX_BODY_BYTES=100, API_MAX_UPLOAD_BYTES=1000)
async def test_upload_paths_get_the_upload_limit():
    sent, _ = await _call(ApiBodyLimit(_drain_app), "/api/v1/media", [b"x" * 500])
    assert sent[0]["status"] == 200
