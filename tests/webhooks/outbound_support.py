"""Test support for outbound webhooks: a real HTTP receiver on 127.0.0.1 (free port, own thread) whose
answer per path is scripted, and helpers to append events the way the write layer does."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction

from apps.core.events import event_type_get
from apps.core.services import event_append


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    at: float = field(default_factory=time.time)


class Receiver:
    """Each path answers from its script (a list consumed in order; the last entry repeats).
    An entry is an int status, or ("status", code, headers), ("hang", seconds), ("close",)."""

    def __init__(self):
        self.requests: list[Received] = []
        self.scripts: dict[str, list] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    script = receiver.scripts.get(self.path, [200])
                    entry = script.pop(0) if len(script) > 1 else script[0]
                if isinstance(entry, int):
                    entry = ("status", entry, {})
                if entry[0] == "hang":
                    time.sleep(entry[1])
                    entry = ("status", 200, {})
                if entry[0] == "close":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                _, code, headers = entry
                payload = b'{"ok":true}' if 200 <= code < 300 else b"nope " * 2000
                try:
                    self.send_response(code)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout, killed worker)
                    self.close_connection = True

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default backlog of 5 drops SYNs when a worker opens 64 at once
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, entries: list) -> None:
        with self.lock:
            self.scripts[path] = list(entries)

    def for_path(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def allow_http(settings):
    settings.REACH_ALLOW_HTTP_WEBHOOKS = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    settings.WEBHOOK_RETRY_JITTER = 0.0
    return settings


def emit(workspace, type_: str = "message.inbound", data: dict | None = None):
    """Append one event; its data is the type's registered example unless given."""
    with transaction.atomic():
        return event_append(workspace=workspace, type=type_,
                            data=data if data is not None else event_type_get(type_).example)
