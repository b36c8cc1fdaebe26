"""The drain loop of one number, pipelined: the next batch is claimed and the last one recorded while the
current one is on the wire, so the number's pace never waits for the database. Several drainers share a
busy number (_FanOut)."""

from __future__ import annotations

import math
import secrets
import time
from collections import defaultdict

from django.utils import timezone

from apps.conversations.models import Message
from apps.conversations.services.dispatch import kicks
from apps.conversations.services.dispatch.base import Batch, _setting, logger
from apps.conversations.services.dispatch.claim import messages_claim
from apps.conversations.services.dispatch.prepare import _number_ctx, _NumberCtx
from apps.conversations.services.dispatch.recording import outcomes_record
from apps.conversations.services.dispatch.send import InFlight, _start_send
from apps.core.redis import get_redis
from apps.core.runtime.stopping import stop_requested


def _batch_size(ctx: _NumberCtx) -> int:
    seconds = float(_setting("DISPATCH_BATCH_SECONDS", 0.25))
    return int(min(_setting("DISPATCH_BATCH_MAX", 500), max(10, ctx.pacer.rate * seconds)))


def dispatch_drain(*, phone_number_id: str, budget_seconds: float | None = None) -> dict[str, int]:
    """Drain one number's due messages for up to `budget_seconds`, pipelined: claim N+1 and record N-1
    while batch N is on the wire. Safe to run in several workers at once (claims + shared pacer)."""
    ctx = _number_ctx(phone_number_id)
    totals: dict[str, int] = defaultdict(int)
    if ctx is None:
        return totals
    budget = budget_seconds if budget_seconds is not None else float(_setting("DISPATCH_DRAIN_SECONDS", 30))
    deadline = time.monotonic() + budget
    size = _batch_size(ctx)
    fan = _FanOut(phone_number_id=phone_number_id, rate=ctx.pacer.rate)
    try:
        _drain_loop(phone_number_id=phone_number_id, ctx=ctx, size=size, deadline=deadline, fan=fan,
                    totals=totals)
    finally:
        fan.leave()
    if time.monotonic() >= deadline and Message.objects.filter(
            phone_number_id=phone_number_id, status=Message.Status.QUEUED, next_attempt_at__lte=timezone.now()
    ).exists():
        kicks._enqueue(phone_number_id)  # budget spent with work left: hand over to a fresh task
    return totals


def _drain_loop(*, phone_number_id: str, ctx: _NumberCtx, size: int, deadline: float, fan: _FanOut,
                totals: dict[str, int]) -> None:
    in_flight: InFlight | None = None  # on the wire while the next batch is claimed
    while True:
        live = time.monotonic() < deadline and not stop_requested()
        current = messages_claim(phone_number_id=phone_number_id, limit=size) if live else Batch(token="")
        if len(current.messages) >= size:
            fan.busy()  # a full batch means a backlog: bring more drainers if the rate needs them
        if not current.messages and in_flight is None:
            # Idle: let the next on-commit kick through, then look once more so none slips between.
            kicks._release_kick(phone_number_id)
            if live:
                current = messages_claim(phone_number_id=phone_number_id, limit=size)
            if not current.messages:
                break
        launched = None
        if current.messages:
            kicks._hold_kick(phone_number_id)
            launched = _start_send(current, ctx, timezone.now())
        if in_flight is not None:
            _finish(in_flight, totals)
        in_flight = launched


class _FanOut:
    """Several drainers per busy number: one process tops out below a high cap (claim + record are CPU),
    so a drainer facing a backlog enqueues another drain task until ceil(rate / DISPATCH_DRAINER_MPS)
    (at most DISPATCH_DRAINERS_MAX) are alive. Live drainers are a Redis sorted set scored by lease
    expiry, so a killed one drops out by itself; the shared NumberPacer keeps the pace across them."""

    def __init__(self, *, phone_number_id: str, rate: float):
        self.pn = phone_number_id
        self.key = f"reach:dispatch:drainers:{phone_number_id}"
        self.me = secrets.token_hex(6)
        per = max(1.0, float(_setting("DISPATCH_DRAINER_MPS", 400)))
        self.target = max(1, min(int(_setting("DISPATCH_DRAINERS_MAX", 4)), math.ceil(rate / per)))
        self.joined = False

    def busy(self) -> None:
        if self.target <= 1:
            return
        try:
            r = get_redis()
            now_ms = int(time.time() * 1000)
            ttl = int(_setting("DISPATCH_KICK_TTL_MS", 2000)) * 5
            pipe = r.pipeline()
            pipe.zremrangebyscore(self.key, "-inf", now_ms)
            pipe.zadd(self.key, {self.me: now_ms + ttl})
            pipe.pexpire(self.key, ttl)
            pipe.zcard(self.key)
            alive = pipe.execute()[-1]
            self.joined = True
            # One spawn at a time (the new drainer registers on its first full batch).
            if alive < self.target and r.set(f"reach:dispatch:spawn:{self.pn}", "1", nx=True, px=1000):
                kicks._enqueue(self.pn)
        except Exception:
            logger.warning("dispatch fan-out failed for %s", self.pn, exc_info=True)

    def leave(self) -> None:
        if not self.joined:
            return
        try:
            get_redis().zrem(self.key, self.me)
        except Exception:
            logger.warning("redis unavailable leaving the drainer set", exc_info=True)


def _finish(in_flight: InFlight, totals) -> None:
    if in_flight.future is not None:
        in_flight.future.result()
    for after in in_flight.after:
        after()
    for key, value in outcomes_record(outcomes=in_flight.outcomes, token=in_flight.batch.token).items():
        totals[key] += value
