"""Which gateway serves an SMS (a sandbox never reaches a real one), and the generic HTTP/JSON adapter
against a local JSON gateway over a socket, with its signed receipts and inbound."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.conversations.models import Message
from apps.conversations.services.dispatch import dispatch_drain
from apps.core.models import Event
from apps.providers import sms as sms_gateways
from apps.providers.sms import SimulatorSmsGateway
from apps.providers.sms.http_json import http_signature
from tests.conversations.send_support import live_number, redis_keys_clear

pytestmark = pytest.mark.django_db

CUSTOMER = "+16505551234"


@pytest.fixture(autouse=True)
def _clean():
    redis_keys_clear()


def test_sandbox_sms_always_goes_to_the_simulator(sandbox_api, workspace, twilio_settings, faketwilio):
    number = workspace.sandbox.phone_numbers.get()
    sim = SimulatorSmsGateway()
    before = len(sim.sent(1000))
    r = sandbox_api.post("/api/v1/messages", {"to": CUSTOMER, "channel": "sms", "text": {"body": "sandbox"}},
                         format="json")
    assert r.status_code == 202, r.content
    dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
    m = Message.objects.get(pk=r.json()["id"])
    assert (m.status, m.provider_message_id[:4], m.sms_segments) == ("sent", "sms_", 1)
    assert m.sms_price_per_segment == Decimal("0.007900")
    assert faketwilio.requests == []  # SMS_GATEWAY=twilio, and still nothing reached it
    assert [s["to"] for s in sim.sent(1000)[: len(sim.sent(1000)) - before]] == [CUSTOMER]


class JsonGateway:
    """A generic SMS aggregator: POST JSON, bearer token, answers {"data": {"ref", "parts", "cost"}}."""

    def __init__(self):
        self.requests: list[tuple[dict, str]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                gateway.requests.append((body, self.headers.get("Authorization")))
                status, answer = (400, {"error": "bad number"}) if body["msisdn"] == "+15550002001" else \
                    (200, {"data": {"ref": f"gw-{len(gateway.requests)}", "parts": 2, "cost": "0.0300",
                                    "ccy": "eur"}})
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/send"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def json_gateway(settings):
    gw = JsonGateway()
    settings.SMS_GATEWAY = "http"
    settings.SMS_HTTP_URL = gw.url
    settings.SMS_HTTP_AUTH_HEADER = "Bearer gw-token"
    settings.SMS_HTTP_FIELDS = {"to": "msisdn", "text": "message", "sender": "originator"}
    settings.SMS_HTTP_EXTRA = {"route": "premium"}
    settings.SMS_HTTP_RESPONSE = {"id": "data.ref", "segments": "data.parts", "price": "data.cost",
                                  "currency": "data.ccy"}
    settings.SMS_HTTP_WEBHOOK_SECRET = "gw-secret"
    settings.SMS_HTTP_RECEIPT = {"id": "ref", "status": "state"}
    settings.SMS_HTTP_STATUS_MAP = {"DELIVRD": "delivered", "UNDELIV": "failed"}
    settings.SMS_DEFAULT_SENDER = "Acme"
    sms_gateways.reset_for_tests()
    yield gw
    gw.close()
    sms_gateways.reset_for_tests()


def _post_signed(client, path, data, secret="gw-secret"):
    body = json.dumps(data).encode()
    return client.post(path, body, content_type="application/json",
                       HTTP_X_REACH_SMS_SIGNATURE=http_signature(secret=secret, body=body))


def test_generic_http_gateway_send_receipt_and_inbound(live_api, workspace, json_gateway, client):
    number = live_number(workspace)
    r = live_api.post("/api/v1/messages", {"to": CUSTOMER, "channel": "sms", "text": {"body": "Hi"}}, format="json")
    assert r.status_code == 202, r.content
    dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
    assert json_gateway.requests == [({"route": "premium", "msisdn": CUSTOMER, "message": "Hi",
                                       "originator": "Acme"}, "Bearer gw-token")]
    m = Message.objects.get(pk=r.json()["id"])
    assert (m.status, m.provider_message_id, m.sms_segments, m.sms_price_per_segment, m.sms_price_currency) == (
        "sent", "gw-1", 2, Decimal("0.015000"), "EUR")

    # A forged receipt changes nothing; a signed one moves the message forward, once.
    forged = _post_signed(client, "/webhooks/sms/http/status", {"ref": "gw-1", "state": "DELIVRD"}, secret="x")
    assert forged.status_code == 401
    assert Message.objects.get(pk=m.pk).status == "sent"
    for _ in range(2):
        assert _post_signed(client, "/webhooks/sms/http/status", {"ref": "gw-1", "state": "DELIVRD"}).status_code == 204
    m.refresh_from_db()
    assert m.status == "delivered"
    assert Event.objects.filter(workspace=workspace, type="message.delivered").count() == 1
    # A late failure after delivery never moves it back.
    assert _post_signed(client, "/webhooks/sms/http/status", {"ref": "gw-1", "state": "UNDELIV"}).status_code == 204
    assert Message.objects.get(pk=m.pk).status == "delivered"

    r = _post_signed(client, "/webhooks/sms/http/inbound", {"id": "in-1", "from": CUSTOMER,
                                                             "to": number.display_phone_number, "text": "hello"})
    assert r.status_code == 200 and r.json()["message_id"].startswith("msg_")
    again = _post_signed(client, "/webhooks/sms/http/inbound", {"id": "in-1", "from": CUSTOMER,
                                                                 "to": number.display_phone_number, "text": "hello"})
    assert again.json()["duplicate"] is True
    assert Message.objects.filter(direction="inbound", channel="sms").count() == 1
    assert client.get("/webhooks/sms/http/status").status_code == 405


def test_generic_http_gateway_terminal_error_fails_the_sms(live_api, workspace, json_gateway):
    number = live_number(workspace)
    r = live_api.post("/api/v1/messages", {"to": "+15550002001", "channel": "sms", "text": {"body": "Hi"}},
                      format="json")
    dispatch_drain(phone_number_id=number.pk, budget_seconds=2)
    m = Message.objects.get(pk=r.json()["id"])
    assert (m.status, m.error_code, m.provider_message_id, m.sms_segments) == ("failed", "INVALID_REQUEST", None, None)
