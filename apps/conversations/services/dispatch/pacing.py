"""Pace: per sender number a Redis one-second ledger at PhoneNumber.throughput_mps with a small burst bucket
(NumberPacer), shared by every worker (one Lua script, Redis' own clock), plus a per-recipient pair bucket
(Meta's 1 msg / 6 s with bursts) on the core runtime's token bucket."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from apps.conversations.services.dispatch.base import _setting
from apps.core.runtime.buckets import PACE_LUA, bucket_take, script
from apps.wabas.models import PhoneNumber

# The burst bucket refills this much faster than the cap: a late drainer catches up within a few of its
# batches, and the ledger still holds every second to the cap.
_CATCH_UP = 1.25


@dataclass
class NumberPacer:
    """A sender number's pace, shared by every worker through Redis.

    A one-second ledger lets at most `window_limit` sends into any `window_seconds` (the cap less a margin
    for the jitter between a grant and its request: 1% covers ~10 ms at 1,000 mps), and a small burst
    bucket refilling faster than the cap keeps the sends spread out. A drainer that wakes late
    takes the sends it missed while the ledger still has room; a plain token bucket small enough to keep
    every second under the cap would have dropped them (and with them 2-6% of the number's throughput).
    """

    key: str
    window_limit: int
    window_seconds: float
    burst: int
    burst_rate: float

    @property
    def rate(self) -> float:
        """What the ledger admits on average, sends/s."""
        return self.window_limit / self.window_seconds

    @classmethod
    def for_number(cls, number: PhoneNumber) -> NumberPacer:
        cap = max(0.1, float(number.throughput_mps) * float(_setting("DISPATCH_RATE_FACTOR", 1.0)))
        usable = cap * (1.0 - float(_setting("DISPATCH_PACE_MARGIN", 0.01)))
        # Below one send a second the window stretches so that it still admits a whole send.
        window = max(1.0, 1.0 / usable)
        limit = max(1, math.floor(usable * window))
        burst = max(1, math.floor(cap * float(_setting("DISPATCH_BUCKET_BURST_SECONDS", 0.01))))
        return cls(key=f"reach:pace:{{{number.pk}}}", window_limit=limit, window_seconds=window, burst=burst,
                   burst_rate=cap * _CATCH_UP)

    def take(self, want: int, *, now_us: int | None = None) -> tuple[int, float]:
        """Returns (granted, seconds to wait before asking again). `now_us` replaces Redis' clock (tests)."""
        args = [self.burst_rate, self.burst, int(self.window_seconds * 1_000_000), self.window_limit, want]
        if now_us is not None:
            args.append(int(now_us))
        granted, wait_us = script("pace", PACE_LUA)(keys=[self.key, f"{self.key}:ledger"], args=args)
        return int(granted), int(wait_us) / 1_000_000

    def take_blocking(self, want: int = 1) -> None:
        while want > 0:
            granted, wait = self.take(want)
            want -= granted
            if want > 0:
                time.sleep(max(wait, 0.0005))


def pair_waits(*, phone_number_id: str, recipients: list[str]) -> list[float]:
    """Seconds each recipient must wait on this number's pair limit (0 = may send now; the token is taken)."""
    if not recipients:
        return []
    interval = float(_setting("DISPATCH_PAIR_INTERVAL_SECONDS", 6.0))
    burst = float(_setting("DISPATCH_PAIR_BURST", 20))
    keys = [f"reach:pair:{phone_number_id}:{r}" for r in recipients]
    return [0.0 if granted else wait
            for granted, wait in bucket_take(keys, rate=1.0 / interval, capacity=burst, want=1)]
