"""Tasks for us -> subscribers: thin wrappers over services.outbound. Every one is safe to run twice
and in parallel (claims and cursors live in the database)."""

from __future__ import annotations

from celery import shared_task

from apps.webhooks.services import outbound

# A Celery-hosted runner works for a bounded time, then the next sweep/fast path starts another.
RUN_SECONDS = 25.0


@shared_task(name="apps.webhooks.tasks.outbound.webhook_events_fan_out_task", ignore_result=True)
def webhook_events_fan_out_task(workspace_id: str | None = None) -> int:
    created = outbound.events_fan_out(workspace_id=workspace_id)
    if created:
        webhook_deliveries_run_task.delay()
    return created


@shared_task(name="apps.webhooks.tasks.outbound.webhook_deliveries_run_task", ignore_result=True)
def webhook_deliveries_run_task() -> int:
    return outbound.deliver_due(max_seconds=RUN_SECONDS)


@shared_task(name="apps.webhooks.tasks.outbound.webhook_outbound_sweep_task", ignore_result=True)
def webhook_outbound_sweep_task() -> int:
    """The durable path: whatever the after-commit fast path missed is fanned out and delivered here."""
    outbound.events_fan_out()
    return outbound.deliver_due(max_seconds=RUN_SECONDS)


@shared_task(name="apps.webhooks.tasks.outbound.webhook_payloads_purge_task", ignore_result=True)
def webhook_payloads_purge_task() -> int:
    return outbound.payloads_purge()


@shared_task(name="apps.webhooks.tasks.outbound.webhook_subscriptions_health_task", ignore_result=True)
def webhook_subscriptions_health_task() -> int:
    return outbound.subscriptions_disable_failing()
