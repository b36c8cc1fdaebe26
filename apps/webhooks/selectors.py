"""Webhooks read layer (outbound part): subscriptions and deliveries, always scoped by workspace."""

from __future__ import annotations

from django.db.models import Min, Prefetch, QuerySet

from apps.core.selectors import tenant_queryset
from apps.core.tenancy import Tenant
from apps.webhooks.models import InboundWebhook, WebhookAttempt, WebhookDelivery, WebhookSubscription


def subscription_list(*, tenant: Tenant) -> QuerySet[WebhookSubscription]:
    """The caller's subscriptions: a WABA-bound key sees only those bound to its WABA."""
    return tenant_queryset(WebhookSubscription, tenant=tenant).filter(deleted_at__isnull=True).select_related(
        "workspace")


def delivery_list(*, tenant: Tenant, subscription: WebhookSubscription | None = None,
                  status: str | None = None, event_type: str | None = None) -> QuerySet[WebhookDelivery]:
    qs = tenant_queryset(WebhookDelivery, tenant=tenant).prefetch_related(
        Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("number", "started_at"))
    )
    if subscription is not None:
        qs = qs.filter(subscription=subscription)
    if status:
        qs = qs.filter(status=status)
    if event_type:
        qs = qs.filter(event_type=event_type)
    return qs


# A stored webhook that failed this many times is a poison row for a person to look at (the admin's
# reprocess); it no longer holds the receive watermark back.
RECEIVE_WATERMARK_MAX_ATTEMPTS = 3


def inbound_receive_watermark():
    """When the oldest stored Meta webhook still waiting to be applied was received (None: none waits), so
    every webhook received before it has been applied. Rows failing again and again are left out."""
    return (InboundWebhook.objects.filter(processed_at__isnull=True, attempts__lt=RECEIVE_WATERMARK_MAX_ATTEMPTS)
            .aggregate(oldest=Min("received_at"))["oldest"])
