"""/api/v1/webhook-subscriptions and /api/v1/webhook-deliveries (API.md "Webhook subscriptions")."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.core.api.base import ApiView
from apps.core.errors import ValidationFailed
from apps.core.events import public_event_types
from apps.webhooks import selectors
from apps.webhooks.models import WebhookDelivery, WebhookSubscription
from apps.webhooks.services import outbound

SCOPE = "webhooks:manage"
ALL = {"GET": SCOPE, "POST": SCOPE, "PATCH": SCOPE, "DELETE": SCOPE}


def _ts(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def subscription_out(sub: WebhookSubscription, *, secret: str | None = None) -> dict:
    body = {
        "id": sub.id, "url": sub.url, "events": sub.events, "description": sub.description,
        "waba_id": sub.waba_id or None,
        "enabled": sub.enabled, "disabled_reason": sub.disabled_reason or None,
        "rate_limit_per_second": sub.rate_limit_per_second, "sandbox": sub.workspace.is_sandbox,
        "last_success_at": _ts(sub.last_success_at), "failing_since": _ts(sub.failing_since),
        "previous_secret_expires_at": _ts(sub.previous_secret_expires_at),
        "created_at": _ts(sub.created_at), "updated_at": _ts(sub.updated_at),
    }
    if secret is not None:
        body["secret"] = secret
    return body


def delivery_out(d: WebhookDelivery) -> dict:
    return {
        "id": d.id, "webhook_id": d.id, "subscription_id": d.subscription_id, "event_id": d.event_id,
        "event_type": d.event_type, "status": d.status, "attempt_count": d.attempt_count,
        "next_attempt_at": _ts(d.next_attempt_at), "last_status_code": d.last_status_code,
        "last_error": d.last_error or None, "created_at": _ts(d.created_at), "succeeded_at": _ts(d.succeeded_at),
        "failed_at": _ts(d.failed_at), "payload_purged": d.payload_purged_at is not None,
        "attempts": [
            {"number": a.number, "request_id": a.request_id, "started_at": _ts(a.started_at),
             "status_code": a.status_code, "latency_ms": a.latency_ms, "error": a.error or None,
             "response_excerpt": a.response_excerpt, "succeeded": a.succeeded}
            for a in d.attempts.all()
        ],
    }


class EventTypeField(serializers.CharField):
    """A public event type or "*" (all of them); the service checks it against the registry."""

    def __init__(self, **kwargs):
        super().__init__(max_length=64, **kwargs)


class EventTypeFieldSchema(OpenApiSerializerFieldExtension):
    """Documents EventTypeField as an enum of the registry's public types, read when the schema is built."""

    target_class = EventTypeField

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "enum": [*public_event_types(), "*"],
                "description": "An event type (see `webhooks`), or `*` alone for all of them."}


class SubscriptionInput(serializers.Serializer):
    url = serializers.CharField(max_length=2048)
    events = serializers.ListField(child=EventTypeField(), allow_empty=False, max_length=50)
    description = serializers.CharField(max_length=500, allow_blank=True, required=False, default="")
    enabled = serializers.BooleanField(required=False, default=True)
    rate_limit_per_second = serializers.IntegerField(min_value=1, max_value=10000, required=False, allow_null=True,
                                                     default=None)
    # Only that WABA's events. A WABA-bound key's subscriptions are always bound to its WABA (given or not).
    waba_id = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True, default="")


class SubscriptionPatchInput(serializers.Serializer):
    url = serializers.CharField(max_length=2048, required=False)
    events = serializers.ListField(child=EventTypeField(), allow_empty=False, max_length=50, required=False)
    description = serializers.CharField(max_length=500, allow_blank=True, required=False)
    enabled = serializers.BooleanField(required=False)
    rate_limit_per_second = serializers.IntegerField(min_value=1, max_value=10000, required=False, allow_null=True)


class RedeliverFailedInput(serializers.Serializer):
    since = serializers.DateTimeField()


class _SubscriptionView(ApiView):
    scopes = ALL

    def subscription(self, pk: str) -> WebhookSubscription:
        sub = self.get_scoped(selectors.subscription_list(tenant=self.tenant), pk)
        self.audit_target = ("webhook_subscription", sub.pk)
        return sub


class SubscriptionListView(_SubscriptionView):
    InputSerializer = SubscriptionInput  # documents POST's body

    def get(self, request):
        return self.paginated(selectors.subscription_list(tenant=self.tenant), subscription_out)

    def post(self, request):
        data = SubscriptionInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        waba_id = outbound.subscription_waba_for(tenant=self.tenant, requested=values.pop("waba_id", "") or "")
        sub, secret = outbound.subscription_create(workspace=self.tenant.workspace, waba_id=waba_id, **values)
        self.audit_target = ("webhook_subscription", sub.pk)
        return Response(subscription_out(sub, secret=secret), status=status.HTTP_201_CREATED)


class SubscriptionDetailView(_SubscriptionView):
    InputSerializer = SubscriptionPatchInput  # documents PATCH's body

    def get(self, request, pk):
        return Response(subscription_out(self.subscription(pk)))

    def patch(self, request, pk):
        sub = self.subscription(pk)
        data = SubscriptionPatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        sub = outbound.subscription_update(subscription=sub, data=data.validated_data)
        return Response(subscription_out(sub))

    def delete(self, request, pk):
        outbound.subscription_delete(subscription=self.subscription(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SubscriptionRotateSecretView(_SubscriptionView):
    def post(self, request, pk):
        sub = self.subscription(pk)
        secret = outbound.subscription_rotate_secret(subscription=sub)
        return Response(subscription_out(sub, secret=secret))


class SubscriptionDeliveriesView(_SubscriptionView):
    def get(self, request, pk):
        sub = self.subscription(pk)
        status_filter = request.query_params.get("status")
        if status_filter and status_filter not in WebhookDelivery.Status.values:
            raise ValidationFailed("Unknown status.", field="status")
        qs = selectors.delivery_list(tenant=self.tenant, subscription=sub, status=status_filter,
                                     event_type=request.query_params.get("event_type"))
        return self.paginated(qs, delivery_out)


class SubscriptionTestView(_SubscriptionView):
    def post(self, request, pk):
        delivery = outbound.subscription_send_test(subscription=self.subscription(pk))
        delivery = selectors.delivery_list(tenant=self.tenant).get(pk=delivery.pk)
        return Response(delivery_out(delivery), status=status.HTTP_200_OK)


class SubscriptionRedeliverFailedView(_SubscriptionView):
    def post(self, request, pk):
        sub = self.subscription(pk)
        data = RedeliverFailedInput(data=request.data)
        data.is_valid(raise_exception=True)
        count = outbound.deliveries_redeliver_failed(subscription=sub, since=data.validated_data["since"])
        return Response({"redelivered": count}, status=status.HTTP_202_ACCEPTED)


class DeliveryDetailView(ApiView):
    scopes = ALL

    def get(self, request, pk):
        return Response(delivery_out(self.get_scoped(selectors.delivery_list(tenant=self.tenant), pk)))


class DeliveryRedeliverView(ApiView):
    scopes = ALL

    def post(self, request, pk):
        delivery = self.get_scoped(selectors.delivery_list(tenant=self.tenant), pk)
        self.audit_target = ("webhook_delivery", delivery.pk)
        outbound.delivery_redeliver(delivery=delivery)
        delivery = selectors.delivery_list(tenant=self.tenant).get(pk=delivery.pk)
        return Response(delivery_out(delivery), status=status.HTTP_202_ACCEPTED)
