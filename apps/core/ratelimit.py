"""Per-key API rate limits: a per-minute window and a 10-second burst window, checked and counted in
one Lua script so N concurrent requests never get more than the quota (DRF throttles read-then-write).

Far from the limit, a process takes units in small leases instead of one Redis round trip per request
(RATE_LIMIT_LEASE_UNITS, default 16): the script grants at most an eighth of what is left, so within
eight requests of the limit every grant is a single unit and the count is exact again. Leased units
are counted in Redis when granted, so the quota is never exceeded; a lease lives RATE_LIMIT_LEASE_SECONDS
and its unused units go back with the process's next grant in the same windows. In one process the
headers stay exact; with several, Remaining lags what the others used since this process's last grant."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from apps.core.redis import get_redis
from apps.core.runtime.buckets import RATE_WINDOWS_LUA, bucket_take, script


@dataclass
class _Lease:
    windows: tuple[int, int]  # (minute, burst) window numbers the units belong to
    expires_at: float
    units: int  # granted to this process and not used yet
    counted_m: int  # the counters as Redis last reported them (they include `units`)
    counted_b: int


_leases: dict[str, _Lease] = {}
_leases_lock = threading.Lock()


def rate_limit_leases_clear() -> None:
    """Forget this process's leases (tests that reset the counters in Redis)."""
    with _leases_lock:
        _leases.clear()


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # unix seconds when the minute window resets
    burst_limit: int
    burst_remaining: int
    burst_reset_at: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        now = time.time()
        reset_in = max(0, math.ceil(self.reset_at - now))
        burst_reset_in = max(0, math.ceil(self.burst_reset_at - now))
        # X-RateLimit-Limit is the key's requests per minute, as documented (apps.core.schema); Remaining and
        # Reset describe the binding window (fewer requests left), so Remaining is what the caller may really
        # send before Reset. RateLimit/RateLimit-Policy carry both windows.
        if self.burst_remaining < self.remaining:
            remaining, reset = self.burst_remaining, self.burst_reset_at
        else:
            remaining, reset = self.remaining, self.reset_at
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
            "RateLimit-Policy": f'"minute";q={self.limit};w=60, "burst";q={self.burst_limit};w=10',
            "RateLimit": f'"minute";r={self.remaining};t={reset_in}, "burst";r={self.burst_remaining};t={burst_reset_in}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def _result(*, allowed: bool, per_minute: int, burst: int, used_m: int, used_b: int, now: float,
            minute_window: int, burst_window: int) -> RateLimitResult:
    reset_at, burst_reset_at = (minute_window + 1) * 60, (burst_window + 1) * 10
    if allowed:
        retry_after = 0
    elif used_m >= per_minute:
        retry_after = max(1, math.ceil(reset_at - now))
    else:
        retry_after = max(1, math.ceil(burst_reset_at - now))
    return RateLimitResult(
        allowed=allowed,
        limit=per_minute,
        remaining=max(0, per_minute - used_m),
        reset_at=reset_at,
        burst_limit=burst,
        burst_remaining=max(0, burst - used_b),
        burst_reset_at=burst_reset_at,
        retry_after=retry_after,
    )


def rate_limit_hit(*, key_id: str, plan: str, now: float | None = None) -> RateLimitResult:
    limits = settings.RATE_LIMIT_PLANS.get(plan) or settings.RATE_LIMIT_PLANS["standard"]
    per_minute, burst = int(limits["per_minute"]), int(limits["burst_10s"])
    now = time.time() if now is None else now
    minute_window, burst_window = int(now // 60), int(now // 10)
    windows = (minute_window, burst_window)
    shape = {"per_minute": per_minute, "burst": burst, "now": now, "minute_window": minute_window,
             "burst_window": burst_window}
    returned = 0
    with _leases_lock:
        lease = _leases.get(key_id)
        if lease is not None:
            if lease.windows == windows and now < lease.expires_at and lease.units > 0:
                lease.units -= 1
                return _result(allowed=True, used_m=lease.counted_m - lease.units,
                               used_b=lease.counted_b - lease.units, **shape)
            if lease.windows == windows:
                returned = lease.units
            del _leases[key_id]
    granted, used_m, used_b = (int(v) for v in script("rate_windows", RATE_WINDOWS_LUA, get_redis())(
        keys=[f"rl:{{{key_id}}}:m:{minute_window}", f"rl:{{{key_id}}}:b:{burst_window}"],
        args=[per_minute, burst, max(1, int(settings.RATE_LIMIT_LEASE_UNITS)), returned],
    ))
    if not granted:
        return _result(allowed=False, used_m=used_m, used_b=used_b, **shape)
    spare = granted - 1  # one unit is this request's
    if spare:
        with _leases_lock:
            lease = _leases.get(key_id)
            if lease is not None and lease.windows == windows and now < lease.expires_at:
                # Another thread took a lease meanwhile: both are this process's.
                lease.units += spare
                lease.counted_m, lease.counted_b = max(lease.counted_m, used_m), max(lease.counted_b, used_b)
            else:
                lease = _leases[key_id] = _Lease(windows=windows, units=spare, counted_m=used_m, counted_b=used_b,
                                                 expires_at=now + settings.RATE_LIMIT_LEASE_SECONDS)
            used_m, used_b = lease.counted_m - lease.units, lease.counted_b - lease.units
    return _result(allowed=True, used_m=used_m, used_b=used_b, **shape)


# --- failed authentication per client address --------------------------------------------------------


def client_address(request) -> str | None:
    """The caller's address as the API's limits and the sign-in lockout see it (REMOTE_ADDR: a proxy in
    front must set it, e.g. daphne --proxy-headers, so addresses are per client, not per proxy)."""
    meta = getattr(request, "META", None) or getattr(getattr(request, "_request", None), "META", None) or {}
    return meta.get("REMOTE_ADDR") or None


def auth_failure_hit(*, address: str, now_us: int | None = None) -> float | None:
    """Count one failed API-key authentication from `address` in its bucket (API_AUTH_FAILURES_PER_MINUTE,
    refilled over a minute): None while within it, else the seconds until the address may fail again."""
    per_minute = max(1, int(settings.API_AUTH_FAILURES_PER_MINUTE))
    ((granted, wait),) = bucket_take([f"authfail:{{{address}}}"], rate=per_minute / 60.0, capacity=per_minute,
                                     now_us=now_us)
    return None if granted else max(wait, 1.0)
