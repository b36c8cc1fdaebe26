"""Webhooks read layer (outbound part): subscriptions and deliveries, always scoped by workspace."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from apps.core.models import Workspace
from apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription


def subscription_list(*, workspace: Workspace) -> QuerySet[WebhookSubscription]:
    return WebhookSubscription.objects.filter(workspace=workspace, deleted_at__isnull=True).select_related("workspace")


def delivery_list(*, workspace: Workspace, subscription: WebhookSubscription | None = None,
                  status: str | None = None, event_type: str | None = None) -> QuerySet[WebhookDelivery]:
    qs = WebhookDelivery.objects.filter(workspace=workspace).prefetch_related(
        Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("number", "started_at"))
    )
    if subscription is not None:
        qs = qs.filter(subscription=subscription)
    if status:
        qs = qs.filter(status=status)
    if event_type:
        qs = qs.filter(event_type=event_type)
    return qs
