"""Provider-neutral results and errors. Meta's error codes are mapped here once (META.md §2), so every
caller branches on our stable `code` and on `retryable`, never on Meta's numbers or HTTP status."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    wa_id: str | None
    message_status: str | None


class ProviderError(Exception):
    def __init__(
        self,
        *,
        code: str,
        message: str,
        upstream_code: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        http_status: int | None = None,
        not_on_whatsapp: bool = False,
        details: str = "",
    ):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.upstream_code = upstream_code
        self.retryable = retryable
        self.retry_after = retry_after
        self.http_status = http_status
        self.not_on_whatsapp = not_on_whatsapp
        self.details = details

    def __repr__(self) -> str:
        return (f"ProviderError(code={self.code!r}, upstream_code={self.upstream_code!r}, "
                f"retryable={self.retryable!r}, http_status={self.http_status!r})")

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "upstream_code": self.upstream_code}


@dataclass(frozen=True)
class MetaCode:
    code: str
    retryable: bool
    http_status: int = 400
    retry_after: float | None = None
    not_on_whatsapp: bool = False


# Meta code -> (our code, retry policy, default HTTP status). Retry policy follows Meta's solution text
# (META.md §2.2). HTTP defaults are what the simulator answers and what we assume when Meta omits it;
# callers must not branch on HTTP status.
_AUTH = MetaCode("AUTH_FAILED", False, 401)
_PERM = MetaCode("PERMISSION_DENIED", False, 403)
_INVALID = MetaCode("INVALID_REQUEST", False, 400)
_UNAVAILABLE = MetaCode("UPSTREAM_UNAVAILABLE", True, 503, 5.0)
_RESTRICTED = MetaCode("ACCOUNT_RESTRICTED", False, 403)
_TEMPLATE = MetaCode("TEMPLATE_REJECTED_UPSTREAM", False, 400)

META_CODES: dict[int, MetaCode] = {
    0: _AUTH,
    190: _AUTH,
    3: MetaCode("PERMISSION_DENIED", False, 500),
    10: _PERM,
    4: MetaCode("APP_RATE_LIMITED", True, 400, 60.0),
    80007: MetaCode("WABA_RATE_LIMITED", True, 400, 60.0),
    130429: MetaCode("UPSTREAM_RATE_LIMITED", True, 429, 1.0),
    # Meta publishes 4^X s backoff for pair limits; the first step is 4 s.
    131056: MetaCode("PAIR_RATE_LIMITED", True, 400, 4.0),
    131048: MetaCode("SPAM_RATE_LIMITED", False, 400),
    131064: MetaCode("MESSAGING_LIMIT_REACHED", False, 400),
    133016: MetaCode("REGISTRATION_RATE_LIMITED", True, 400, 60.0),
    368: _RESTRICTED,
    131031: _RESTRICTED,
    130497: MetaCode("COUNTRY_RESTRICTED", False, 403),
    100: _INVALID,
    131008: _INVALID,
    131009: _INVALID,
    131000: MetaCode("UPSTREAM_ERROR", True, 500, 2.0),
    131016: _UNAVAILABLE,
    2: _UNAVAILABLE,
    131057: MetaCode("UPSTREAM_UNAVAILABLE", True, 503, 60.0),
    131005: _PERM,
    131021: MetaCode("RECIPIENT_IS_SENDER", False, 400),
    131026: MetaCode("RECIPIENT_NOT_ON_WHATSAPP", False, 400, None, True),
    131047: MetaCode("OUTSIDE_24H_WINDOW", False, 400),
    # Retryable only after >=24 h: too long for a dispatcher retry, so terminal here.
    131049: MetaCode("MARKETING_LIMITED", False, 400),
    131050: MetaCode("USER_STOPPED_MARKETING", False, 400),
    130472: MetaCode("MARKETING_EXPERIMENT", False, 400),
    131051: MetaCode("UNSUPPORTED_MESSAGE_TYPE", False, 400),
    131052: MetaCode("MEDIA_ERROR", False, 400),
    131053: MetaCode("MEDIA_ERROR", False, 400),
    131042: MetaCode("PAYMENT_ISSUE", False, 400),
    131030: MetaCode("RECIPIENT_NOT_ALLOWED", False, 400),
    131037: MetaCode("DISPLAY_NAME_NOT_APPROVED", False, 400),
    132000: _TEMPLATE,
    132001: MetaCode("TEMPLATE_REJECTED_UPSTREAM", False, 404),
    132005: _TEMPLATE,
    132007: _TEMPLATE,
    132008: _TEMPLATE,
    132012: _TEMPLATE,
    132015: MetaCode("TEMPLATE_PAUSED", False, 400),
    132016: MetaCode("TEMPLATE_DISABLED", False, 400),
    132068: MetaCode("FLOW_BLOCKED", False, 400),
    132069: MetaCode("FLOW_THROTTLED", True, 400, 360.0),
    133010: MetaCode("PHONE_NOT_REGISTERED", False, 400),
    131062: MetaCode("RECIPIENT_NOT_SUPPORTED", False, 400),
    131063: MetaCode("MARKETING_DISABLED", False, 400),
    135000: MetaCode("UPSTREAM_USER_ERROR", False, 400),
}


def meta_code_info(code: int) -> MetaCode | None:
    info = META_CODES.get(code)
    if info is None and 200 <= code <= 299:
        return _PERM
    return info


def default_http_status(code: int) -> int:
    info = meta_code_info(code)
    return info.http_status if info else 400


def error_from_meta(code: int, message: str, http_status: int | None = None, details: str = "",
                    retry_after: float | None = None) -> ProviderError:
    """Map a Meta error (sync Graph error or async webhook error) to a ProviderError."""
    try:
        code = int(code)
    except (TypeError, ValueError):
        code = -1
    info = meta_code_info(code)
    if info is None:
        # Unknown code: a 5xx is worth a limited retry, anything else is our request's fault.
        retryable = http_status is not None and http_status >= 500
        return ProviderError(code="UPSTREAM_ERROR", message=message or f"Meta error {code}", upstream_code=code,
                             retryable=retryable, retry_after=retry_after or (2.0 if retryable else None),
                             http_status=http_status, details=details)
    return ProviderError(
        code=info.code,
        message=message or info.code,
        upstream_code=code,
        retryable=info.retryable,
        retry_after=retry_after if retry_after is not None else info.retry_after,
        http_status=http_status if http_status is not None else info.http_status,
        not_on_whatsapp=info.not_on_whatsapp,
        details=details,
    )


def network_error(message: str) -> ProviderError:
    """A transport failure (timeout, refused, reset). Retryable; note that a send that timed out may have
    reached Meta, so callers must tolerate a possible duplicate (dedupe happens on status webhooks)."""
    return ProviderError(code="UPSTREAM_UNAVAILABLE", message=message, retryable=True, retry_after=2.0)
