"""The Send API client: POST /{page-id}/messages (Messenger) and POST /{ig-user-id}/messages (Instagram).

The base URL is the operator's setting (META_GRAPH_URL, or a fakemeta), never derived from input; the
account id is path-quoted, so no id can point the request elsewhere (the Graph client's rule)."""

from __future__ import annotations

import json
from urllib.parse import quote

import requests
from django.conf import settings

from apps.providers.base import ProviderError, SendResult, network_error

# Meta's Messenger Platform errors worth their own code (others follow the Graph client's mapping).
_OUTSIDE_WINDOW_SUBCODES = {2018278, 2534022}  # sent outside the allowed window / tag not allowed
_UNAVAILABLE_CODES = {551}  # the person is not available (blocked the Page, deactivated)


def error_from_send_response(status: int, text: str, retry_after: str | None = None) -> ProviderError:
    from apps.providers.meta_cloud.client import error_from_response

    try:
        err = json.loads(text).get("error") or {}
    except (ValueError, AttributeError):
        err = {}
    code, sub = err.get("code"), err.get("error_subcode")
    message = str(err.get("message") or f"HTTP {status}")
    if sub in _OUTSIDE_WINDOW_SUBCODES or (code == 10 and sub is None and "window" in message.lower()):
        return ProviderError(code="OUTSIDE_24H_WINDOW", message=message, upstream_code=code, retryable=False,
                             http_status=status)
    if code in _UNAVAILABLE_CODES:
        return ProviderError(code="RECIPIENT_UNAVAILABLE", message=message, upstream_code=code, retryable=False,
                             http_status=status)
    return error_from_response(status, text, retry_after)


class SocialSendClient:
    def __init__(self, base_url: str | None = None, version: str | None = None, timeout: float | None = None):
        self.base_url = (base_url or settings.META_GRAPH_URL).rstrip("/")
        self.version = version or settings.META_GRAPH_VERSION
        self.timeout = float(timeout or settings.META_HTTP_TIMEOUT)
        self.session = requests.Session()

    def send(self, *, account_id: str, access_token: str, payload: dict) -> SendResult:
        url = f"{self.base_url}/{self.version}/{quote(str(account_id), safe='')}/messages"
        try:
            resp = self.session.post(url, json=payload, headers={"Authorization": f"Bearer {access_token}"},
                                     timeout=(min(3.05, self.timeout), self.timeout), allow_redirects=False)
        except requests.RequestException as exc:
            raise network_error(f"{type(exc).__name__}: {exc}")
        if resp.status_code >= 300:
            raise error_from_send_response(resp.status_code, resp.text, resp.headers.get("Retry-After"))
        try:
            data = resp.json()
            return SendResult(provider_message_id=str(data["message_id"]), wa_id=data.get("recipient_id"),
                              message_status=None)
        except (ValueError, KeyError, TypeError):
            raise ProviderError(code="UPSTREAM_ERROR", message="The Send API answered without message_id",
                                retryable=False, http_status=resp.status_code)

    def close(self) -> None:
        self.session.close()
