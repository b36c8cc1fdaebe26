"""Optional per-subscription delivery rate (token bucket in Redis, shared by every worker).

Redis holds only tokens: losing it (restart, FLUSHDB) refills the buckets, nothing else; the deliveries
themselves live in PostgreSQL."""

from __future__ import annotations

import logging
import time

from apps.core.redis import get_redis

logger = logging.getLogger("reach.webhooks.outbound")

_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
local grant = math.min(want, math.floor(tokens))
if grant < 0 then grant = 0 end
tokens = tokens - grant
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('EXPIRE', KEYS[1], 3600)
return grant
"""


def _key(subscription_id: str) -> str:
    return f"reach:webhooks:rate:{subscription_id}"


def take(*, subscription_id: str, rate: float, want: int) -> int:
    """Up to `want` tokens now; a bucket holds one second's worth."""
    try:
        script = get_redis().register_script(_TAKE)
        return int(script(keys=[_key(subscription_id)], args=[rate, max(rate, 1), time.time(), want]))
    except Exception:  # no Redis, no capped sends: the deliveries wait in the database
        logger.exception("webhook rate cap unavailable for %s", subscription_id)
        return 0


def refund(*, subscription_id: str, tokens: int) -> None:
    try:
        get_redis().hincrbyfloat(_key(subscription_id), "tokens", tokens)
    except Exception:
        logger.exception("webhook rate cap refund failed for %s", subscription_id)
