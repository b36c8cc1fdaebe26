"""Per-key API rate limits: a per-minute window and a 10-second burst window, checked and counted in
one Lua script so N concurrent requests never get more than the quota (DRF throttles read-then-write)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings

from apps.core.redis import get_redis

_SCRIPT = """
local m = tonumber(redis.call('GET', KEYS[1]) or '0')
local b = tonumber(redis.call('GET', KEYS[2]) or '0')
if m >= tonumber(ARGV[1]) or b >= tonumber(ARGV[2]) then
  return {0, m, b}
end
m = redis.call('INCR', KEYS[1])
if m == 1 then redis.call('PEXPIRE', KEYS[1], 61000) end
b = redis.call('INCR', KEYS[2])
if b == 1 then redis.call('PEXPIRE', KEYS[2], 11000) end
return {1, m, b}
"""
_script = None


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
        # The X-RateLimit-* trio describes one window, the binding one (fewer requests left), so that
        # Remaining is what the caller may really send before Reset; RateLimit/RateLimit-Policy carry both.
        if self.burst_remaining < self.remaining:
            limit, remaining, reset = self.burst_limit, self.burst_remaining, self.burst_reset_at
        else:
            limit, remaining, reset = self.limit, self.remaining, self.reset_at
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
            "RateLimit-Policy": f'"minute";q={self.limit};w=60, "burst";q={self.burst_limit};w=10',
            "RateLimit": f'"minute";r={self.remaining};t={reset_in}, "burst";r={self.burst_remaining};t={burst_reset_in}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def rate_limit_hit(*, key_id: str, plan: str, now: float | None = None) -> RateLimitResult:
    global _script
    limits = settings.RATE_LIMIT_PLANS.get(plan) or settings.RATE_LIMIT_PLANS["standard"]
    per_minute, burst = int(limits["per_minute"]), int(limits["burst_10s"])
    now = time.time() if now is None else now
    minute_window, burst_window = int(now // 60), int(now // 10)
    client = get_redis()
    if _script is None:
        _script = client.register_script(_SCRIPT)
    allowed, used_m, used_b = _script(
        keys=[f"rl:{{{key_id}}}:m:{minute_window}", f"rl:{{{key_id}}}:b:{burst_window}"],
        args=[per_minute, burst],
        client=client,
    )
    reset_at, burst_reset_at = (minute_window + 1) * 60, (burst_window + 1) * 10
    if allowed:
        retry_after = 0
    elif int(used_m) >= per_minute:
        retry_after = max(1, math.ceil(reset_at - now))
    else:
        retry_after = max(1, math.ceil(burst_reset_at - now))
    return RateLimitResult(
        allowed=bool(allowed),
        limit=per_minute,
        remaining=max(0, per_minute - int(used_m)),
        reset_at=reset_at,
        burst_limit=burst,
        burst_remaining=max(0, burst - int(used_b)),
        burst_reset_at=burst_reset_at,
        retry_after=retry_after,
    )
