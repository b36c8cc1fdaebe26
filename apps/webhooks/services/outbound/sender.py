"""The HTTP side of outbound delivery: one attempt (sign, send over aiohttp with the SSRF-guarded
resolver, read a capped excerpt) and the pieces it needs. No database here: it runs on the runner's
loop thread, or in the runner's HTTP process (httpside.py)."""

from __future__ import annotations

import logging
import os
import random
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
from django.conf import settings
from django.utils import timezone

from apps.webhooks import ssrf
from apps.webhooks.services.outbound.engine import AttemptOutcome, ClaimedDelivery
from apps.webhooks.services.outbound.signing import sign_headers

logger = logging.getLogger("reach.webhooks.outbound")
USER_AGENT = "Reach-Webhooks/1.0 (+https://www.standardwebhooks.com/)"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits -> 2 characters
_request_random = random.Random()  # seeded from os.urandom once; request ids need uniqueness, not secrecy
if hasattr(os, "register_at_fork"):  # each forked HTTP process draws its own sequence, not its parent's copy
    os.register_at_fork(after_in_child=_request_random.seed)
_stamp: list = [-1, ""]  # the last millisecond and its 10 characters


def request_id() -> str:
    """`req_<ULID>` like apps.core.ids.new_id (10 characters of milliseconds, 16 of randomness), without
    a getrandom() syscall per attempt, the time part encoded once per millisecond and the random part
    by table, two characters per lookup."""
    ms = time.time_ns() // 1_000_000
    if ms != _stamp[0]:
        _stamp[1] = "".join(_PAIRS[(ms >> shift) & 1023] for shift in (40, 30, 20, 10, 0))
        _stamp[0] = ms
    r = _request_random.getrandbits(80)
    p = _PAIRS
    return (f"req_{_stamp[1]}{p[r >> 70]}{p[(r >> 60) & 1023]}{p[(r >> 50) & 1023]}{p[(r >> 40) & 1023]}"
            f"{p[(r >> 30) & 1023]}{p[(r >> 20) & 1023]}{p[(r >> 10) & 1023]}{p[r & 1023]}")


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - timezone.now()).total_seconds())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def make_session(*, concurrency: int) -> aiohttp.ClientSession:
    """Call inside the loop. DNS is never cached: every new connection is resolved and checked again."""
    connector = aiohttp.TCPConnector(
        limit=concurrency, limit_per_host=0, resolver=ssrf.GuardedResolver(), use_dns_cache=False,
        keepalive_timeout=30,
    )
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False)


_STATIC_HEADERS = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
_timeouts: dict[float, aiohttp.ClientTimeout] = {}


def _client_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """One (immutable) ClientTimeout per value, not one per request."""
    found = _timeouts.get(seconds)
    if found is None:
        found = _timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
    return found


# (request_id, started_at, finished_at, status_code, latency_ms, error, excerpt, retry_after), the two times as
# epoch seconds (floats cross the HTTP process's pipe cheaper than datetimes)
Attempt = tuple


async def attempt(session: aiohttp.ClientSession, *, webhook_id: str, url: str, body: bytes, keys: list[bytes],
                  timeout: float, cap: int) -> Attempt:
    """One signed POST: the SSRF pre-check (scheme, IP literals; the resolver checks every connection),
    no redirects, `timeout` seconds in all, at most `cap` bytes of the answer kept."""
    req_id = request_id()
    started = time.time()
    t0 = time.perf_counter()
    status = None
    error = excerpt = ""
    retry_after = None
    try:
        ssrf.precheck_url(url)  # scheme + IP-literal hosts (the resolver checks names)
        headers = sign_headers(webhook_id=webhook_id, timestamp=int(started), body=body, keys=keys)
        headers.update(_STATIC_HEADERS)
        headers["X-Request-Id"] = req_id
        async with session.post(url, data=body, headers=headers, allow_redirects=False,
                                timeout=_client_timeout(timeout)) as resp:
            status = resp.status
            if status in (429, 503):
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if 300 <= status < 400:
                error = f"redirect not followed (Location: {resp.headers.get('Location', '')[:200]})"
            elif not 200 <= status < 300:
                error = f"HTTP {status}"
            try:
                content = resp.content
                buf = await content.read(cap)
                while buf and len(buf) < cap and not content.at_eof():  # more may still be on its way
                    chunk = await content.read(cap - len(buf))
                    if not chunk:
                        break
                    buf += chunk
                excerpt = buf.decode("utf-8", "replace")
            except (TimeoutError, aiohttp.ClientError) as exc:  # the status already counted
                excerpt = f"[body unread: {type(exc).__name__}]"
    except ssrf.UnsafeUrl as exc:
        error = f"ssrf guard: {exc}"
    except TimeoutError:
        error = f"timeout after {timeout:g}s"
    except aiohttp.ClientConnectorError as exc:
        error = f"connection failed: {exc.os_error or exc}"
    except aiohttp.ServerDisconnectedError:
        error = "connection closed by the server before a response"
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    latency = int((time.perf_counter() - t0) * 1000)
    return req_id, started, time.time(), status, latency, error, excerpt, retry_after


async def send_one(session: aiohttp.ClientSession, claimed: ClaimedDelivery, *, timeout: float | None = None,
                   excerpt_bytes: int | None = None) -> AttemptOutcome:
    timeout = timeout if timeout is not None else settings.WEBHOOK_TIMEOUT_SECONDS
    cap = excerpt_bytes if excerpt_bytes is not None else settings.WEBHOOK_RESPONSE_EXCERPT_BYTES
    req_id, started, finished, status, latency, error, excerpt, retry_after = await attempt(
        session, webhook_id=claimed.id, url=claimed.url, body=claimed.body, keys=claimed.keys, timeout=timeout,
        cap=cap,
    )
    return AttemptOutcome(claimed=claimed, request_id=req_id, started_at=datetime.fromtimestamp(started, UTC),
                          finished_at=datetime.fromtimestamp(finished, UTC),
                          status_code=status, latency_ms=latency, error=error, response_excerpt=excerpt,
                          retry_after=retry_after)
