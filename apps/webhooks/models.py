from django.db import models
from django.db.models import Q

from apps.core.ids import PrefixedIdField


class InboundWebhook(models.Model):
    """A raw webhook body from Meta (or the in-process simulator), stored before we answer 200.
    The row is the queue: processing claims it with a lease and marks it processed."""

    class Source(models.TextChoices):
        META = "meta"
        SIMULATOR = "simulator"

    id = PrefixedIdField(prefix="iwh")
    dedupe_key = models.CharField(max_length=64, unique=True)  # sha256 of the raw body
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.META)
    body = models.BinaryField()
    received_at = models.DateTimeField(auto_now_add=True)
    available_at = models.DateTimeField()  # the simulator delays statuses by setting this ahead
    processed_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    # What processing did: counts per kind and the items it ignored (unknown numbers, unknown wamids).
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["available_at"], condition=Q(processed_at__isnull=True), name="iwh_unprocessed_due"),
        ]


# --- us -> subscribers (OUTBOUND) ------------------------------------------------------------------

# The public event types come from the registry (apps.core.events.public_event_types).
TEST_EVENT_TYPE = "webhook.test"


class WebhookSubscription(models.Model):
    """A partner endpoint. `event_cursor` is the last event sequence of its workspace that the
    dispatcher has fanned out to it; it moves in the same transaction that creates the deliveries."""

    class DisabledReason(models.TextChoices):
        NONE = "", "-"
        MANUAL = "manual", "Disabled by the user"
        GONE = "gone", "Endpoint answered 410 Gone"
        FAILING = "failing", "No success for days"

    TENANT_WABA_PATH = "waba_id"

    id = PrefixedIdField(prefix="whs")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    # Bound to one WABA (waba_…): receives only that WABA's events (apps.core.scoping). A bound key's
    # subscriptions are always bound to its WABA.
    waba_id = models.CharField(max_length=40, blank=True, default="")
    url = models.URLField(max_length=2048)
    events = models.JSONField(default=list)
    description = models.CharField(max_length=500, blank=True, default="")
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=16, choices=DisabledReason.choices, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Set when the system (not the user) disabled it: shown in the admin until someone re-enables it.
    flagged = models.BooleanField(default=False)
    secret = models.TextField()  # Fernet-encrypted whsec_… string
    previous_secret = models.TextField(blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    rate_limit_per_second = models.PositiveIntegerField(null=True, blank=True)
    event_cursor = models.BigIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)  # first failure after the last success
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "event_cursor"], name="whs_ws_cursor")]

    def __str__(self) -> str:
        return f"{self.id} {self.url}"


class WebhookDelivery(models.Model):
    """One event for one subscription (unique). The row is the queue: `pending` + `next_attempt_at`
    due + no live lease means claimable. `id` is the Standard Webhooks `webhook-id`, so it is the same
    on every attempt and every redelivery."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    TENANT_WABA_PATH = "subscription__waba_id"

    id = PrefixedIdField(prefix="whd")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    # db_index=False: uniq_delivery_per_event_subscription and whd_sub_created lead with it already, and each
    # extra index is written on every claim and every recorded attempt (the delivery hot path)
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries",
                                     db_index=False)
    event_id = models.CharField(max_length=40)
    event_type = models.CharField(max_length=64)
    event_sequence = models.BigIntegerField(default=0)  # 0 for test events (not in the log)
    event_created_at = models.DateTimeField()
    payload = models.TextField(blank=True, default="")  # the exact body sent; purged after retention
    payload_purged_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)  # every attempt ever
    cycle_attempts = models.PositiveIntegerField(default=0)  # attempts in the current retry schedule
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, default="")
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    succeeded_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event_id"], name="uniq_delivery_per_event_subscription"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="whd_pending_due"),
            models.Index(fields=["subscription", "event_sequence"], condition=Q(status="pending"),
                         name="whd_pending_sub_seq"),
            models.Index(fields=["subscription", "-created_at"], name="whd_sub_created"),
            models.Index(fields=["created_at"], condition=Q(payload_purged_at__isnull=True), name="whd_unpurged"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.event_type} -> {self.subscription_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery, success or not."""

    id = PrefixedIdField(prefix="wha")
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts",
                                 db_index=False)  # wha_delivery_number leads with it
    number = models.PositiveIntegerField()
    request_id = models.CharField(max_length=40)
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True, default="")
    response_excerpt = models.TextField(blank=True, default="")
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery", "number"]
        indexes = [models.Index(fields=["delivery", "number"], name="wha_delivery_number")]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number} -> {self.status_code or self.error}"
