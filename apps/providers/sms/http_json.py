"""A generic HTTP/JSON SMS gateway, configured entirely by settings (most SMS aggregators take a JSON POST
with a bearer token and answer with a message id):

- SMS_HTTP_URL: where sends are POSTed; SMS_HTTP_AUTH_HEADER: the Authorization header's value;
- SMS_HTTP_FIELDS: our field -> theirs for the request (`to`, `text`, `sender`); SMS_HTTP_EXTRA: constant
  fields merged into every request;
- SMS_HTTP_RESPONSE: our field -> dotted path in their answer (`id`, `segments`, `price`, `currency`);
- delivery receipts and inbound SMS come to /webhooks/sms/http/status and /webhooks/sms/http/inbound as
  JSON, signed `X-Reach-Sms-Signature: sha256=<hex HMAC-SHA256(SMS_HTTP_WEBHOOK_SECRET, body)>`, mapped by
  SMS_HTTP_RECEIPT (`id`, `status`, `error_code`, `error_message`, `price`, `currency`, `segments`),
  SMS_HTTP_STATUS_MAP (their status -> sent | delivered | read | failed) and SMS_HTTP_INBOUND (`id`,
  `from`, `to`, `text`).
HTTP 429/5xx and network errors are retryable; other 4xx terminal."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from apps.providers.base import ProviderError, network_error
from apps.providers.sms.base import SmsInbound, SmsPrice, SmsResult, SmsStatusUpdate

SIGNATURE_HEADER = "X-Reach-Sms-Signature"


def dig(data, path: str):
    """The value at a dotted path (`messages.0.id`), or None."""
    for part in (path or "").split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _decimal(value) -> Decimal | None:
    try:
        return abs(Decimal(str(value))) if value not in (None, "") else None
    except InvalidOperation:
        return None


def http_signature(*, secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def http_signature_valid(*, secret: str, body: bytes, header: str | None) -> bool:
    return bool(secret and header) and hmac.compare_digest(http_signature(secret=secret, body=body), header)


class HttpJsonSmsGateway:
    name = "http"

    def __init__(self, *, url: str | None = None, auth_header: str | None = None, fields: dict | None = None,
                 extra: dict | None = None, response: dict | None = None, timeout: float | None = None,
                 default_sender: str | None = None):
        self.url = url or settings.SMS_HTTP_URL
        self.auth_header = auth_header if auth_header is not None else settings.SMS_HTTP_AUTH_HEADER
        self.fields = {"to": "to", "text": "text", "sender": "from", **(fields or settings.SMS_HTTP_FIELDS)}
        self.extra = extra if extra is not None else dict(settings.SMS_HTTP_EXTRA)
        self.response = {"id": "id", **(response or settings.SMS_HTTP_RESPONSE)}
        self.default_sender = default_sender if default_sender is not None else settings.SMS_DEFAULT_SENDER
        self.timeout = float(timeout or settings.SMS_HTTP_TIMEOUT)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=16, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def send_sms(self, *, to: str, text: str, sender: str = "") -> SmsResult:
        body = {**self.extra, self.fields["to"]: to, self.fields["text"]: text}
        if sender or self.default_sender:
            body[self.fields["sender"]] = sender or self.default_sender
        headers = {"Authorization": self.auth_header} if self.auth_header else {}
        try:
            resp = self.session.post(self.url, json=body, headers=headers,
                                     timeout=(min(3.05, self.timeout), self.timeout))
        except requests.RequestException as exc:
            raise network_error(f"{type(exc).__name__}: {exc}")
        if resp.status_code == 429 or resp.status_code >= 500:
            raise ProviderError(code="UPSTREAM_UNAVAILABLE", message=f"HTTP {resp.status_code}: {resp.text[:200]}",
                                retryable=True, retry_after=float(resp.headers.get("Retry-After") or 2),
                                http_status=resp.status_code)
        if resp.status_code >= 400:
            raise ProviderError(code="INVALID_REQUEST", message=f"HTTP {resp.status_code}: {resp.text[:200]}",
                                http_status=resp.status_code)
        try:
            data = resp.json()
        except ValueError:
            data = None
        sms_id = dig(data, self.response["id"])
        if not sms_id:
            raise ProviderError(code="UPSTREAM_ERROR", message="The SMS gateway answered without a message id",
                                http_status=resp.status_code)
        segments = dig(data, self.response.get("segments", ""))
        price = _decimal(dig(data, self.response.get("price", "")))
        return SmsResult(provider_message_id=str(sms_id), segments=int(segments) if str(segments).isdigit() else None,
                         price=price, price_unit=str(dig(data, self.response.get("currency", "")) or "").upper())

    def message_price(self, *, provider_message_id: str) -> SmsPrice | None:
        return None  # a generic gateway reports its price on the send's answer or in the receipt


def parse_receipt(data: dict, *, mapping: dict | None = None, status_map: dict | None = None,
                  at: datetime | None = None) -> SmsStatusUpdate | None:
    m = {"id": "id", "status": "status", "error_code": "error_code", "error_message": "error_message",
         "price": "price", "currency": "currency", "segments": "segments",
         **(mapping if mapping is not None else settings.SMS_HTTP_RECEIPT)}
    smap = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed", "undelivered": "failed",
            **(status_map if status_map is not None else settings.SMS_HTTP_STATUS_MAP)}
    sms_id, upstream = dig(data, m["id"]), str(dig(data, m["status"]) or "")
    if not sms_id or not upstream:
        return None
    status = smap.get(upstream, smap.get(upstream.lower(), ""))
    total = _decimal(dig(data, m["price"]))
    segments = dig(data, m["segments"])
    price = None if total is None else SmsPrice(
        total=total, currency=str(dig(data, m["currency"]) or "USD").upper(),
        segments=int(segments) if str(segments).isdigit() and int(segments) > 0 else 1)
    failed = status == "failed"
    return SmsStatusUpdate(provider_message_id=str(sms_id), status=status, upstream_status=upstream,
                           at=at or datetime.now(UTC),
                           error_code=str(dig(data, m["error_code"]) or "SMS_UNDELIVERABLE") if failed else "",
                           error_message=str(dig(data, m["error_message"]) or f"gateway status {upstream}")
                           if failed else "", price=price)


def parse_inbound(data: dict, *, mapping: dict | None = None, at: datetime | None = None) -> SmsInbound | None:
    m = {"id": "id", "from": "from", "to": "to", "text": "text",
         **(mapping if mapping is not None else settings.SMS_HTTP_INBOUND)}
    sms_id, sender = dig(data, m["id"]), dig(data, m["from"])
    if not sms_id or not sender:
        return None
    return SmsInbound(provider_message_id=str(sms_id), from_phone=str(sender), to_phone=str(dig(data, m["to"]) or ""),
                      text=str(dig(data, m["text"]) or ""), at=at or datetime.now(UTC))
