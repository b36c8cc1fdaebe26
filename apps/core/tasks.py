from celery import shared_task

from apps.core import idempotency


@shared_task(name="apps.core.tasks.idempotency_records_purge")
def idempotency_records_purge() -> int:
    return idempotency.idempotency_records_purge()
