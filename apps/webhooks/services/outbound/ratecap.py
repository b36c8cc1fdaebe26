"""Optional per-subscription delivery rate (the core runtime token bucket in Redis, shared by every worker).

Redis holds only tokens: losing it (restart, FLUSHDB) refills the buckets, nothing else; the deliveries
themselves live in PostgreSQL."""

from __future__ import annotations

import logging

from apps.core.redis import get_redis
from apps.core.runtime.buckets import bucket_take

logger = logging.getLogger("reach.webhooks.outbound")



def _key(subscription_id: str) -> str:
    return f"reach:webhooks:rate:{subscription_id}"


def take(*, subscription_id: str, rate: float, want: int, now: float | None = None) -> int:
    """Up to `want` tokens now (Redis' clock; `now`, unix seconds, replaces it in tests); a bucket holds
    one second's worth."""
    try:
        ((granted, _),) = bucket_take([_key(subscription_id)], rate=rate, capacity=max(rate, 1), want=want,
                                      ttl_seconds=3600, now_us=None if now is None else int(now * 1_000_000))
        return granted
    except Exception:  # no Redis, no capped sends: the deliveries wait in the database
        logger.exception("webhook rate cap unavailable for %s", subscription_id)
        return 0


def refund(*, subscription_id: str, tokens: int) -> None:
    try:
        get_redis().hincrbyfloat(_key(subscription_id), "tokens", tokens)
    except Exception:
        logger.exception("webhook rate cap refund failed for %s", subscription_id)
