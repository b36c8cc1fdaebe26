"""The delivery worker: the caller's thread fans events out and claims due deliveries with a lease on
its connection; an asyncio loop in a helper thread does only HTTP (aiohttp, pooled, SSRF-guarded
resolver); on PostgreSQL a recorder thread writes finished attempts in bulk on a second connection,
so batch N is recorded while batch N+1 is claimed and sent. Requests stay in flight while the
database works, and a hanging endpoint holds only its own (per-subscription capped) share of the
slots, never the rest.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import aiohttp
from django.conf import settings
from django.db import connection, connections
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
# RFC 4648 base32 -> Crockford's alphabet (ULID's), so the C encoder does the work
_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHJKMNPQRSTVWXYZ")
_request_random = random.Random()  # seeded from os.urandom once; request ids need uniqueness, not secrecy


def request_id() -> str:
    """`req_<ULID>` like apps.core.ids.new_id, without a getrandom() syscall per attempt (that, not the
    HTTP, was the sender thread's biggest single cost)."""
    value = (time.time_ns() // 1_000_000) << 80 | _request_random.getrandbits(80)
    # 26 ULID characters = 130 bits (2 leading zero bits); base32 works in 40-bit groups, so pad to 160
    return "req_" + base64.b32encode((value << 30).to_bytes(20, "big")).decode()[:26].translate(_TO_CROCKFORD)


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
    now = timezone.now()
    outcome = AttemptOutcome(claimed=claimed, request_id=request_id(), started_at=now, finished_at=now)
    t0 = time.perf_counter()
    try:
        ssrf.precheck_url(claimed.url)  # scheme + IP-literal hosts (the resolver checks names)
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
    """One worker. HTTP runs on an event loop in a helper thread; fan-out and claims stay on the
    calling thread. On PostgreSQL, outside a transaction, finished attempts are recorded by a recorder
    thread on its own connection (pipelined: at most two batches queued, and after any failed attempt
    the caller waits for the recording before claiming again, so a 410 disables the endpoint before
    anything more is claimed for it). Inside a transaction (tests) or on SQLite everything stays on
    the caller's connection. Use as a context manager."""

    def __init__(self, *, concurrency: int | None = None, per_subscription: int | None = None,
                 slice_seconds: float = 0.01, poll_seconds: float | None = None, pipeline: bool | None = None):
        self.concurrency = concurrency or settings.WEBHOOK_WORKER_CONCURRENCY
        self.per_subscription = per_subscription or settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION
        self.slice_seconds = slice_seconds
        self.poll_seconds = poll_seconds if poll_seconds is not None else settings.WEBHOOK_WORKER_POLL_SECONDS
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="webhook-http", daemon=True)
        self._thread.start()
        self.session = asyncio.run_coroutine_threadsafe(self._session(), self.loop).result()
        self._done: queue.SimpleQueue[AttemptOutcome] = queue.SimpleQueue()
        self._tasks: set[asyncio.Task] = set()  # touched only on the loop thread
        self.pending = 0
        self.in_flight: Counter = Counter()
        self.delivered = 0
        self.timeout = settings.WEBHOOK_TIMEOUT_SECONDS  # read once, not per attempt (lazy settings cost)
        self.excerpt_bytes = settings.WEBHOOK_RESPONSE_EXCERPT_BYTES
        if pipeline is None:
            pipeline = connection.vendor == "postgresql" and not connection.in_atomic_block
        self._records: queue.Queue[list[AttemptOutcome] | None] = queue.Queue(maxsize=2)
        self._record_error: BaseException | None = None
        self._recorder: threading.Thread | None = None
        if pipeline:
            self._recorder = threading.Thread(target=self._record_loop, name="webhook-record", daemon=True)
            self._recorder.start()

    def _record_loop(self) -> None:
        try:
            while True:
                outcomes = self._records.get()
                try:
                    if outcomes is None:
                        return
                    if self._record_error is None:  # after an error the leases run out and redeliver
                        attempts_record(outcomes=outcomes)
                except BaseException as exc:
                    logger.exception("recording %s webhook attempts failed", len(outcomes or ()))
                    self._record_error = exc
                finally:
                    self._records.task_done()
        finally:
            connections.close_all()  # this thread's connection only

    def _record(self, outcomes: list[AttemptOutcome]) -> None:
        if self._recorder is None:
            attempts_record(outcomes=outcomes)
            return
        self._raise_record_error()
        self._records.put(outcomes)

    def flush(self) -> None:
        """Wait until every finished attempt is in the database."""
        if self._recorder is not None:
            self._records.join()
            self._raise_record_error()

    def _raise_record_error(self) -> None:
        if self._record_error is not None:
            raise RuntimeError("recording webhook attempts failed") from self._record_error

    async def _session(self) -> aiohttp.ClientSession:
        return make_session(concurrency=self.concurrency)

    def __enter__(self) -> DeliveryRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._recorder is not None:
            self._records.put(None)
            self._recorder.join(timeout=60)
            self._recorder = None
        if self.loop.is_closed():
            return

        async def shutdown():
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks)
            await self.session.close()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self.loop.close()

    async def _send(self, item: ClaimedDelivery) -> None:
        try:
            outcome = await send_one(self.session, item, timeout=self.timeout, excerpt_bytes=self.excerpt_bytes)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not strand the claim until its lease runs out
            logger.exception("webhook send crashed for %s", item.id)
            now = timezone.now()
            outcome = AttemptOutcome(claimed=item, request_id=request_id(), started_at=now, finished_at=now,
                                     error=f"internal error: {type(exc).__name__}")
        self._done.put(outcome)

    async def _spawn(self, items: list[ClaimedDelivery]) -> None:
        for item in items:
            task = asyncio.create_task(self._send(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def claim(self) -> int:
        free = self.concurrency - self.pending
        if free <= 0:
            return 0
        claimed = deliveries_claim_due(limit=free, in_flight=self.in_flight, per_subscription=self.per_subscription)
        if claimed:
            for item in claimed:
                self.in_flight[item.subscription_id] += 1
            self.pending += len(claimed)
            asyncio.run_coroutine_threadsafe(self._spawn(claimed), self.loop)
        return len(claimed)

    def pump(self, *, wait: float, refill: bool = False) -> int:
        """Wait up to `wait` seconds for finished requests, then record every finished one in one go."""
        if not self.pending:
            return 0
        outcomes = []
        try:
            outcomes.append(self._done.get(timeout=wait))
        except queue.Empty:
            return 0
        while True:
            try:
                outcomes.append(self._done.get_nowait())
            except queue.Empty:
                break
        for outcome in outcomes:
            self.in_flight[outcome.claimed.subscription_id] -= 1
        self.pending -= len(outcomes)
        all_ok = all(o.succeeded for o in outcomes)
        if refill and self.pending <= self.concurrency * 3 // 4 and all_ok:
            # Hand the HTTP thread new work before the bookkeeping; after a failure (a 410 disables the
            # subscription) record first, so nothing more is claimed for an endpoint that just went away.
            self.claim()
        self._record(outcomes)
        if not all_ok:
            self.flush()
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
                while self.pending:  # finish what is in flight (bounded by the HTTP timeout)
                    recorded += self.pump(wait=1.0)
                self.flush()
                return recorded
            fanned = 0
            if fan_out and time.monotonic() - last_fan_out >= self.poll_seconds:
                fanned = events_fan_out()
                last_fan_out = time.monotonic()
            claimed = 0
            if self.pending <= self.concurrency * 3 // 4:
                claimed = self.claim()
            if self.pending:
                recorded += self.pump(wait=self.slice_seconds, refill=True)
                continue
            if claimed == 0 and fanned == 0:
                if self._recorder is not None and self._records.unfinished_tasks:
                    self.flush()  # a just-recorded failure may be due again at once: look once more
                    continue
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
