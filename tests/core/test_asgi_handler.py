"""The ASGI handler's threaded routes: the send API runs the full Django stack on a pool thread (not a
thread per request), answers exactly as Django does, and hands its connection back; other routes, and
SQLite, take Django's own road."""

from __future__ import annotations

import json
import threading

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core import signals
from django.db import connections
from django.test import override_settings

from apps.conversations.models import Message
from apps.core.asgi_handler import ThreadedRoutesASGIHandler
from tests.conversations.send_support import TO, contact, live_number

pytestmark = pytest.mark.django_db(transaction=True)


def _scope(path: str, *, method: str = "POST", headers: list | None = None) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"testserver"), *(headers or [])], "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80)}


async def _call(app, scope: dict, body: bytes = b"") -> tuple[int, dict, bytes]:
    scope["headers"].append((b"content-length", str(len(body)).encode()))
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(timeout=20)
    chunks = []
    while True:
        message = await communicator.receive_output(timeout=20)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await communicator.wait(timeout=5)
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, b"".join(chunks)


@pytest.fixture(autouse=True)
async def _close_the_async_orm_connection():
    """The ORM calls of an async test run on asgiref's executor thread, whose connection would outlive the
    test (and keep the test database from being dropped)."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def request_threads():
    names = []

    def record(**kwargs):
        names.append(threading.current_thread().name)

    signals.request_started.connect(record)
    yield names
    signals.request_started.disconnect(record)


@pytest.fixture
def sender(workspace, make_key):
    live_number(workspace)
    contact(workspace, inbound_hours_ago=1)
    return make_key(workspace)


@pytest.mark.skipif("not __import__('django.conf').conf.settings.IS_POSTGRES")
async def test_the_send_api_runs_on_the_pool_with_the_whole_stack(sender, request_threads):
    app = ThreadedRoutesASGIHandler()
    assert app.threaded_paths == {"/api/v1/messages"}
    headers = [(b"authorization", f"Bearer {sender}".encode()), (b"content-type", b"application/json"),
               (b"x-request-id", b"req-threaded-1")]
    status, response_headers, body = await _call(
        app, _scope("/api/v1/messages", headers=headers), json.dumps({"to": TO, "text": {"body": "hi"}}).encode())
    assert status == 202, body
    assert request_threads and request_threads[-1].startswith("api")
    payload = json.loads(body)
    message = await Message.objects.aget(pk=payload["id"])
    assert (message.status, message.body, payload["to"]) == ("queued", "hi", TO)
    # Middleware and DRF ran: request id echoed, rate-limit and security headers present.
    assert response_headers["x-request-id"] == "req-threaded-1"
    assert "x-ratelimit-limit" in response_headers and response_headers["x-content-type-options"] == "nosniff"


@pytest.mark.skipif("not __import__('django.conf').conf.settings.IS_POSTGRES")
async def test_errors_on_the_pool_use_the_api_envelope(sender):
    app = ThreadedRoutesASGIHandler()
    status, headers, body = await _call(app, _scope("/api/v1/messages", headers=[
        (b"authorization", b"Bearer ak_live_nope"), (b"content-type", b"application/json")]), b"{}")
    assert status == 401 and json.loads(body)["error"]["code"] == "INVALID_API_KEY"
    status, _, body = await _call(app, _scope("/api/v1/messages", headers=[
        (b"authorization", f"Bearer {sender}".encode()), (b"content-type", b"application/json")]), b"{not json")
    assert status == 400 and json.loads(body)["error"]["code"] == "INVALID_JSON"
    assert await Message.objects.acount() == 0


async def test_other_routes_take_djangos_road(request_threads):
    app = ThreadedRoutesASGIHandler()
    status, _, body = await _call(app, _scope("/healthz", method="GET"))
    assert status == 200
    assert request_threads and not request_threads[-1].startswith("api")


def test_sqlite_or_an_empty_setting_threads_nothing():
    with override_settings(API_THREADED_PATHS=[]):
        assert ThreadedRoutesASGIHandler().threaded_paths == frozenset()
    with override_settings(IS_POSTGRES=False):
        assert ThreadedRoutesASGIHandler().threaded_paths == frozenset()
