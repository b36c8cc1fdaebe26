"""After-commit fast path: hand committed events to the fan-out task. Only a shortcut; the periodic
sweep reads the event log itself, so a lost enqueue delays delivery, never loses it."""

from __future__ import annotations

from apps.core.hooks import CommittedEvent
from apps.webhooks.models import WebhookSubscription


def outbound_events_committed(events: list[CommittedEvent]) -> None:
    from apps.webhooks.tasks.outbound import webhook_events_fan_out_task

    workspace_ids = {e.workspace_id for e in events}
    with_subs = set(
        WebhookSubscription.objects.filter(workspace_id__in=workspace_ids, enabled=True, deleted_at__isnull=True)
        .values_list("workspace_id", flat=True).distinct()
    )
    for workspace_id in sorted(with_subs):
        webhook_events_fan_out_task.delay(workspace_id)
