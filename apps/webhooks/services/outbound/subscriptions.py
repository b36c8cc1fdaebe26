"""Subscription writes: create, update, delete, rotate the secret, redeliver."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.crypto import decrypt_secret, encrypt_secret
from apps.core.errors import Conflict, ValidationFailed
from apps.core.events import event_type_is_public
from apps.core.models import Workspace
from apps.core.selectors import waba_exists
from apps.core.tenancy import Tenant
from apps.webhooks import ssrf
from apps.webhooks.models import WebhookDelivery, WebhookSubscription
from apps.webhooks.services.outbound.listener import subscriptions_changed
from apps.webhooks.services.outbound.signing import secret_generate


def _clean_events(events: Any) -> list[str]:
    if not isinstance(events, list) or not events:
        raise ValidationFailed("events must be a non-empty list of event types, or [\"*\"].", field="events")
    if events == ["*"]:
        return ["*"]
    unknown = [e for e in events if not (isinstance(e, str) and event_type_is_public(e))]
    if unknown or "*" in events:
        raise ValidationFailed(f"Unknown event types: {', '.join(map(str, unknown or ['*']))}.", field="events")
    return sorted(set(events))


def _clean_url(url: str) -> str:
    try:
        return ssrf.check_url(url)
    except ssrf.UnsafeUrl as exc:
        raise ValidationFailed(str(exc), field="url")


def subscription_waba_for(*, tenant: Tenant, requested: str) -> str:
    """The WABA a new subscription is bound to. A WABA-bound key's subscriptions are bound to its WABA,
    whether it asked or not (`["*"]` then means every event of that WABA); naming another WABA is a 400.
    An unbound key may bind a subscription to any WABA of its workspace, or to none."""
    if tenant.waba_id:
        if requested and requested != tenant.waba_id:
            raise ValidationFailed("This key is bound to another WABA.", field="waba_id")
        return tenant.waba_id
    if requested and not waba_exists(workspace=tenant.workspace, waba_id=requested):
        raise ValidationFailed("No such WABA in this workspace.", field="waba_id")
    return requested


def subscription_create(*, workspace: Workspace, url: str, events: list[str], description: str = "",
                        enabled: bool = True, rate_limit_per_second: int | None = None, waba_id: str = ""
                        ) -> tuple[WebhookSubscription, str]:
    """Returns the subscription and its secret; the secret is shown this once. waba_id: bound to that
    WABA (subscription_waba_for says which), it receives only that WABA's events."""
    url = _clean_url(url)
    events = _clean_events(events)
    secret = secret_generate()
    now = timezone.now()
    sub = WebhookSubscription.objects.create(
        workspace=workspace, url=url, events=events, description=description, enabled=enabled, waba_id=waba_id,
        disabled_reason="" if enabled else WebhookSubscription.DisabledReason.MANUAL,
        disabled_at=None if enabled else now, secret=encrypt_secret(secret),
        rate_limit_per_second=rate_limit_per_second,
        # Start at the present: a new endpoint gets what happens from now on, not the history.
        event_cursor=Workspace.objects.filter(pk=workspace.pk).values_list("event_sequence", flat=True)[0],
    )
    subscriptions_changed(workspace.pk)
    return sub, secret


def subscription_update(*, subscription: WebhookSubscription, data: dict[str, Any]) -> WebhookSubscription:
    fields: list[str] = []
    if "url" in data:
        subscription.url = _clean_url(data["url"])
        fields.append("url")
    if "events" in data:
        subscription.events = _clean_events(data["events"])
        fields.append("events")
    if "description" in data:
        subscription.description = data["description"]
        fields.append("description")
    if "rate_limit_per_second" in data:
        subscription.rate_limit_per_second = data["rate_limit_per_second"]
        fields.append("rate_limit_per_second")
    if "enabled" in data:
        subscription_set_enabled(subscription=subscription, enabled=bool(data["enabled"]), save=False)
        fields += ["enabled", "disabled_reason", "disabled_at", "flagged", "failing_since"]
    if fields:
        subscription.save(update_fields=[*dict.fromkeys(fields), "updated_at"])
        subscriptions_changed(subscription.workspace_id)
    return subscription


