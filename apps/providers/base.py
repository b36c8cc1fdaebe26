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
        maybe_sent: bool = False,
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
        # The request may have reached the provider before the failure (a read timeout, a connection cut
        # after the body was written): the send's outcome is unknown, so it must not simply be sent again.
        self.maybe_sent = maybe_sent

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


# Meta code -> our code, retry policy and default HTTP status: derived from the one failure table
# (apps.providers.failures), so the mapping, the reasons and the actions never disagree. `growing` (131049)
# and `later` (a paused template, a throttled flow) are not dispatcher retries: terminal here.
def _meta_code(row) -> MetaCode:
    from apps.providers.failures import BACKOFF

    return MetaCode(row.code, row.retry == BACKOFF, row.http_status,
                    row.retry_after if row.retry == BACKOFF else None, row.not_on_whatsapp)


def _meta_codes() -> dict[int, MetaCode]:
    from apps.providers.failures import META_FAILURES

    return {code: _meta_code(row) for code, row in META_FAILURES.items()}


META_CODES: dict[int, MetaCode] = _meta_codes()


def meta_code_info(code: int) -> MetaCode | None:
    from apps.providers.failures import failure_for_meta_code

    row = failure_for_meta_code(code)
    return _meta_code(row) if row is not None else None


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


def network_error(message: str, *, maybe_sent: bool = False) -> ProviderError:
    """A transport failure (timeout, refused, reset). Retryable. `maybe_sent`: the failure came after the
    request left (a read timeout, a cut connection), so the provider may have accepted it; the dispatcher
    then waits for the provider's report instead of sending again (dispatch.recording)."""
    return ProviderError(code="UPSTREAM_UNAVAILABLE", message=message, retryable=True, retry_after=2.0,
                         maybe_sent=maybe_sent)
