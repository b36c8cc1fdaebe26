"""The delivery worker: the caller's thread fans events out and claims due deliveries with a lease on
its connection; an asyncio loop in a helper thread does only HTTP (aiohttp, pooled, SSRF-guarded
resolver); on PostgreSQL a recorder thread writes finished attempts in bulk on a second connection,
so batch N is recorded while batch N+1 is claimed and sent. Requests stay in flight while the
database works, and a hanging endpoint holds only its own (per-subscription capped) share of the
slots, never the rest.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable

import aiohttp
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from apps.core.ids import new_id
from apps.webhooks.models import TEST_EVENT_TYPE, WebhookDelivery, WebhookSubscription
from apps.webhooks.services.outbound import httpside
from apps.webhooks.services.outbound.engine import (
    AttemptOutcome,
    ClaimedDelivery,
    attempts_record,
    deliveries_claim_due,
    events_fan_out,
)
from apps.webhooks.services.outbound.sender import (  # noqa: F401  (re-exported)
    USER_AGENT,
    make_session,
    parse_retry_after,
    request_id,
    send_one,
)

logger = logging.getLogger("reach.webhooks.outbound")


_CHILD_GONE = object()  # on the _done queue: the HTTP process exited


class DeliveryRunner:
    """One worker. Fan-out and claims stay on the calling thread. On PostgreSQL, outside a transaction,
    finished attempts are recorded by a recorder thread on its own connection (pipelined: at most two
    batches queued, and after any failed attempt the caller waits for the recording before claiming
    again, so a 410 disables the endpoint before anything more is claimed for it), and the HTTP work
    runs in a forked HTTP process (httpside.py: its own GIL, so the sends never wait for the database
    side's Python; a child that dies is forked anew, what it held waits for its lease). Inside a
    transaction (tests), on SQLite, or with WEBHOOK_WORKER_HTTP_PROCESS off, HTTP runs on an event loop
    in a helper thread and the database work on the caller's connection. Use as a context manager."""

    max_http_restarts = 5  # within restart_window seconds; more and the worker gives up (its supervisor restarts it)
    restart_window = 60.0

    def __init__(self, *, concurrency: int | None = None, per_subscription: int | None = None,
                 slice_seconds: float = 0.01, poll_seconds: float | None = None, pipeline: bool | None = None,
                 http_process: bool | None = None):
        self.concurrency = concurrency or settings.WEBHOOK_WORKER_CONCURRENCY
        self.per_subscription = per_subscription or settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION
        self.slice_seconds = slice_seconds
        self.poll_seconds = poll_seconds if poll_seconds is not None else settings.WEBHOOK_WORKER_POLL_SECONDS
        self._done: queue.SimpleQueue = queue.SimpleQueue()  # lists of AttemptOutcome, or _CHILD_GONE
        self._tasks: set[asyncio.Task] = set()  # touched only on the loop thread
        self.pending = 0
        self.in_flight: Counter = Counter()
        self.delivered = 0
        self.timeout = settings.WEBHOOK_TIMEOUT_SECONDS  # read once, not per attempt (lazy settings cost)
        self.excerpt_bytes = settings.WEBHOOK_RESPONSE_EXCERPT_BYTES
        if pipeline is None:
            pipeline = connection.vendor == "postgresql" and not connection.in_atomic_block
        if http_process is None:
            http_process = pipeline and settings.WEBHOOK_WORKER_HTTP_PROCESS
        self.http: httpside.HttpProcess | None = None
        self.http_restarts: list[float] = []
        self._closing = False
        self.loop: asyncio.AbstractEventLoop | None = None
        if http_process and httpside.available():
            self._fork_http()  # before this runner starts any thread of its own
        else:
            self.loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self.loop.run_forever, name="webhook-http", daemon=True)
            self._thread.start()
            self.session = asyncio.run_coroutine_threadsafe(self._session(), self.loop).result()
        self._records: queue.Queue[list[AttemptOutcome] | None] = queue.Queue(maxsize=2)
        self._record_error: BaseException | None = None
        self._recorder: threading.Thread | None = None
        if pipeline:
            self._recorder = threading.Thread(target=self._record_loop, name="webhook-record", daemon=True)
            self._recorder.start()

    def _fork_http(self) -> None:
        self.http = httpside.HttpProcess(concurrency=self.concurrency, timeout=self.timeout,
                                         excerpt_bytes=self.excerpt_bytes, on_outcomes=self._done.put,
                                         on_exit=lambda: self._done.put(_CHILD_GONE))

    def _http_gone(self) -> None:
        """The HTTP process died (a crash, SIGKILL, OOM): give up what it held (each is leased in the
        database, so it is claimed again, same row and webhook-id, once the lease passes) and fork anew."""
        http = self.http
        if http is None or self._closing:
            return
        lost = list(http.claimed.values())
        http.claimed.clear()
        for item in lost:
            self.in_flight[item.subscription_id] -= 1
        self.pending -= len(lost)
        http.close()
        logger.error("webhook HTTP process %s exited (code %s) with %s deliveries in flight; they are redelivered "
                     "after their lease", http.pid, http.returncode, len(lost))
        now = time.monotonic()
        self.http_restarts = [t for t in self.http_restarts if now - t < self.restart_window] + [now]
        if len(self.http_restarts) > self.max_http_restarts:
            self.http = None
            raise RuntimeError(f"the webhook HTTP process died {len(self.http_restarts)} times in "
                               f"{self.restart_window:g} s")
        self._fork_http()

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
        self._closing = True
        if self._recorder is not None:
            self._records.put(None)
            self._recorder.join(timeout=60)
            self._recorder = None
        if self.http is not None:
            self.http.close()
            self.http = None
        if self.loop is None or self.loop.is_closed():
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
        self._done.put([outcome])

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
            if self.http is not None:
                self.http.send(claimed)
            else:
                asyncio.run_coroutine_threadsafe(self._spawn(claimed), self.loop)
        return len(claimed)

    def pump(self, *, wait: float, refill: bool = False) -> int:
        """Wait up to `wait` seconds for finished requests, then record every finished one in one go."""
        if not self.pending:
            return 0
        outcomes: list[AttemptOutcome] = []
        gone = False
        try:
            batch = self._done.get(timeout=wait)
            while True:
                if batch is _CHILD_GONE:
                    gone = True
                else:
                    outcomes += batch
                batch = self._done.get_nowait()
        except queue.Empty:
            pass
        if gone:
            self._http_gone()
        if not outcomes:
            return 0
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
