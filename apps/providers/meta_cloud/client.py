"""Meta Graph API adapter: a pooled synchronous client (requests) and a concurrent sender (aiohttp) for the
dispatcher's batches. Every failure leaves as a ProviderError tagged retryable or terminal (base.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from urllib.parse import quote

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from apps.providers.base import ProviderError, SendResult, error_from_meta, network_error
from apps.providers.meta_cloud.payloads import (
    build_block_users_payload,
    build_mark_read_payload,
    send_endpoint,
)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_from_response(status: int, text: str, retry_after_header: str | None = None) -> ProviderError:
    """Graph error body (META.md §2.1) -> ProviderError; a non-JSON error body falls back on HTTP status."""
    retry_after = _retry_after(retry_after_header)
    try:
        err = json.loads(text).get("error") or {}
    except (ValueError, AttributeError):
        err = {}
    if isinstance(err, dict) and "code" in err:
        details = ""
        if isinstance(err.get("error_data"), dict):
            details = str(err["error_data"].get("details") or "")
        return error_from_meta(err.get("code"), str(err.get("message") or ""), http_status=status,
                               details=details, retry_after=retry_after)
    if status == 429:
        return ProviderError(code="UPSTREAM_RATE_LIMITED", message=f"HTTP {status}", retryable=True,
                             retry_after=retry_after or 1.0, http_status=status)
    retryable = status >= 500 or status == 408
    return ProviderError(code="UPSTREAM_UNAVAILABLE" if retryable else "UPSTREAM_ERROR",
                         message=f"HTTP {status}: {text[:200]}", retryable=retryable,
                         retry_after=retry_after or (2.0 if retryable else None), http_status=status)


def _never_sent(exc: Exception) -> bool:
    """requests: only a failed connect (refused, unreachable, connect timeout) proves the request never left."""
    from urllib3.exceptions import NewConnectionError

    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)


def send_result_from_body(data: dict) -> SendResult:
    try:
        msg = data["messages"][0]
    except (KeyError, IndexError, TypeError):
        raise ProviderError(code="UPSTREAM_ERROR", message="Graph answered 200 without messages[0].id",
                            retryable=False, http_status=200)
    contacts = data.get("contacts") or [{}]
    return SendResult(provider_message_id=str(msg["id"]), wa_id=contacts[0].get("wa_id"),
                      message_status=msg.get("message_status"))


class GraphClient:
    def __init__(self, base_url: str | None = None, version: str | None = None, timeout: float | None = None,
                 pool_size: int = 32):
        self.base_url = (base_url or settings.META_GRAPH_URL).rstrip("/")
        self.version = version or settings.META_GRAPH_VERSION
        self.timeout = float(timeout or settings.META_HTTP_TIMEOUT)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    # -- plumbing ------------------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return f"{self.base_url}/{self.version}/{path.lstrip('/')}"

    def _timeouts(self) -> tuple[float, float]:
        return (min(3.05, self.timeout), self.timeout)

    def _request(self, method: str, url: str, *, access_token: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        headers["Authorization"] = f"Bearer {access_token}"
        try:
            resp = self.session.request(method, url, headers=headers, timeout=self._timeouts(), **kwargs)
        except requests.RequestException as exc:
            raise network_error(f"{type(exc).__name__}: {exc}", maybe_sent=not _never_sent(exc))
        if resp.status_code >= 400:
            raise error_from_response(resp.status_code, resp.text, resp.headers.get("Retry-After"))
        return resp

    def _json(self, method: str, path_or_url: str, *, access_token: str, **kwargs) -> dict:
        url = path_or_url if path_or_url.startswith("http") else self._url(path_or_url)
        resp = self._request(method, url, access_token=access_token, **kwargs)
        try:
            return resp.json()
        except ValueError:
            raise ProviderError(code="UPSTREAM_ERROR", message="Graph answered with a non-JSON body",
                                retryable=resp.status_code >= 500, http_status=resp.status_code)

    # -- messages ------------------------------------------------------------------------------------
    def send_message(self, *, phone_number_id: str, access_token: str, payload: dict) -> SendResult:
        data = self._json("POST", f"{phone_number_id}/{send_endpoint(payload)}", access_token=access_token,
                          json=payload)
        return send_result_from_body(data)

    def mark_read(self, *, phone_number_id: str, access_token: str, wamid: str, typing: bool = False) -> bool:
        data = self._json("POST", f"{phone_number_id}/messages", access_token=access_token,
                          json=build_mark_read_payload(wamid=wamid, typing=typing))
        return bool(data.get("success"))

    def block_users(self, *, phone_number_id: str, access_token: str, users: list[str], block: bool = True) -> dict:
        """Meta's block_users API: block (POST) or unblock (DELETE) customers on one business number."""
        return self._json("POST" if block else "DELETE", f"{phone_number_id}/block_users", access_token=access_token,
                          json=build_block_users_payload(users))

    # -- media ---------------------------------------------------------------------------------------
    def upload_media(self, *, phone_number_id: str, access_token: str, data: bytes, mime_type: str,
                     filename: str) -> str:
        body = self._json("POST", f"{phone_number_id}/media", access_token=access_token,
                          data={"messaging_product": "whatsapp", "type": mime_type},
                          files={"file": (filename or "file", data, mime_type)})
        return str(body["id"])

    def get_media(self, *, media_id: str, access_token: str) -> dict:
        body = self._json("GET", quote(str(media_id), safe=""), access_token=access_token)
        return {"url": body.get("url"), "mime_type": body.get("mime_type"), "sha256": body.get("sha256"),
                "file_size": body.get("file_size")}

    def download_media(self, *, url: str, access_token: str, max_bytes: int) -> bytes:
        if not url.startswith(("https://", "http://")):
            raise ProviderError(code="INVALID_REQUEST", message="media URL must be http(s)", retryable=False)
        try:
            resp = self._request("GET", url, access_token=access_token, stream=True)
        except ProviderError as exc:
            if exc.http_status == 404:
                # Media URLs expire after 5 minutes: fetch a fresh one with get_media and retry.
                raise ProviderError(code="MEDIA_URL_EXPIRED", message="media URL expired or unknown",
                                    retryable=True, retry_after=0.0, http_status=404)
            raise
        try:
            declared = int(resp.headers.get("Content-Length") or 0)
            if declared > max_bytes:
                raise ProviderError(code="MEDIA_TOO_LARGE", message=f"media is {declared} bytes",
                                    retryable=False, http_status=resp.status_code)
            chunks, total = [], 0
            for chunk in resp.iter_content(64 * 1024):
                total += len(chunk)
                if total > max_bytes:
                    raise ProviderError(code="MEDIA_TOO_LARGE", message=f"media exceeds {max_bytes} bytes",
                                        retryable=False, http_status=resp.status_code)
                chunks.append(chunk)
            return b"".join(chunks)
        except requests.RequestException as exc:
            raise network_error(f"{type(exc).__name__}: {exc}")
        finally:
            resp.close()

    # -- templates -----------------------------------------------------------------------------------
    def create_template(self, *, waba_id: str, access_token: str, name: str, language: str, category: str,
                        components: list, parameter_format: str | None = None, **library) -> dict:
        """library: library_template_name (+ library_template_button_inputs) for Meta's template library."""
        payload: dict = {"name": name, "language": language, "category": category, **library}
        if components or not library:
            payload["components"] = components
        if parameter_format:
            payload["parameter_format"] = parameter_format.upper()
        body = self._json("POST", f"{waba_id}/message_templates", access_token=access_token, json=payload)
        return {"id": str(body.get("id")), "status": body.get("status"), "category": body.get("category"),
                "components": body.get("components")}

    def list_templates(self, *, waba_id: str, access_token: str, limit: int = 100, max_pages: int = 100) -> list:
        out: list = []
        url = self._url(f"{waba_id}/message_templates")
        params: dict | None = {"limit": limit}
        for _ in range(max_pages):
            body = self._json("GET", url, access_token=access_token, params=params)
            out.extend(body.get("data") or [])
            if not body.get("data"):
                break
            paging = body.get("paging") or {}
            if paging.get("next"):
                url, params = paging["next"], None
            else:
                after = (paging.get("cursors") or {}).get("after")
                if not after:
                    break
                url, params = self._url(f"{waba_id}/message_templates"), {"limit": limit, "after": after}
        return out

    def delete_template(self, *, waba_id: str, access_token: str, name: str, hsm_id: str | None = None) -> bool:
        params = {"name": name}
        if hsm_id:
            params["hsm_id"] = hsm_id
        body = self._json("DELETE", f"{waba_id}/message_templates", access_token=access_token, params=params)
        return bool(body.get("success"))

    # -- onboarding (Embedded Signup) ----------------------------------------------------------------------
    def exchange_code(self, *, app_id: str, app_secret: str, code: str) -> str:
        """The one-time code Meta's JS SDK gave the browser -> a business integration system user token."""
        try:
            resp = self.session.get(self._url("oauth/access_token"), timeout=self._timeouts(), params={
                "client_id": app_id, "client_secret": app_secret, "code": code})
        except requests.RequestException as exc:
            raise network_error(f"{type(exc).__name__}: {exc}")
        if resp.status_code >= 400:
            raise error_from_response(resp.status_code, resp.text, resp.headers.get("Retry-After"))
        token = (resp.json() or {}).get("access_token")
        if not token:
            raise ProviderError(code="UPSTREAM_ERROR", message="Meta returned no access token", retryable=False,
                                http_status=resp.status_code)
        return str(token)

    def shared_waba_ids(self, *, app_id: str, app_secret: str, access_token: str) -> list[str]:
        """The WABAs the token was granted (debug_token's granular scopes)."""
        body = self._json("GET", "debug_token", access_token=f"{app_id}|{app_secret}",
                          params={"input_token": access_token})
        ids: list[str] = []
        for scope in (body.get("data") or {}).get("granular_scopes") or []:
            if scope.get("scope") == "whatsapp_business_management":
                ids.extend(str(t) for t in scope.get("target_ids") or [] if str(t) not in ids)
        return ids

    def list_phone_numbers(self, *, waba_id: str, access_token: str) -> list[dict]:
        return list(self._json("GET", f"{waba_id}/phone_numbers", access_token=access_token).get("data") or [])

    def register_phone_number(self, *, phone_number_id: str, access_token: str, pin: str) -> bool:
        body = self._json("POST", f"{phone_number_id}/register", access_token=access_token,
                          json={"messaging_product": "whatsapp", "pin": pin})
        return bool(body.get("success"))

    def subscribe_app(self, *, waba_id: str, access_token: str) -> bool:
        return bool(self._json("POST", f"{waba_id}/subscribed_apps", access_token=access_token).get("success"))

    def close(self) -> None:
        self.session.close()


