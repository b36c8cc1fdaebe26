"""Twilio's Messages API (2010-04-01): send, fetch a message's final price, validate and parse the
status callbacks and the inbound-SMS webhook. https://www.twilio.com/docs/messaging/api/message-resource

Signatures (X-Twilio-Signature): base64(HMAC-SHA1(auth_token, full URL + every POST parameter's name and
value, sorted by name)). Errors: HTTP 429 and 5xx are retryable, other 4xx terminal; Twilio's numeric
code travels as `upstream_code`."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from apps.providers.base import ProviderError, network_error
from apps.providers.sms.base import SmsInbound, SmsPrice, SmsResult, SmsStatusUpdate

API_VERSION = "2010-04-01"
# Twilio's MessageStatus -> ours ('' = no public move: still queued on our side).
STATUS_MAP = {"accepted": "", "scheduled": "", "queued": "", "sending": "", "sent": "sent",
              "delivered": "delivered", "read": "read", "undelivered": "failed", "failed": "failed",
              "canceled": "failed", "receiving": "", "received": ""}
# Twilio error codes that mean "this recipient cannot get SMS" (terminal whatever the HTTP status).
TERMINAL_CODES = {21211: "INVALID_RECIPIENT", 21408: "COUNTRY_RESTRICTED", 21610: "RECIPIENT_UNSUBSCRIBED",
                  21614: "INVALID_RECIPIENT", 30003: "SMS_UNDELIVERABLE", 30005: "SMS_UNDELIVERABLE",
                  30006: "SMS_UNDELIVERABLE", 30007: "SMS_FILTERED"}


def twilio_signature(*, auth_token: str, url: str, params: dict[str, str | list[str]]) -> str:
    payload = url
    for key in sorted(params):
        values = params[key] if isinstance(params[key], list) else [params[key]]
        for value in sorted(values):
            payload += f"{key}{value}"
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_signature_valid(*, auth_token: str, url: str, params: dict, signature: str | None) -> bool:
    if not auth_token or not signature:
        return False
    return hmac.compare_digest(twilio_signature(auth_token=auth_token, url=url, params=params), signature)


def _decimal(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return abs(Decimal(str(value)))  # Twilio reports charges as negative amounts
    except InvalidOperation:
        return None


def _int(value, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _price(data: dict) -> SmsPrice | None:
    total = _decimal(data.get("price") if "price" in data else data.get("Price"))
    if total is None:
        return None
    unit = str(data.get("price_unit") or data.get("PriceUnit") or "USD").upper()
    segments = _int(data.get("num_segments") or data.get("NumSegments"), 1)
    return SmsPrice(total=total, currency=unit, segments=max(segments, 1))


def error_from_twilio(status: int, body: dict | None, text: str = "", retry_after: str | None = None) -> ProviderError:
    body = body if isinstance(body, dict) else {}
    code = _int(body.get("code"), 0) or None
    message = str(body.get("message") or text[:200] or f"HTTP {status}")
    if code in TERMINAL_CODES:
        return ProviderError(code=TERMINAL_CODES[code], message=message, upstream_code=code, retryable=False,
                             http_status=status)
    if status == 429 or code == 20429:
        return ProviderError(code="UPSTREAM_RATE_LIMITED", message=message, upstream_code=code, retryable=True,
                             retry_after=float(_int(retry_after, 1) or 1), http_status=status)
    if status >= 500:
        return ProviderError(code="UPSTREAM_UNAVAILABLE", message=message, upstream_code=code, retryable=True,
                             retry_after=float(_int(retry_after, 2) or 2), http_status=status)
    if status in (401, 403):
        return ProviderError(code="AUTH_FAILED", message=message, upstream_code=code, http_status=status)
    return ProviderError(code="INVALID_REQUEST", message=message, upstream_code=code, http_status=status)


class TwilioSmsGateway:
    name = "twilio"

    def __init__(self, *, account_sid: str | None = None, auth_token: str | None = None,
                 base_url: str | None = None, default_sender: str | None = None,
                 messaging_service_sid: str | None = None, status_callback_url: str | None = None,
                 timeout: float | None = None):
        self.account_sid = account_sid if account_sid is not None else settings.TWILIO_ACCOUNT_SID
        self.auth_token = auth_token if auth_token is not None else settings.TWILIO_AUTH_TOKEN
        self.base_url = (base_url or settings.TWILIO_API_URL).rstrip("/")
        self.default_sender = default_sender if default_sender is not None else settings.SMS_DEFAULT_SENDER
        self.messaging_service_sid = (messaging_service_sid if messaging_service_sid is not None
                                      else settings.TWILIO_MESSAGING_SERVICE_SID)
        self.status_callback_url = (status_callback_url if status_callback_url is not None
                                    else f"{settings.REACH_PUBLIC_URL}/webhooks/sms/twilio/status")
        self.timeout = float(timeout or settings.SMS_HTTP_TIMEOUT)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=16, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}/{path}"

    def _call(self, method: str, path: str, **kwargs) -> dict:
        try:
            resp = self.session.request(method, self._url(path), auth=(self.account_sid, self.auth_token),
                                        timeout=(min(3.05, self.timeout), self.timeout), **kwargs)
        except requests.RequestException as exc:
            raise network_error(f"{type(exc).__name__}: {exc}")
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code >= 400:
            raise error_from_twilio(resp.status_code, body, resp.text, resp.headers.get("Retry-After"))
        if not isinstance(body, dict):
            raise ProviderError(code="UPSTREAM_ERROR", message="Twilio answered with a non-JSON body",
                                retryable=False, http_status=resp.status_code)
        return body

    def send_sms(self, *, to: str, text: str, sender: str = "") -> SmsResult:
        form = {"To": to, "Body": text}
        if self.status_callback_url:
            form["StatusCallback"] = self.status_callback_url
        if sender or not self.messaging_service_sid:
            form["From"] = sender or self.default_sender
        else:
            form["MessagingServiceSid"] = self.messaging_service_sid
        body = self._call("POST", "Messages.json", data=form)
        if body.get("error_code"):
            raise error_from_twilio(400, {"code": body["error_code"], "message": body.get("error_message")})
        if not body.get("sid"):
            raise ProviderError(code="UPSTREAM_ERROR", message="Twilio answered without a sid", http_status=201)
        price = _price(body)
        return SmsResult(provider_message_id=str(body["sid"]), segments=_int(body.get("num_segments"), 0) or None,
                         price=price.total if price else None, price_unit=price.currency if price else "")

    def message_price(self, *, provider_message_id: str) -> SmsPrice | None:
        return _price(self._call("GET", f"Messages/{provider_message_id}.json"))

    def close(self) -> None:
        self.session.close()


def parse_status_callback(params: dict[str, str], *, at: datetime | None = None) -> SmsStatusUpdate | None:
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    upstream = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    if not sid or not upstream:
        return None
    code = params.get("ErrorCode") or ""
    error_code = TERMINAL_CODES.get(_int(code), "SMS_UNDELIVERABLE") if STATUS_MAP.get(upstream) == "failed" else ""
    message = params.get("ErrorMessage") or (f"Twilio {upstream}" + (f" (error {code})" if code else ""))
    return SmsStatusUpdate(provider_message_id=sid, status=STATUS_MAP.get(upstream, ""), upstream_status=upstream,
                           at=at or datetime.now(UTC), error_code=error_code,
                           error_message=message if error_code else "", price=_price(params))


def parse_inbound(params: dict[str, str], *, at: datetime | None = None) -> SmsInbound | None:
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    if not sid or not params.get("From"):
        return None
    return SmsInbound(provider_message_id=sid, from_phone=params["From"], to_phone=params.get("To", ""),
                      text=params.get("Body", ""), at=at or datetime.now(UTC),
                      segments=_int(params.get("NumSegments"), 1) or 1)


def parse_http_date(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