def subscription_set_enabled(*, subscription: WebhookSubscription, enabled: bool, save: bool = True,
                             reason: str = WebhookSubscription.DisabledReason.MANUAL) -> WebhookSubscription:
    if enabled and not subscription.enabled:
        subscription.enabled = True
        subscription.disabled_reason = ""
        subscription.disabled_at = None
        subscription.flagged = False
        subscription.failing_since = None  # a fresh chance: the 5-day clock restarts
    elif not enabled and subscription.enabled:
        subscription.enabled = False
        subscription.disabled_reason = reason
        subscription.disabled_at = timezone.now()
        subscription.flagged = reason != WebhookSubscription.DisabledReason.MANUAL
    if save:
        subscription.save(update_fields=["enabled", "disabled_reason", "disabled_at", "flagged", "failing_since",
                                         "updated_at"])
    subscriptions_changed(subscription.workspace_id)
    return subscription


@transaction.atomic
def subscription_delete(*, subscription: WebhookSubscription) -> None:
    """Soft delete: a worker may hold a claim on one of its deliveries; it must still be able to log it."""
    now = timezone.now()
    WebhookSubscription.objects.filter(pk=subscription.pk).update(deleted_at=now, enabled=False, updated_at=now)
    WebhookDelivery.objects.filter(subscription=subscription, status=WebhookDelivery.Status.PENDING).update(
        status=WebhookDelivery.Status.CANCELLED, next_attempt_at=None
    )
    subscriptions_changed(subscription.workspace_id)


def subscription_rotate_secret(*, subscription: WebhookSubscription, now: datetime | None = None) -> str:
    """New secret; the old one keeps signing alongside until the overlap ends."""
    now = now or timezone.now()
    new_secret = secret_generate()
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_expires_at = now + timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS)
    subscription.secret = encrypt_secret(new_secret)
    subscription.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return new_secret


def subscription_signing_secrets(*, subscription: WebhookSubscription, now: datetime) -> list[str]:
    secrets = [decrypt_secret(subscription.secret)]
    if subscription.previous_secret and subscription.previous_secret_expires_at and \
            subscription.previous_secret_expires_at > now:
        secrets.append(decrypt_secret(subscription.previous_secret))
    return secrets


def _requeue(qs, now: datetime) -> int:
    return qs.update(status=WebhookDelivery.Status.PENDING, next_attempt_at=now, cycle_attempts=0,
                     claimed_until=None, claim_token="", failed_at=None)


def delivery_redeliver(*, delivery: WebhookDelivery, now: datetime | None = None) -> WebhookDelivery:
    """Send it again with the same webhook-id and body; a fresh retry schedule."""
    now = now or timezone.now()
    sub = delivery.subscription
    if sub.deleted_at is not None:
        raise Conflict("The subscription was deleted.")
    if not sub.enabled:
        raise Conflict("The subscription is disabled; enable it first.")
    if delivery.payload_purged_at is not None:
        raise Conflict("This delivery's payload was purged after the retention period.")
    if delivery.status == WebhookDelivery.Status.PENDING:
        WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING,
                                       next_attempt_at__gt=now).update(next_attempt_at=now)
    else:
        _requeue(WebhookDelivery.objects.filter(pk=delivery.pk).exclude(status=WebhookDelivery.Status.PENDING), now)
    delivery.refresh_from_db()
    return delivery


def deliveries_redeliver_failed(*, subscription: WebhookSubscription, since: datetime,
                                now: datetime | None = None) -> int:
    now = now or timezone.now()
    if since < now - timedelta(days=settings.WEBHOOK_REDELIVER_MAX_DAYS):
        raise ValidationFailed(f"since may be at most {settings.WEBHOOK_REDELIVER_MAX_DAYS} days back.",
                               field="since")
    if not subscription.enabled:
        raise Conflict("The subscription is disabled; enable it first.")
    qs = WebhookDelivery.objects.filter(subscription=subscription, status=WebhookDelivery.Status.FAILED,
                                        created_at__gte=since, payload_purged_at__isnull=True)
    return _requeue(qs, now)
