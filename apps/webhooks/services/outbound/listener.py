"""After-commit fast path: hand committed events to the fan-out task. Only a shortcut; the periodic
sweep reads the event log itself, so a lost enqueue delays delivery, never loses it."""

from __future__ import annotations

import time

from django.conf import settings

from apps.core.hooks import CommittedEvent
from apps.webhooks.models import WebhookSubscription

# workspace id -> (monotonic expiry, has an enabled subscription). Every send commits events, and most
# workspaces' answer rarely changes: a short memory saves a query per commit. Subscription writes in this
# process forget the workspace at once; another process's change is seen within the TTL, and the sweep
# fans out whatever was committed meanwhile.
_has_subscriptions: dict[str, tuple[float, bool]] = {}


def subscriptions_changed(workspace_id: str) -> None:
    _has_subscriptions.pop(workspace_id, None)


def _workspaces_with_subscriptions(workspace_ids: set[str]) -> set[str]:
    now = time.monotonic()
    known = {ws: hit[1] for ws in workspace_ids if (hit := _has_subscriptions.get(ws)) and hit[0] > now}
    unknown = workspace_ids - known.keys()
    if unknown:
        found = set(
            WebhookSubscription.objects.filter(workspace_id__in=unknown, enabled=True, deleted_at__isnull=True)
            .values_list("workspace_id", flat=True).distinct()
        )
        if len(_has_subscriptions) > 10_000:
            _has_subscriptions.clear()
        expiry = now + settings.WEBHOOK_SUBSCRIPTIONS_CACHE_SECONDS
        for ws in unknown:
            known[ws] = ws in found
            _has_subscriptions[ws] = (expiry, known[ws])
    return {ws for ws, has in known.items() if has}


def outbound_events_committed(events: list[CommittedEvent]) -> None:
    from apps.webhooks.tasks.outbound import webhook_events_fan_out_task

    for workspace_id in sorted(_workspaces_with_subscriptions({e.workspace_id for e in events})):
        webhook_events_fan_out_task.delay(workspace_id)
