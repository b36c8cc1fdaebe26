"""A lean ASGI fast path for POST /webhooks/meta, in front of Django's ASGI handler.

Meta's webhooks are the hottest endpoint we have (3x outbound mps in statuses, plus inbound) and need
none of the middleware stack: no session, no CSRF, no tenant, no API envelope negotiation. Under Daphne a
Django request costs a thread hop and the whole middleware chain; this path reads the body on the event
loop, verifies the signature and the JSON there, and hands only the INSERT to a small bounded thread
pool (its threads keep their connection, or hand it back to Django's pool when one is configured). The semantics are exactly the Django view's
(apps.webhooks.views_inbound, which still serves GET's handshake and any server without this wrapper):
401 with nothing stored on a bad signature, 413 over the size limit, 400 when not JSON, else the row is
committed before the 200. The committed row then goes to this process's applier (apps/webhooks/applier.py),
or to a worker when that is off or behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import DatabaseError, connection

from apps.core.errors import ApplicationError, error_body
from apps.core.ids import new_id
from apps.core.input_guard import json_loads_strict
from apps.providers.meta_cloud.signatures import verify_signature

logger = logging.getLogger("reach.webhooks.inbound")
PATH = "/webhooks/meta"


def _store(body: bytes) -> None:
    from apps.webhooks.applier import applier
    from apps.webhooks.services.inbound import inbound_webhook_store

    try:
        # Committed here (autocommit), then handed to this process's applier (or, off or behind, a worker).
        inbound_webhook_store(body=body, hand_over=applier.offer)
    except DatabaseError:
        connection.close()  # a broken connection is replaced on this thread's next use
        raise
    if (connection.settings_dict.get("OPTIONS") or {}).get("pool"):
        connection.close()  # pooled: hand it back so these threads never starve Django's requests


class MetaWebhookFastPath:
    def __init__(self, app, *, threads: int | None = None):
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=threads or settings.INBOUND_WEBHOOK_INGEST_THREADS,
                                           thread_name_prefix="meta-webhook-ingest")

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http" or scope.get("path") != PATH or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        request_id = new_id("req")
        headers = dict(scope.get("headers") or [])
        limit = settings.META_WEBHOOK_MAX_BYTES
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return await self._error(send, request_id, 413, "PAYLOAD_TOO_LARGE",
                                     f"The body is over the {limit} byte limit.", {"limit_bytes": limit})
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > limit:
                return await self._error(send, request_id, 413, "PAYLOAD_TOO_LARGE",
                                         f"The body is over the {limit} byte limit.", {"limit_bytes": limit})
            if not message.get("more_body", False):
                break
        raw = bytes(body)
        signature = headers.get(b"x-hub-signature-256")
        if not verify_signature(body=raw, header=signature.decode("latin-1") if signature else None,
                                app_secret=settings.META_APP_SECRET):
            return await self._error(send, request_id, 401, "INVALID_SIGNATURE",
                                     "X-Hub-Signature-256 is missing or does not match.")
        try:
            json_loads_strict(raw)
        except ApplicationError as exc:
            return await self._error(send, request_id, 400, exc.code, exc.message, exc.details)
        try:
            await asyncio.get_running_loop().run_in_executor(self.executor, _store, raw)
        except Exception:  # Meta retries any non-200; nothing was acknowledged
            logger.exception("storing a Meta webhook failed")
            return await self._error(send, request_id, 500, "INTERNAL_ERROR", "Something went wrong on our side.")
        return await self._respond(send, 200, b"OK", b"text/plain", request_id)

    async def _error(self, send, request_id: str, status: int, code: str, message: str, details=None):
        body = json.dumps(error_body(code, message, details or {}, request_id)).encode()
        return await self._respond(send, status, body, b"application/json", request_id)

    @staticmethod
    async def _respond(send, status: int, body: bytes, content_type: bytes, request_id: str) -> None:
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", content_type), (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
        ]})
        await send({"type": "http.response.body", "body": body})
