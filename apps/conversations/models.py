from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Coalesce

from apps.core.ids import PrefixedIdField
from apps.core.scoping import WABA_SHARED


class Conversation(models.Model):
    TENANT_WABA_PATH = "phone_number__waba_id"

    class State(models.TextChoices):
        OPEN = "open"
        PENDING = "pending"
        RESOLVED = "resolved"
        SNOOZED = "snoozed"

    class ChannelKind(models.TextChoices):
        WHATSAPP = "whatsapp"
        SMS = "sms"
        MESSENGER = "messenger"
        INSTAGRAM = "instagram"
        EMAIL = "email"

    id = PrefixedIdField(prefix="cnv")
    # db_index=False where an index in Meta leads with the column (see there): a send updates the row's
    # indexed columns, so it writes every index of the table.
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="conversations",
                                  db_index=False)
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="conversations",
                                db_index=False)
    phone_number = models.ForeignKey("wabas.PhoneNumber", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="conversations")
    channel_kind = models.CharField(max_length=10, choices=ChannelKind.choices, default=ChannelKind.WHATSAPP)
    # Messenger and Instagram threads: the Page / Instagram account instead of a number.
    social_account = models.ForeignKey("wabas.SocialAccount", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="conversations", db_index=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    assigned_user = models.ForeignKey("core.User", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="assigned_conversations", db_index=False)
    snooze_until = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=200, blank=True, default="")
    unread_count = models.PositiveIntegerField(default=0)
    # Who opened the thread: "campaign" keeps it out of the agents' lists until the customer replies
    # (selectors.conversations.conversations_list); blank for every other opener.
    opened_by = models.CharField(max_length=20, blank=True, default="")
    team = models.ForeignKey("conversations.Team", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="conversations", db_index=False)
    labels = models.ManyToManyField("conversations.Label", blank=True, related_name="conversations")
    # A click-to-WhatsApp ad or post entry (Meta's referral object) and the free entry point window it can
    # open: a business reply before entry_point_reply_deadline opens it at entry_point_opened_at (policy).
    referral = models.JSONField(default=dict, blank=True)
    referral_at = models.DateTimeField(null=True, blank=True)
    entry_point_reply_deadline = models.DateTimeField(null=True, blank=True)
    entry_point_opened_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-last_message_at"], name="cnv_ws_last_msg"),
            models.Index(fields=["workspace", "state", "-last_message_at"], name="cnv_ws_state_last_msg"),
            models.Index(fields=["workspace", "assigned_user", "-last_message_at"], name="cnv_ws_assignee_last_msg"),
            models.Index(fields=["contact", "phone_number", "channel_kind"], name="cnv_contact_number"),
            *[models.Index(fields=[f], condition=Q(**{f"{f}__isnull": False}), name=f"cnv_{f}")
              for f in ("social_account", "assigned_user", "team")],
        ]
        constraints = [
            # At most one not-resolved conversation per contact, number and channel (threads.py upserts on
            # it). SMS threads have no number: COALESCE makes NULL one value, on PostgreSQL and SQLite alike.
            models.UniqueConstraint(
                "contact", Coalesce("phone_number", Value("")), "channel_kind",
                condition=~Q(state="resolved"), name="cnv_one_open",
            ),
        ]

    def __str__(self) -> str:
        return self.pk


class Media(models.Model):
    # Fetched only by its unguessable id (and an inbound file's id travels only in events the caller may
    # see): workspace-level, like a file store.
    TENANT_WABA_PATH = WABA_SHARED

    class Source(models.TextChoices):
        UPLOAD = "upload"
        INBOUND = "inbound"

    id = PrefixedIdField(prefix="med")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="media")
    kind = models.CharField(max_length=10)  # image | video | audio | document | sticker
    file = models.FileField(upload_to="media/%Y/%m/", max_length=300)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    filename = models.CharField(max_length=255, blank=True, default="")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.UPLOAD)
    meta_media_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "media"


class MediaUpload(models.Model):
    """Meta's media id for a file, per sending number (media must be uploaded on the number that sends)."""

    media = models.ForeignKey(Media, on_delete=models.CASCADE, related_name="uploads")
    phone_number = models.ForeignKey("wabas.PhoneNumber", on_delete=models.CASCADE, related_name="+")
    meta_media_id = models.CharField(max_length=64)
    uploaded_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["media", "phone_number"], name="uniq_media_upload")]


