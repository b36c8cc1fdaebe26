from django.db import models
from django.db.models import Q

from apps.core.ids import PrefixedIdField


class Audience(models.Model):
    """A set of contacts: either a live filter over the workspace's contacts or a fixed list (CSV upload)."""

    class Kind(models.TextChoices):
        FILTER = "filter"
        LIST = "list"

    TENANT_WABA_PATH = "waba_id"

    id = PrefixedIdField(prefix="aud")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="audiences")
    # Made by a WABA-bound key: only that key's WABA sees it, and it holds only contacts that WABA sees.
    waba_id = models.CharField(max_length=40, blank=True, default="")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.FILTER)
    # {"tags_any": [...], "tags_all": [...], "custom_fields": {k: v}, "opted_in": bool}
    filter = models.JSONField(default=dict, blank=True)
    # CSV upload report: {"rows", "accepted", "created", "duplicates", "rejected": [{"row", "value", "reason"}]}
    import_report = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class AudienceMember(models.Model):
    """Members of a list audience."""

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="members")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["audience", "contact"], name="uniq_audience_member")]


class Campaign(models.Model):
    TENANT_WABA_PATH = "phone_number__waba_id"
    # pause_reason when the wallet refused a batch: a code a program (and the console) can test, not prose
    PAUSE_INSUFFICIENT_BALANCE = "insufficient_balance"

    class Status(models.TextChoices):
        DRAFT = "draft"
        SCHEDULED = "scheduled"
        RUNNING = "running"
        PAUSED = "paused"
        COMPLETED = "completed"
        CANCELED = "canceled"

    id = PrefixedIdField(prefix="cmp")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200)
    audience = models.ForeignKey(Audience, on_delete=models.PROTECT, related_name="campaigns")
    phone_number = models.ForeignKey("wabas.PhoneNumber", on_delete=models.PROTECT, related_name="+")
    template = models.ForeignKey("message_templates.MessageTemplate", on_delete=models.PROTECT, related_name="+")
    template_name = models.CharField(max_length=512)
    template_language = models.CharField(max_length=15)
    # {"1": "{{contact.name|there}}", ...} (positional) or {"first_name": "..."} (named)
    variables = models.JSONField(default=dict, blank=True)
    # Meta's send-shape components (header media, button parameters, copy codes, an offer's expiry, carousel
    # cards); strings may hold `{{contact.…}}` like `variables`, filled per recipient at hand-out.
    components = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    schedule_at = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    materialized_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=300, blank=True, default="")
    auto_paused = models.BooleanField(default=False)
    # Attempted/failed counts when last resumed: auto-pause judges only what happened since.
    failure_baseline = models.JSONField(default=dict, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    # Lease of the process pumping this campaign (compare-and-set), so two workers never pump at once.
    pump_claimed_until = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=80, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["schedule_at"], condition=Q(status="scheduled"), name="cmp_scheduled_due"),
            models.Index(fields=["status"], condition=Q(status="running"), name="cmp_running"),
            models.Index(fields=["workspace", "status"], name="cmp_ws_status"),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignRecipient(models.Model):
    """One contact of one campaign: the campaign's queue row. Unique per (campaign, contact), so expanding the
    audience twice (a restart) adds nothing, and `message_id` is written in the transaction that creates the
    message, so a recipient is handed to the dispatcher at most once."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DEFERRED = "deferred"  # held back by the messaging tier's daily limit; retried as quota frees
        QUEUED = "queued"  # a message exists (message_id); its status is the message's
        SKIPPED_OPTED_OUT = "skipped_opted_out"
        # MARKETING to a contact with no opt-in row while the workspace requires one (marketing_requires_opt_in)
        SKIPPED_NOT_OPTED_IN = "skipped_not_opted_in"
        SKIPPED_INVALID = "skipped_invalid"  # no phone number
        SKIPPED_MISSING_VARIABLE = "skipped_missing_variable"  # a variable rendered empty and had no default
        SKIPPED_BLOCKED = "skipped_blocked"  # the business blocked the contact (block_users) before hand-out
        EXPIRED = "expired"  # still unsent when the campaign's validity window closed
        CANCELED = "canceled"

    id = models.BigAutoField(primary_key=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.PENDING)
    # No DB constraint or index: the only reads go recipient -> message by the message's primary key.
    message = models.ForeignKey("conversations.Message", null=True, blank=True, on_delete=models.DO_NOTHING,
                                related_name="+", db_constraint=False, db_index=False)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "contact"], name="uniq_campaign_recipient"),
        ]
        indexes = [
            # The pump's "next pending batch" and the stats aggregate both walk (campaign, status).
            models.Index(fields=["campaign", "status", "id"], name="cmprcp_campaign_status"),
        ]
