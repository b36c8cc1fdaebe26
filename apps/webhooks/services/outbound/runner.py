"""The delivery worker: one thread, one event loop, one database connection.

HTTP runs on an asyncio loop (aiohttp, pooled, SSRF-guarded resolver); the loop is driven in short
slices (`run_until_complete(asyncio.wait(..., timeout=slice))`) and between slices, while the loop is
not running, the same thread does the database work synchronously: fan events out, claim more due
deliveries, record finished attempts in bulk. Requests stay in flight across slices, so a hanging
endpoint holds only its own (per-subscription capped) share of the slots and never stalls the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import aiohttp
from django.conf import settings
from django.utils import timezone

from apps.core.ids import new_id
from apps.webhooks import ssrf
from apps.webhooks.models import TEST_EVENT_TYPE, WebhookDelivery, WebhookSubscription
from apps.webhooks.services.outbound.engine import (
    AttemptOutcome,
    ClaimedDelivery,
    attempts_record,
    deliveries_claim_due,
    events_fan_out,
)
from apps.webhooks.services.outbound.signing import sign_headers

logger = logging.getLogger("reach.webhooks.outbound")
USER_AGENT = "Reach-Webhooks/1.0 (+https://www.standardwebhooks.com/)"


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


async def send_one(session: aiohttp.ClientSession, claimed: ClaimedDelivery, *, timeout: float | None = None,
                   excerpt_bytes: int | None = None) -> AttemptOutcome:
    timeout = timeout if timeout is not None else settings.WEBHOOK_TIMEOUT_SECONDS
    cap = excerpt_bytes if excerpt_bytes is not None else settings.WEBHOOK_RESPONSE_EXCERPT_BYTES
    outcome = AttemptOutcome(claimed=claimed, request_id=new_id("req"), started_at=timezone.now(),
                             finished_at=timezone.now())
    t0 = time.perf_counter()
    try:
        ssrf.check_url(claimed.url, resolve=False)  # scheme + IP-literal hosts (the resolver checks names)
        headers = sign_headers(webhook_id=claimed.id, timestamp=int(time.time()), body=claimed.body,
                               keys=claimed.keys)
        headers.update({"Content-Type": "application/json", "User-Agent": USER_AGENT,
                        "X-Request-Id": outcome.request_id})
        async with session.post(claimed.url, data=claimed.body, headers=headers, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            outcome.status_code = resp.status
            if resp.status in (429, 503):
                outcome.retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if 300 <= resp.status < 400:
                outcome.error = f"redirect not followed (Location: {resp.headers.get('Location', '')[:200]})"
            elif not 200 <= resp.status < 300:
                outcome.error = f"HTTP {resp.status}"
            try:
                buf = b""
                while len(buf) < cap:
                    chunk = await resp.content.read(cap - len(buf))
                    if not chunk:
                        break
                    buf += chunk
                outcome.response_excerpt = buf.decode("utf-8", "replace")
            except (TimeoutError, aiohttp.ClientError) as exc:  # the status already counted
                outcome.response_excerpt = f"[body unread: {type(exc).__name__}]"
    except ssrf.UnsafeUrl as exc:
        outcome.error = f"ssrf guard: {exc}"
    except TimeoutError:
        outcome.error = f"timeout after {timeout:g}s"
    except aiohttp.ClientConnectorError as exc:
        outcome.error = f"connection failed: {exc.os_error or exc}"
    except aiohttp.ServerDisconnectedError:
        outcome.error = "connection closed by the server before a response"
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
    outcome.latency_ms = int((time.perf_counter() - t0) * 1000)
    outcome.finished_at = timezone.now()
    return outcome


class DeliveryRunner:
    """Drive deliveries from one thread. Use as a context manager or call close()."""

    def __init__(self, *, concurrency: int | None = None, per_subscription: int | None = None,
                 slice_seconds: float = 0.01, poll_seconds: float | None = None):
        self.concurrency = concurrency or settings.WEBHOOK_WORKER_CONCURRENCY
        self.per_subscription = per_subscription or settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION
        self.slice_seconds = slice_seconds
        self.poll_seconds = poll_seconds if poll_seconds is not None else settings.WEBHOOK_WORKER_POLL_SECONDS
        self.loop = asyncio.new_event_loop()
        self.session = self.loop.run_until_complete(self._session())
        self.tasks: set[asyncio.Task] = set()
        self.in_flight: Counter = Counter()
        self.delivered = 0

    async def _session(self) -> aiohttp.ClientSession:
        return make_session(concurrency=self.concurrency)

    def __enter__(self) -> DeliveryRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.loop.is_closed():
            return
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            self.loop.run_until_complete(asyncio.wait(self.tasks))
        self.loop.run_until_complete(self.session.close())
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    def claim(self) -> int:
        free = self.concurrency - len(self.tasks)
        if free <= 0:
            return 0
        claimed = deliveries_claim_due(limit=free, in_flight=self.in_flight, per_subscription=self.per_subscription)
        for item in claimed:
            self.tasks.add(self.loop.create_task(send_one(self.session, item)))
            self.in_flight[item.subscription_id] += 1
        return len(claimed)

    def pump(self, *, wait: float) -> int:
        """Let requests progress for up to `wait` seconds, then record whatever finished."""
        if not self.tasks:
            return 0
        done, _ = self.loop.run_until_complete(asyncio.wait(self.tasks, timeout=wait))
        outcomes = []
        for task in done:
            self.tasks.discard(task)
            outcome = task.result()
            self.in_flight[outcome.claimed.subscription_id] -= 1
            outcomes.append(outcome)
        attempts_record(outcomes=outcomes)
        self.delivered += sum(1 for o in outcomes if o.succeeded)
        return len(outcomes)

    def run(self, *, until_idle: bool = True, max_seconds: float | None = None,
            stop: Callable[[], bool] | None = None, fan_out: bool = True) -> int:
        """Deliver until nothing is due and nothing is in flight (until_idle), or until max_seconds /
        stop(). Returns how many attempts were recorded."""
        start = time.monotonic()
        recorded = 0
        last_fan_out = 0.0
        while True:
            expired = (max_seconds is not None and time.monotonic() - start >= max_seconds) or (stop and stop())
            if expired:
                while self.tasks:  # finish what is in flight (bounded by the HTTP timeout)
                    recorded += self.pump(wait=1.0)
                return recorded
            fanned = 0
            if fan_out and time.monotonic() - last_fan_out >= self.poll_seconds:
                fanned = events_fan_out()
                last_fan_out = time.monotonic()
            claimed = 0
            if len(self.tasks) <= self.concurrency * 3 // 4:
                claimed = self.claim()
            if self.tasks:
                recorded += self.pump(wait=self.slice_seconds)
                continue
            if claimed == 0 and fanned == 0:
                if until_idle:
                    return recorded
                time.sleep(self.poll_seconds)


def deliver_due(*, max_seconds: float | None = None, **kwargs) -> int:
    """Run a runner until idle (or max_seconds). Tasks and tests call this."""
    with DeliveryRunner(**kwargs) as runner:
        return runner.run(until_idle=True, max_seconds=max_seconds)


def subscription_send_test(*, subscription: WebhookSubscription) -> WebhookDelivery:
    """Send a `webhook.test` event now (one attempt in this call, retried like any delivery after)."""
    import json

    now = timezone.now()
    ws = subscription.workspace
    event_id = new_id("evt")
    body = {
        "id": event_id, "type": TEST_EVENT_TYPE, "created_at": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "workspace_id": ws.live.pk, "sandbox": ws.is_sandbox, "sequence": 0,
        "data": {"subscription_id": subscription.pk, "message": "This is a test event from Reach."},
    }
    delivery = WebhookDelivery.objects.create(
        workspace=ws, subscription=subscription, event_id=event_id, event_type=TEST_EVENT_TYPE, event_sequence=0,
        event_created_at=now, payload=json.dumps(body, separators=(",", ":")), next_attempt_at=now,
    )
    claimed = deliveries_claim_due(limit=1, delivery_id=delivery.pk, subscription_id=subscription.pk,
                                   include_disabled=True)
    if claimed:
        loop = asyncio.new_event_loop()
        try:
            async def _send() -> AttemptOutcome:
                async with make_session(concurrency=1) as session:
                    return await send_one(session, claimed[0])

            outcome = loop.run_until_complete(_send())
        finally:
            loop.close()
        attempts_record(outcomes=[outcome])
    delivery.refresh_from_db()
    return delivery