class Message(models.Model):
    TENANT_WABA_PATH = "phone_number__waba_id"

    class Direction(models.TextChoices):
        INBOUND = "inbound"
        OUTBOUND = "outbound"

    class Channel(models.TextChoices):
        WHATSAPP = "whatsapp"
        SMS = "sms"
        MESSENGER = "messenger"
        INSTAGRAM = "instagram"
        EMAIL = "email"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        QUEUED = "queued"
        SENDING = "sending"  # claimed by a dispatcher (lease in claimed_until)
        SENT = "sent"
        DELIVERED = "delivered"
        READ = "read"
        FAILED = "failed"
        CANCELED = "canceled"
        RECEIVED = "received"  # inbound

    id = PrefixedIdField(prefix="msg")
    # db_index=False where a composite or partial index in Meta leads with the column (see there).
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="messages",
                                  db_index=False)
    conversation = models.ForeignKey(Conversation, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="messages", db_index=False)
    contact = models.ForeignKey("contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="messages")
    phone_number = models.ForeignKey("wabas.PhoneNumber", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="messages")
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.OUTBOUND)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WHATSAPP)
    social_account = models.ForeignKey("wabas.SocialAccount", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="messages", db_index=False)
    social_tag = models.CharField(max_length=40, blank=True, default="")  # Messenger / Instagram message tag
    type = models.CharField(max_length=20)
    # E.164, or the recipient's BSUID (Meta's `recipient`) when the contact has no phone.
    to_phone = models.CharField(max_length=170, blank=True, default="")
    content = models.JSONField(default=dict)  # the normalised request (outbound) or Meta's object (inbound)
    body = models.TextField(blank=True, default="")  # the text a person sees (templates rendered)
    media = models.ForeignKey(Media, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              db_index=False)
    template = models.ForeignKey("message_templates.MessageTemplate", null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    template_category = models.CharField(max_length=20, blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    provider_message_id = models.CharField(max_length=255, null=True, blank=True)
    client_reference = models.CharField(max_length=255, blank=True, default="")
    campaign_id = models.CharField(max_length=40, blank=True, default="")  # campaigns sit above this app
    sent_by = models.CharField(max_length=20, default="api")  # api | user | campaign | auto_reply | customer
    sent_by_user = models.ForeignKey("core.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                     db_index=False)
    api_key_id = models.CharField(max_length=40, blank=True, default="")
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                 db_index=False)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    upstream_code = models.IntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Times Meta held the message back (131049, the per-user marketing limit) and Reach queued it again.
    holds = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, default="")  # which dispatcher batch holds it
    expires_at = models.DateTimeField(null=True, blank=True)
    cost_estimate = models.DecimalField(max_digits=12, decimal_places=4, default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    pricing = models.JSONField(default=dict, blank=True)
    fallback = models.JSONField(default=dict, blank=True)
    fallback_message = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                         db_index=False)
    # The other way: the WhatsApp message this SMS stands in for (at most one SMS per message).
    fallback_for = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # fallback.after = undelivered: when the SMS goes if WhatsApp has not delivered by then.
    fallback_due_at = models.DateTimeField(null=True, blank=True)
    # SMS only: the segments sent (GSM-7 / UCS-2 count, or the gateway's), and the gateway's own price per
    # segment once it reports one (billing charges sms_segments x sms_price_per_segment: message_charge_sms).
    sms_segments = models.PositiveSmallIntegerField(null=True, blank=True)
    sms_price_per_segment = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    sms_price_currency = models.CharField(max_length=3, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "provider_message_id"],
                                    condition=Q(provider_message_id__isnull=False), name="uniq_msg_provider_id"),
            models.UniqueConstraint(fields=["fallback_for"], condition=Q(fallback_for__isnull=False),
                                    name="uniq_msg_one_fallback"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="queued"), name="msg_queued_due"),
            models.Index(fields=["phone_number", "campaign_id", "next_attempt_at"], condition=Q(status="queued"),
                         name="msg_number_queued_due"),
            models.Index(fields=["expires_at"], condition=Q(status="queued"), name="msg_queued_expiry"),
            models.Index(fields=["scheduled_at"], condition=Q(status="scheduled"), name="msg_scheduled_due"),
            models.Index(fields=["claimed_until"], condition=Q(status="sending"), name="msg_sending_lease"),
            models.Index(fields=["provider_message_id"], name="msg_provider_id"),
            models.Index(fields=["fallback_due_at"], condition=Q(fallback_due_at__isnull=False, fallback_message__isnull=True),
                         name="msg_fallback_due"),
            models.Index(fields=["conversation", "-created_at"], name="msg_conversation_created"),
            models.Index(fields=["workspace", "client_reference"], name="msg_ws_client_ref"),
            models.Index(fields=["workspace", "campaign_id", "status"], name="msg_ws_campaign_status"),
            models.Index(fields=["workspace", "status", "-created_at"], name="msg_ws_status_created"),
            models.Index(fields=["workspace", "created_at"], name="msg_ws_created"),  # reports' hour recompute
            # Foreign keys that are empty on most messages: only the rows that have one are indexed (a send
            # writes every index of the table; on PostgreSQL Django's default FK index is two, with _like).
            *[models.Index(fields=[f], condition=Q(**{f"{f}__isnull": False}), name=f"msg_{f}")
              for f in ("social_account", "media", "sent_by_user", "reply_to", "fallback_message")],
        ]

    def __str__(self) -> str:
        return self.pk


class MessageAttempt(models.Model):
    class Outcome(models.TextChoices):
        ACCEPTED = "accepted"
        RETRYABLE = "retryable"
        TERMINAL = "terminal"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True, default="")
    upstream_code = models.IntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True, default="")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "number"], name="uniq_msg_attempt")]


