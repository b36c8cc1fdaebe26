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
