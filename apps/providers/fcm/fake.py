"""A fake FCM HTTP v1 + Google OAuth2 token endpoint over a real socket (tests, local runs).

POST /token: checks the RS256 assertion against the service account it issued (`service_account()`),
answers an access token. POST /v1/projects/{id}/messages:send: needs that bearer token; registration
tokens in `unregistered` answer 404 UNREGISTERED, as FCM does for an uninstalled app."""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class FakeFcm:
    def __init__(self, *, project_id: str = "reach-test"):
        self.project_id = project_id
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode()
        self.public_key = key.public_key()
        self.access_tokens: set[str] = set()
        self.unregistered: set[str] = set()
        self.sends: list[dict] = []  # every messages:send body
        self.token_requests = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, data):
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/token":
                    return self._send(*fake.token(body))
                if self.path == f"/v1/projects/{fake.project_id}/messages:send":
                    return self._send(*fake.send(self.headers.get("Authorization", ""), body))
                return self._send(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "no route"}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def service_account(self) -> dict:
        return {"type": "service_account", "project_id": self.project_id, "private_key_id": "k1",
                "private_key": self.private_pem, "client_email": f"push@{self.project_id}.iam.gserviceaccount.com",
                "token_uri": f"{self.base_url}/token"}

    def token(self, body: bytes):
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        try:
            claims = jwt.decode(form.get("assertion", ""), self.public_key, algorithms=["RS256"],
                                audience=f"{self.base_url}/token")
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or "firebase.messaging" not in \
                claims.get("scope", ""):
            return 400, {"error": "invalid_grant"}
        token = "ya29." + secrets.token_urlsafe(24)
        with self.lock:
            self.access_tokens.add(token)
            self.token_requests += 1
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def send(self, authorization: str, body: bytes):
        if authorization.removeprefix("Bearer ") not in self.access_tokens:
            return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "bad token"}}
        data = json.loads(body)
        with self.lock:
            self.sends.append(data)
        target = data.get("message", {}).get("token", "")
        if target in self.unregistered:
            return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "Requested entity was not found.",
                                   "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                                "errorCode": "UNREGISTERED"}]}}
        return 200, {"name": f"projects/{self.project_id}/messages/{secrets.token_hex(8)}"}

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