class AsyncGraphSender:
    """Concurrent sends for the dispatcher: one aiohttp ClientSession (pooled connector) per event loop,
    at most `concurrency` requests in flight. Use from one event loop at a time; `aclose()` when done."""

    def __init__(self, base_url: str | None = None, version: str | None = None, timeout: float | None = None,
                 concurrency: int = 64):
        self.base_url = (base_url or settings.META_GRAPH_URL).rstrip("/")
        self.version = version or settings.META_GRAPH_VERSION
        self.timeout = float(timeout or settings.META_HTTP_TIMEOUT)
        self.concurrency = concurrency
        self._session = None
        self._loop = None
        self._sem: asyncio.Semaphore | None = None

    async def _get_session(self):
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            old, old_loop = self._session, self._loop
            if old is not None and not old.closed and old_loop is not None and old_loop is not loop:
                # A session belongs to its loop: close it there if that loop still runs.
                if old_loop.is_running():
                    asyncio.run_coroutine_threadsafe(old.close(), old_loop)
                elif not old_loop.is_closed():
                    old_loop.run_until_complete(old.close())
                else:
                    # Its loop is gone (asyncio.run returned): nothing can await the close any more.
                    with contextlib.suppress(Exception):
                        old.connector._close()
            connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency,
                                             keepalive_timeout=30, ttl_dns_cache=300)
            timeout = aiohttp.ClientTimeout(total=self.timeout, sock_connect=min(3.05, self.timeout))
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout,
                                                  json_serialize=json.dumps)
            self._loop = loop
            self._sem = asyncio.Semaphore(self.concurrency)
        return self._session

    async def send_message(self, *, phone_number_id: str, access_token: str, payload: dict) -> SendResult:
        import aiohttp

        session = await self._get_session()
        url = f"{self.base_url}/{self.version}/{phone_number_id}/{send_endpoint(payload)}"
        headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"}
        async with self._sem:
            try:
                async with session.post(url, data=json.dumps(payload).encode(), headers=headers) as resp:
                    text = await resp.text()
                    if resp.status >= 400:
                        raise error_from_response(resp.status, text, resp.headers.get("Retry-After"))
            except (TimeoutError, aiohttp.ClientError) as exc:
                # Only a failed connect proves Meta never saw the send; after that its outcome is unknown.
                never_sent = isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))
                raise network_error(f"{type(exc).__name__}: {exc}", maybe_sent=not never_sent)
        try:
            data = json.loads(text)
        except ValueError:
            raise ProviderError(code="UPSTREAM_ERROR", message="Graph answered with a non-JSON body",
                                retryable=False, http_status=resp.status)
        return send_result_from_body(data)

    async def send_many(self, items: list[tuple[str, str, dict]]) -> list[SendResult | ProviderError]:
        """[(phone_number_id, access_token, payload)] -> results in order; errors are returned, not raised."""

        async def one(item):
            pnid, token, payload = item
            try:
                return await self.send_message(phone_number_id=pnid, access_token=token, payload=payload)
            except ProviderError as exc:
                return exc

        return list(await asyncio.gather(*(one(i) for i in items)))

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
