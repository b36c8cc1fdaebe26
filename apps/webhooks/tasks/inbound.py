"""Tasks for Meta -> us: thin wrappers that take ids and call the inbound services."""

from celery import shared_task

from apps.webhooks.services import inbound


@shared_task(name="apps.webhooks.tasks.inbound.inbound_webhook_process_task", ignore_result=True)
def inbound_webhook_process_task(webhook_id: str) -> str:
    return inbound.inbound_webhook_process(webhook_id=webhook_id).status


@shared_task(name="apps.webhooks.tasks.inbound.inbound_webhooks_sweep_task", ignore_result=True)
def inbound_webhooks_sweep_task() -> int:
    return inbound.inbound_webhooks_sweep()


@shared_task(name="apps.webhooks.tasks.inbound.inbound_webhooks_drain_task", ignore_result=True)
def inbound_webhooks_drain_task(slot: int = 0) -> int:
    return inbound.inbound_webhooks_drain(slot=slot)


@shared_task(name="apps.webhooks.tasks.inbound.inbound_webhooks_purge_task", ignore_result=True)
def inbound_webhooks_purge_task() -> int:
    return inbound.inbound_webhooks_purge()
