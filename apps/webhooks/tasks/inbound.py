"""Tasks for Meta -> us: thin wrappers that take ids and call the inbound services."""

from celery import shared_task
from django.conf import settings

from apps.webhooks.services import inbound


@shared_task(name="apps.webhooks.tasks.inbound.inbound_webhook_process_task", ignore_result=True)
def inbound_webhook_process_task(webhook_id: str) -> str:
    return inbound.inbound_webhook_process(webhook_id=webhook_id).status


@shared_task(name="apps.webhooks.tasks.inbound.inbound_webhooks_sweep_task", ignore_result=True)
def inbound_webhooks_sweep_task() -> int:
    return inbound.inbound_webhooks_sweep()


@shared_task(bind=True, name="apps.webhooks.tasks.inbound.inbound_webhooks_drain_task", ignore_result=True)
def inbound_webhooks_drain_task(self, slot: int = 0) -> int:
    # A task run in place (eager) runs inside its caller: it must not idle there.
    idle = 0.0 if self.request.is_eager else settings.INBOUND_WEBHOOK_DRAIN_IDLE_SECONDS
    return inbound.inbound_webhooks_drain(slot=slot, idle_seconds=idle)


@shared_task(name="apps.webhooks.tasks.inbound.inbound_webhooks_purge_task", ignore_result=True)
def inbound_webhooks_purge_task() -> int:
    return inbound.inbound_webhooks_purge()
