"""Health, readiness and the JSON error handlers Django uses outside DRF."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from drf_spectacular.views import SpectacularAPIView
from rest_framework.response import Response

from apps.core.errors import error_body
from apps.core.middleware import is_api_path

logger = logging.getLogger("reach.health")


def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_broker() -> str:
    from celery import current_app

    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


def _check_channel_layer() -> str:
    """A message round trip through the layer, in one event loop (a pub/sub layer's channel lives in the loop
    that made it), bounded in time, and the probe's channel let go afterwards."""
    from channels.layers import get_channel_layer

    async def round_trip() -> dict:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "readyz.ping"})
        async with asyncio.timeout(2):  # a timeout cancels the receive, which lets the channel go
            message = await layer.receive(channel)
        # Channels has no "delete channel": a cancelled receive is how a layer drops one (the pub/sub layer
        # unsubscribes it), so a probe every few seconds does not pile up subscriptions.
        pending = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0)
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pending
        return message

    try:
        message = async_to_sync(round_trip)()
    except TimeoutError:
        return "no reply within 2 s"
    return "ok" if message.get("type") == "readyz.ping" else "unexpected reply"


def _check_redis() -> str:
    from apps.core.redis import get_redis

    get_redis().ping()
    return "ok"


def _background_status() -> dict:
    """Informational, not part of the verdict: a web-only process is ready even when the worker runs
    elsewhere. The heartbeat is written by a beat-scheduled task, so its age covers beat, broker and worker."""
    import time

    from apps.core.redis import get_redis
    from apps.core.tasks import HEARTBEAT_KEY

    try:
        raw = get_redis().get(HEARTBEAT_KEY)
    except Exception:
        return {"last_heartbeat_age_seconds": None}
    age = round(time.time() - float(raw), 1) if raw else None
    return {"last_heartbeat_age_seconds": age}


def readyz(request):
    checks = {}
    for name, check in (("database", _check_database), ("broker", _check_broker),
                        ("channel_layer", _check_channel_layer), ("redis", _check_redis)):
        try:
            checks[name] = check()
        except Exception as exc:  # report, never raise: this is what monitoring reads
            logger.warning("readiness check %s failed: %s", name, exc)
            checks[name] = "unavailable"
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks,
            "mode": "embedded" if settings.EMBEDDED else "external", "background": _background_status()}
    return JsonResponse(body, status=200 if ready else 503)


def handler404(request, exception=None):
    if is_api_path(request.path):
        return JsonResponse(error_body("NOT_FOUND", "No such resource.", {}, getattr(request, "request_id", "")),
                            status=404)
    return HttpResponse("<h1>Not found</h1>", status=404)


def handler500(request):
    if is_api_path(request.path):
        return JsonResponse(
            error_body("INTERNAL_ERROR", "Something went wrong on our side.", {}, getattr(request, "request_id", "")),
            status=500,
        )
    return HttpResponse("<h1>Server error</h1>", status=500)


class SchemaView(SpectacularAPIView):
    """/api/v1/schema, built once per process: the document only changes with the code, and building it
    walks every view (seconds on a busy machine)."""

    _built: dict = {}

    def _get_schema_response(self, request):
        version = self.api_version or request.version or self._get_version_parameter(request)
        if version not in self._built:
            generator = self.generator_class(urlconf=self.urlconf, api_version=version, patterns=self.patterns)
            self._built[version] = generator.get_schema(request=request, public=self.serve_public)
        return Response(data=self._built[version], headers={
            "Content-Disposition": f'inline; filename="{self._get_filename(request, version)}"'})


# The docs pages load nothing from elsewhere: the browser is told so (Redoc's sidebar links a logo on a CDN).
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; connect-src 'self'; font-src 'self' data:")


def offline(view):
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CSP
        return response

    return wrapped