# --- Inbox -----------------------------------------------------------------------------------


class ConversationNote(models.Model):
    TENANT_WABA_PATH = "conversation__phone_number__waba_id"
    """A private note agents leave on a conversation; never sent to the customer."""

    id = PrefixedIdField(prefix="note")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey("core.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["conversation", "-created_at"], name="note_conversation_created")]


class CannedResponse(models.Model):
    TENANT_WABA_PATH = WABA_SHARED
    """A saved reply an agent inserts by typing `/shortcut` in the composer."""

    id = PrefixedIdField(prefix="cr")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    shortcut = models.SlugField(max_length=64)
    title = models.CharField(max_length=200, blank=True, default="")
    body = models.TextField()
    created_by = models.ForeignKey("core.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "shortcut"], name="uniq_canned_shortcut")]

    def __str__(self) -> str:
        return f"/{self.shortcut}"


class AutoReplySettings(models.Model):
    TENANT_WABA_PATH = WABA_SHARED
    """Per-workspace auto-reply knobs: the cooldown and the business hours out-of-office uses.

    business_hours: {"mon": [["09:00", "17:30"]], "tue": [...], ...}; a missing day is closed.
    holidays: ["2026-12-25", ...] (dates in `timezone`), closed all day."""

    workspace = models.OneToOneField("core.Workspace", on_delete=models.CASCADE, related_name="auto_reply_settings")
    cooldown_seconds = models.PositiveIntegerField(default=3600)
    timezone = models.CharField(max_length=64, default="UTC")
    business_hours = models.JSONField(default=dict, blank=True)
    holidays = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "auto-reply settings"


class AutoReplyRule(models.Model):
    TENANT_WABA_PATH = WABA_SHARED
    class Kind(models.TextChoices):
        WELCOME = "welcome"
        OUT_OF_OFFICE = "out_of_office"
        KEYWORD = "keyword"

    class Match(models.TextChoices):
        EXACT = "exact"
        CONTAINS = "contains"

    id = PrefixedIdField(prefix="arr")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="auto_reply_rules")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=200, blank=True, default="")
    enabled = models.BooleanField(default=True)
    # Keyword rules: the words (matched case-insensitively), how, and the language they belong to
    # (blank = any; otherwise only for contacts whose custom_fields.language starts with it).
    keywords = models.JSONField(default=list, blank=True)
    match = models.CharField(max_length=10, choices=Match.choices, default=Match.CONTAINS)
    language = models.CharField(max_length=15, blank=True, default="")
    reply_text = models.TextField()
    priority = models.PositiveSmallIntegerField(default=100)  # lower wins
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "enabled", "priority"], name="autoreply_ws_enabled")]

    def __str__(self) -> str:
        return self.name or f"{self.kind} {self.pk}"


# --- Organising the inbox: labels, teams, saved views, presence --------------------------------------------


class Label(models.Model):
    """A conversation label (colour-coded), per workspace (live and sandbox each have their own)."""

    TENANT_WABA_PATH = WABA_SHARED  # labels are workspace configuration every key sees

    id = PrefixedIdField(prefix="lbl")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=50)
    color = models.CharField(max_length=7, default="#6941c6")  # #rrggbb
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="uniq_label_name")]

    def __str__(self) -> str:
        return self.name


class Team(models.Model):
    """Agents who share conversations. auto_assign: new customer conversations of the team go round-robin to
    its online members, the least loaded first, none above max_open_per_agent (0: no cap). inbound_default:
    the team every new customer conversation of the workspace joins."""

    TENANT_WABA_PATH = WABA_SHARED  # teams are workspace configuration

    id = PrefixedIdField(prefix="team")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    members = models.ManyToManyField("core.User", blank=True, related_name="+")
    auto_assign = models.BooleanField(default=False)
    max_open_per_agent = models.PositiveIntegerField(default=0)
    inbound_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="uniq_team_name"),
            models.UniqueConstraint(fields=["workspace"], condition=Q(inbound_default=True),
                                    name="uniq_team_inbound_default"),
        ]

    def __str__(self) -> str:
        return self.name


class SavedView(models.Model):
    """A user's named set of list filters (state, assignee, label, team, sort, needs_reply, q)."""

    TENANT_WABA_PATH = WABA_SHARED  # a user's filters, not traffic

    id = PrefixedIdField(prefix="view")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey("core.User", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=80)
    filters = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user", "name"], name="uniq_saved_view")]


class AgentPresence(models.Model):
    """An agent's availability in a (live) workspace: online while their inbox heartbeats, unless they chose
    away. last_assigned_at breaks ties in round-robin assignment."""

    TENANT_WABA_PATH = WABA_SHARED  # an agent's availability, not traffic

    class Status(models.TextChoices):
        ONLINE = "online"
        AWAY = "away"

    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey("core.User", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ONLINE)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="uniq_agent_presence")]
