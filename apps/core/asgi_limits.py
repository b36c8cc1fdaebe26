"""ASGI wrapper that caps request bodies under /api/ while they stream in.

Django's ApiBodyLimitMiddleware refuses an oversized Content-Length before the view runs, but a chunked body
has no Content-Length and Django's ASGI handler spools all of it before any middleware sees the request.
This wrapper counts bytes as they arrive and answers 413 with the API envelope as soon as the limit is
passed, so an endless chunked upload costs at most the limit."""

from __future__ import annotations

import json
import re

from django.conf import settings

from apps.core.errors import error_body
from apps.core.ids import new_id

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class _TooLarge(Exception):
    pass


def _limit_for(path: str) -> int:
    from apps.core.middleware import UPLOAD_PATHS

    if path.rstrip("/").startswith(UPLOAD_PATHS):
        return settings.API_MAX_UPLOAD_BYTES
    return settings.API_MAX_BODY_BYTES


class ApiBodyLimit:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope.get("path", "").startswith("/api/"):
            return await self.app(scope, receive, send)
        limit = _limit_for(scope["path"])
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await _send_413(scope, send, limit)


async def _send_413(scope, send, limit: int) -> None:
    incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
    request_id = incoming if _REQUEST_ID_RE.match(incoming) else new_id("req")
    body = json.dumps(error_body("PAYLOAD_TOO_LARGE", f"The body is over the {limit} byte limit.",
                                 {"limit_bytes": limit}, request_id)).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()), (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})
