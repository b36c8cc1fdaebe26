"""faketwilio: a fake of Twilio's Messages API over a real socket, for tests, the e2e suite and local runs.

POST /2010-04-01/Accounts/{sid}/Messages.json (HTTP basic auth: account sid + auth token), form fields
To, From | MessagingServiceSid, Body, StatusCallback -> 201 with the message resource; then, from a
background thread, signed status callbacks (X-Twilio-Signature) `sent` and `delivered` (or `undelivered`
with error 30003 for UNDELIVERED_NUMBERS) to StatusCallback, in order. GET .../Messages/{sid}.json -> the
resource, priced once delivered or undelivered (`price` negative, as Twilio reports charges).
Magic recipients: +15550002001 -> 400 code 21211 (invalid To); +15550002002 -> 503 on its first send;
+15550003001 -> accepted, then `undelivered`.
Admin (tests): POST /_admin/inbound {"from","to","body","url"} posts a signed inbound SMS webhook to url;
GET /_admin/messages lists what was sent; POST /_admin/reset forgets everything."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests

from apps.providers.sms.segments import sms_segments
from apps.providers.sms.twilio import twilio_signature

logger = logging.getLogger("reach.faketwilio")

INVALID_NUMBER = "+15550002001"
TRANSIENT_ONCE = "+15550002002"
UNDELIVERED_NUMBERS = frozenset({"+15550003001"})


class FakeTwilio:
    def __init__(self, *, account_sid: str = "ACfake", auth_token: str = "fake-token", host: str = "127.0.0.1",  # noqa: S107 - a fake
                 port: int = 0, price_per_segment: Decimal = Decimal("0.0079"), callback_delay: float = 0.0):
        self.account_sid, self.auth_token = account_sid, auth_token
        self.price_per_segment, self.callback_delay = price_per_segment, callback_delay
        self.messages: dict[str, dict] = {}
        self.callbacks: list[dict] = []  # every status callback posted: {"url", "params", "status_code"}
        self.requests: list[dict] = []  # every send request's form
        self.transient_seen: set[str] = set()
        self.lock = threading.Lock()
        self.session = requests.Session()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _send(self, status: int, data) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                fake.handle(self, "GET", b"")

            def do_POST(self):
                fake.handle(self, "POST", self._body())

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> FakeTwilio:
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="faketwilio", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.session.close()

    # -- routing -----------------------------------------------------------------------------------------
    def _authorized(self, handler) -> bool:
        auth = handler.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.account_sid and password == self.auth_token

    def handle(self, handler, method: str, body: bytes) -> None:
        path = urlsplit(handler.path).path
        if path.startswith("/_admin/"):
            return self._admin(handler, method, path, body)
        prefix = f"/2010-04-01/Accounts/{self.account_sid}/Messages"
        if not path.startswith(prefix):
            return handler._send(404, {"code": 20404, "message": "The requested resource was not found",
                                       "status": 404})
        if not self._authorized(handler):
            return handler._send(401, {"code": 20003, "message": "Authentication Error - invalid credentials",
                                       "status": 401})
        if method == "POST" and path == prefix + ".json":
            form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
            status, data = self.send(form)
            return handler._send(status, data)
        if method == "GET" and path.endswith(".json"):
            sid = path[len(prefix) + 1:-5]
            with self.lock:
                msg = self.messages.get(sid)
            if msg is None:
                return handler._send(404, {"code": 20404, "message": f"Message {sid} not found", "status": 404})
            return handler._send(200, self._resource(msg))
        return handler._send(405, {"code": 20004, "message": "Method not allowed", "status": 405})

    def _admin(self, handler, method: str, path: str, body: bytes) -> None:
        if method == "GET" and path == "/_admin/messages":
            with self.lock:
                return handler._send(200, {"data": [self._resource(m) for m in self.messages.values()]})
        if method == "POST" and path == "/_admin/reset":
            with self.lock:
                self.messages.clear()
                self.callbacks.clear()
                self.requests.clear()
                self.transient_seen.clear()
            return handler._send(200, {"ok": True})
        if method == "POST" and path == "/_admin/inbound":
            data = json.loads(body or b"{}")
            code = self.post_inbound(url=data["url"], from_phone=data["from"], to_phone=data["to"],
                                     text=data.get("body", ""))
            return handler._send(200, {"status_code": code})
        return handler._send(404, {"code": 20404, "message": "unknown admin route", "status": 404})

    # -- the Messages API ------------------------------------------------------------------------------------
    def send(self, form: dict) -> tuple[int, dict]:
        to, text = form.get("To", ""), form.get("Body", "")
        with self.lock:
            self.requests.append(dict(form))
        if not to.startswith("+") or to == INVALID_NUMBER:
            return 400, {"code": 21211, "message": f"The 'To' number {to} is not a valid phone number.",
                         "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return 400, {"code": 21603, "message": "A 'From' or 'MessagingServiceSid' parameter is required",
                         "status": 400}
        if to == TRANSIENT_ONCE:
            with self.lock:
                first = to not in self.transient_seen
                self.transient_seen.add(to)
            if first:
                return 503, {"code": 20503, "message": "Service unavailable", "status": 503}
        sid = "SM" + secrets.token_hex(16)
        msg = {"sid": sid, "to": to, "from": form.get("From") or form.get("MessagingServiceSid"), "body": text,
               "status": "queued", "num_segments": sms_segments(text).segments, "error_code": None,
               "callback": form.get("StatusCallback", ""), "date_created": time.time()}
        with self.lock:
            self.messages[sid] = msg
        if msg["callback"]:
            threading.Thread(target=self._progress, args=(sid,), daemon=True).start()
        return 201, self._resource(msg)

    def _resource(self, msg: dict) -> dict:
        final = msg["status"] in ("delivered", "undelivered", "failed")
        price = -(self.price_per_segment * msg["num_segments"]) if final else None
        return {"sid": msg["sid"], "account_sid": self.account_sid, "to": msg["to"], "from": msg["from"],
                "body": msg["body"], "status": msg["status"], "num_segments": str(msg["num_segments"]),
                "direction": "outbound-api", "price": None if price is None else f"{price:.5f}",
                "price_unit": "USD", "error_code": msg["error_code"], "error_message": None,
                "api_version": "2010-04-01", "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/"
                                                     f"{msg['sid']}.json"}

    def _progress(self, sid: str) -> None:
        with self.lock:
            msg = self.messages[sid]
        steps = ["sent", "undelivered" if msg["to"] in UNDELIVERED_NUMBERS else "delivered"]
        for step in steps:
            if self.callback_delay:
                time.sleep(self.callback_delay)
            with self.lock:
                msg["status"] = step
                if step == "undelivered":
                    msg["error_code"] = 30003
            params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": self.account_sid, "From": msg["from"],
                      "To": msg["to"], "MessageStatus": step, "SmsStatus": step, "ApiVersion": "2010-04-01"}
            if step == "undelivered":
                params["ErrorCode"] = "30003"
            self._post_signed(msg["callback"], params)

    def _post_signed(self, url: str, params: dict) -> int:
        signature = twilio_signature(auth_token=self.auth_token, url=url, params=params)
        status = 0
        for attempt in range(4):  # Twilio retries a callback that failed to connect or answered 5xx
            try:
                status = self.session.post(url, data=params, headers={"X-Twilio-Signature": signature},
                                           timeout=5).status_code
            except requests.RequestException:
                status = 0
            if 0 < status < 500:
                break
            time.sleep(0.1 * (attempt + 1))
        with self.lock:
            self.callbacks.append({"url": url, "params": params, "status_code": status})
        return status

    def post_inbound(self, *, url: str, from_phone: str, to_phone: str, text: str) -> int:
        sid = "SM" + secrets.token_hex(16)
        params = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": self.account_sid,
                  "From": from_phone, "To": to_phone, "Body": text, "NumMedia": "0",
                  "NumSegments": str(max(1, sms_segments(text).segments)), "ApiVersion": "2010-04-01"}
        if text.strip().upper() in ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"):
            params["OptOutType"] = "STOP"
        return self._post_signed(url, params)

    def wait_callbacks(self, n: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.callbacks) >= n:
                    return list(self.callbacks)
            time.sleep(0.01)
        with self.lock:
            return list(self.callbacks)
