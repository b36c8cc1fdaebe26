import time

from celery import shared_task

from apps.core import idempotency
from apps.core.redis import get_redis

HEARTBEAT_KEY = "reach:background:heartbeat"


@shared_task(name="apps.core.tasks.idempotency_records_purge")
def idempotency_records_purge() -> int:
    return idempotency.idempotency_records_purge()


@shared_task(name="apps.core.tasks.heartbeat")
def heartbeat() -> float:
    """Beat -> broker -> worker -> here: the stamp proves the whole background chain is alive (/readyz shows
    its age)."""
    now = time.time()
    get_redis().set(HEARTBEAT_KEY, repr(now), ex=3600)
    return now
