"""/api/v1/webhook-subscriptions and /api/v1/webhook-deliveries (API.md "Webhook subscriptions")."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.core.api.base import ApiView
from apps.core.api.docs import PAGE_PARAMETERS, api_doc, paginated, query
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


class SubscriptionOut(serializers.Serializer):
    id = serializers.CharField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField(allow_blank=True)
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField(allow_null=True)
    rate_limit_per_second = serializers.IntegerField(allow_null=True)
    sandbox = serializers.BooleanField()
    last_success_at = serializers.DateTimeField(allow_null=True)
    failing_since = serializers.DateTimeField(allow_null=True)
    previous_secret_expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SubscriptionWithSecretOut(SubscriptionOut):
    secret = serializers.CharField(help_text="whsec_ + base64 of 32 bytes. Shown only in this answer.")


class AttemptOut(serializers.Serializer):
    number = serializers.IntegerField()
    request_id = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField(allow_null=True)
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    response_excerpt = serializers.CharField(allow_blank=True, allow_null=True)
    succeeded = serializers.BooleanField()


class DeliveryOut(serializers.Serializer):
    id = serializers.CharField()
    webhook_id = serializers.CharField(help_text="The `webhook-id` header: the same on every attempt.")
    subscription_id = serializers.CharField()
    event_id = serializers.CharField()
    event_type = serializers.CharField()
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.values)
    attempt_count = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    succeeded_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    payload_purged = serializers.BooleanField()
    attempts = AttemptOut(many=True)


class RedeliveredOut(serializers.Serializer):
    redelivered = serializers.IntegerField(help_text="How many failed deliveries were queued again.")


class _SubscriptionView(ApiView):
    scopes = ALL

    def subscription(self, pk: str) -> WebhookSubscription:
        sub = self.get_scoped(selectors.subscription_list(tenant=self.tenant), pk)
        self.audit_target = ("webhook_subscription", sub.pk)
        return sub


class SubscriptionListView(_SubscriptionView):
    @api_doc(operation_id="webhook_subscriptions_list", summary="List webhook subscriptions",
             description="Your endpoints that receive events (see `webhooks` in this document).",
             parameters=PAGE_PARAMETERS, responses={200: paginated(SubscriptionOut)})
    def get(self, request):
        return self.paginated(selectors.subscription_list(tenant=self.tenant), subscription_out)

    @api_doc(operation_id="webhook_subscriptions_create", summary="Subscribe an endpoint to events",
             description="`url` must be https (and must not resolve to a private, loopback or link-local address "
             "in production); `events` lists event types or is `[\"*\"]`. The answer carries the signing "
             "`secret` once.", request=SubscriptionInput, responses={201: SubscriptionWithSecretOut})
    def post(self, request):
        data = SubscriptionInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        waba_id = outbound.subscription_waba_for(tenant=self.tenant, requested=values.pop("waba_id", "") or "")
        sub, secret = outbound.subscription_create(workspace=self.tenant.workspace, waba_id=waba_id, **values)
        self.audit_target = ("webhook_subscription", sub.pk)
        return Response(subscription_out(sub, secret=secret), status=status.HTTP_201_CREATED)


class SubscriptionDetailView(_SubscriptionView):
    @api_doc(operation_id="webhook_subscriptions_get", summary="Get a webhook subscription",
             description="One subscription with its health (last success, failing since).",
             responses={200: SubscriptionOut})
    def get(self, request, pk):
        return Response(subscription_out(self.subscription(pk)))

    @api_doc(operation_id="webhook_subscriptions_update", summary="Update a webhook subscription",
             description="Only the fields given change; enabling a disabled endpoint clears its failure state.",
             request=SubscriptionPatchInput, responses={200: SubscriptionOut})
    def patch(self, request, pk):
        sub = self.subscription(pk)
        data = SubscriptionPatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        sub = outbound.subscription_update(subscription=sub, data=data.validated_data)
        return Response(subscription_out(sub))

    @api_doc(operation_id="webhook_subscriptions_delete", summary="Delete a webhook subscription",
             description="Stops deliveries to the endpoint.", responses={204: None})
    def delete(self, request, pk):
        outbound.subscription_delete(subscription=self.subscription(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SubscriptionRotateSecretView(_SubscriptionView):
    @api_doc(operation_id="webhook_subscriptions_rotate_secret", summary="Rotate the signing secret",
             description="A new secret, shown once; the old one keeps signing alongside for 24 h.", request=None,
             responses={200: SubscriptionWithSecretOut})
    def post(self, request, pk):
        sub = self.subscription(pk)
        secret = outbound.subscription_rotate_secret(subscription=sub)
        return Response(subscription_out(sub, secret=secret))


class SubscriptionDeliveriesView(_SubscriptionView):
    @api_doc(operation_id="webhook_subscriptions_deliveries", summary="List a subscription's deliveries",
             description="Every delivery with its attempts: status code, latency, error.",
             parameters=[*PAGE_PARAMETERS, query("status", enum=WebhookDelivery.Status.values), query("event_type")],
             responses={200: paginated(DeliveryOut)})
    def get(self, request, pk):
        sub = self.subscription(pk)
        status_filter = request.query_params.get("status")
        if status_filter and status_filter not in WebhookDelivery.Status.values:
            raise ValidationFailed("Unknown status.", field="status")
        qs = selectors.delivery_list(tenant=self.tenant, subscription=sub, status=status_filter,
                                     event_type=request.query_params.get("event_type"))
        return self.paginated(qs, delivery_out)


class SubscriptionTestView(_SubscriptionView):
    @api_doc(operation_id="webhook_subscriptions_test", summary="Send a test event",
             description="Delivers a `webhook.test` event to the endpoint now and answers the delivery.",
             request=None, responses={200: DeliveryOut})
    def post(self, request, pk):
        delivery = outbound.subscription_send_test(subscription=self.subscription(pk))
        delivery = selectors.delivery_list(tenant=self.tenant).get(pk=delivery.pk)
        return Response(delivery_out(delivery), status=status.HTTP_200_OK)


class SubscriptionRedeliverFailedView(_SubscriptionView):
    @api_doc(operation_id="webhook_subscriptions_redeliver_failed", summary="Redeliver failed deliveries",
             description="Queues again every failed delivery since a time.", request=RedeliverFailedInput,
             responses={202: RedeliveredOut})
    def post(self, request, pk):
        sub = self.subscription(pk)
        data = RedeliverFailedInput(data=request.data)
        data.is_valid(raise_exception=True)
        count = outbound.deliveries_redeliver_failed(subscription=sub, since=data.validated_data["since"])
        return Response({"redelivered": count}, status=status.HTTP_202_ACCEPTED)


class DeliveryDetailView(ApiView):
    scopes = ALL

    @api_doc(operation_id="webhook_deliveries_get", summary="Get a delivery",
             description="One delivery with its attempts.", responses={200: DeliveryOut})
    def get(self, request, pk):
        return Response(delivery_out(self.get_scoped(selectors.delivery_list(tenant=self.tenant), pk)))


class DeliveryRedeliverView(ApiView):
    scopes = ALL

    @api_doc(operation_id="webhook_deliveries_redeliver", summary="Redeliver one delivery",
             description="Queues the event again to the same endpoint (same `webhook-id`).", request=None,
             responses={202: DeliveryOut})
    def post(self, request, pk):
        delivery = self.get_scoped(selectors.delivery_list(tenant=self.tenant), pk)
        self.audit_target = ("webhook_delivery", delivery.pk)
        outbound.delivery_redeliver(delivery=delivery)
        delivery = selectors.delivery_list(tenant=self.tenant).get(pk=delivery.pk)
        return Response(delivery_out(delivery), status=status.HTTP_202_ACCEPTED)
