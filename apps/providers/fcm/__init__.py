"""FCM HTTP v1 (https://firebase.google.com/docs/cloud-messaging/send/v1-api): a service account's OAuth2
JWT-bearer token (RS256 assertion signed with the account's private key, exchanged at its token_uri,
cached until shortly before it expires) and messages:send per registration token. Tokens FCM reports
UNREGISTERED (404) or INVALID_ARGUMENT for the token come back as `invalid_token` so the caller forgets
them."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_INVALID = {"UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH"}


@dataclass(frozen=True)
class PushResult:
    ok: bool
    invalid_token: bool = False
    status: int = 0
    error: str = ""
    name: str = ""  # FCM's message name on success


def service_account_load(value: str) -> dict | None:
    """FCM_SERVICE_ACCOUNT_JSON holds the JSON itself or a path to it."""
    value = (value or "").strip()
    if not value:
        return None
    return json.loads(value if value.startswith("{") else Path(value).read_text())


class FcmClient:
    def __init__(self, *, service_account: dict, api_url: str | None = None, timeout: float | None = None):
        self.account = service_account
        self.project_id = service_account["project_id"]
        self.api_url = (api_url or settings.FCM_API_URL).rstrip("/")
        self.timeout = float(timeout or settings.FCM_HTTP_TIMEOUT)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=16, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def _access_token(self) -> str:
        with self._lock:
            if self._token and self._token[1] > time.time() + 60:
                return self._token[0]
            now = int(time.time())
            token_uri = self.account.get("token_uri") or "https://oauth2.googleapis.com/token"
            assertion = jwt.encode({"iss": self.account["client_email"], "scope": SCOPE, "aud": token_uri,
                                    "iat": now, "exp": now + 3600}, self.account["private_key"], algorithm="RS256",
                                   headers={"kid": self.account.get("private_key_id", "")})
            resp = self.session.post(token_uri, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                                      "assertion": assertion}, timeout=self.timeout)
            resp.raise_for_status()
            body = resp.json()
            self._token = (body["access_token"], now + int(body.get("expires_in", 3600)))
            return self._token[0]

    def send(self, *, token: str, title: str, body: str, data: dict[str, str] | None = None) -> PushResult:
        message = {"token": token, "notification": {"title": title[:100], "body": body[:240]},
                   "data": {k: str(v) for k, v in (data or {}).items()},
                   "android": {"priority": "high"}, "apns": {"headers": {"apns-priority": "10"}}}
        try:
            resp = self.session.post(f"{self.api_url}/v1/projects/{self.project_id}/messages:send",
                                     json={"message": message}, timeout=self.timeout,
                                     headers={"Authorization": f"Bearer {self._access_token()}"})
        except requests.RequestException as exc:
            return PushResult(ok=False, error=f"{type(exc).__name__}: {exc}")
        if resp.status_code == 200:
            return PushResult(ok=True, status=200, name=str(resp.json().get("name", "")))
        try:
            error = resp.json().get("error", {})
        except ValueError:
            error = {}
        codes = {d.get("errorCode") for d in error.get("details", []) if isinstance(d, dict)}
        codes.add(error.get("status"))
        invalid = resp.status_code in (400, 404) and bool(codes & _INVALID)
        return PushResult(ok=False, invalid_token=invalid, status=resp.status_code,
                          error=str(error.get("message") or resp.text[:200]))

    def close(self) -> None:
        self.session.close()


_clients: dict[str, FcmClient] = {}
_clients_lock = threading.Lock()


def get_fcm_client() -> FcmClient | None:
    """The configured client (None when FCM_SERVICE_ACCOUNT_JSON is not set)."""
    key = f"{settings.FCM_API_URL}|{settings.FCM_SERVICE_ACCOUNT_JSON[:64]}"
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            account = service_account_load(settings.FCM_SERVICE_ACCOUNT_JSON)
            if account is None:
                return None
            client = _clients[key] = FcmClient(service_account=account)
        return client
