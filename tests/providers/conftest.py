"""Fixtures: a real fakemeta server on a free loopback port (own event loop thread) posting signed webhooks
to a real local HTTP sink. Other apps' e2e tests can reuse `fakemeta` / `webhook_sink` through
`apps.providers.simulator.testing.start_fakemeta_in_thread`."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.providers.meta_cloud.client import GraphClient
from apps.providers.simulator.testing import start_fakemeta_in_thread

APP_SECRET = "prov-test-secret"


class WebhookSink:
    """Records every POST (raw body + signature header); answers `fail_next` requests with 500 first."""

    def __init__(self):
        self.requests: list[tuple[bytes, str | None]] = []
        self.fail_next = 0
        self.verify_token = "vt"
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink.lock:
                    if sink.fail_next > 0:
                        sink.fail_next -= 1
                        status = 500
                    else:
                        sink.requests.append((body, self.headers.get("X-Hub-Signature-256")))
                        status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                from urllib.parse import parse_qs, urlsplit

                q = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                ok = q.get("hub.mode") == "subscribe" and q.get("hub.verify_token") == sink.verify_token
                body = q.get("hub.challenge", "").encode() if ok else b"forbidden"
                self.send_response(200 if ok else 403)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/webhooks/meta"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def payloads(self) -> list[dict]:
        with self.lock:
            return [json.loads(b) for b, _ in self.requests]

    def statuses(self) -> list[dict]:
        return [st for p in self.payloads() for e in p["entry"] for c in e["changes"]
                for st in c["value"].get("statuses", [])]

    def messages(self) -> list[dict]:
        return [m for p in self.payloads() for e in p["entry"] for c in e["changes"]
                for m in c["value"].get("messages", [])]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def webhook_sink():
    sink = WebhookSink()
    yield sink
    sink.close()


@pytest.fixture
def fakemeta(webhook_sink):
    handle = start_fakemeta_in_thread(webhook_url=webhook_sink.url, app_secret=APP_SECRET)
    handle.register_number(phone_number_id="1061", waba_id="W1", display_phone_number="15550783881")
    yield handle
    handle.stop()


@pytest.fixture
def graph(fakemeta):
    client = GraphClient(base_url=fakemeta.base_url, version="v23.0", timeout=5)
    yield client
    client.close()
