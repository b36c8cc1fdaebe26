from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models

from apps.core.ids import PrefixedIdField
from apps.core.scoping import WABA_SHARED

API_SCOPES = (
    "messages:send",
    "messages:read",
    "templates:read",
    "templates:write",
    "contacts:read",
    "contacts:write",
    "inbox:read",
    "inbox:write",
    "campaigns:read",
    "campaigns:write",
    "webhooks:manage",
    "reports:read",
    "billing:read",
)


class User(AbstractUser):
    """Custom user model from day one; membership in workspaces carries the role."""

    id = PrefixedIdField(prefix="usr")
    display_name = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return self.display_name or self.username


class Workspace(models.Model):
    """A tenant. Each live workspace has exactly one sandbox twin (`sandbox_of` points at the live one).

    Every tenant row points at one Workspace row, live or sandbox, so scoping by workspace also scopes
    by sandbox."""

    class Plan(models.TextChoices):
        FREE = "free"
        STANDARD = "standard"
        ENTERPRISE = "enterprise"

    id = PrefixedIdField(prefix="ws")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64)
    is_sandbox = models.BooleanField(default=False)
    sandbox_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="sandbox"
    )
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.STANDARD)
    settings = models.JSONField(default=dict, blank=True)
    # Last sequence number handed to an event of this workspace; bumped under a row lock.
    event_sequence = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["slug"], condition=models.Q(is_sandbox=False), name="uniq_live_slug"),
            models.CheckConstraint(
                condition=models.Q(is_sandbox=False, sandbox_of__isnull=True)
                | models.Q(is_sandbox=True, sandbox_of__isnull=False),
                name="sandbox_has_live_twin",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (sandbox)" if self.is_sandbox else self.name

    @property
    def live(self) -> Workspace:
        return self.sandbox_of if self.is_sandbox else self


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        AGENT = "agent"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="uniq_membership")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.workspace} ({self.role})"


class ApiKey(models.Model):
    """An API key. Only the SHA-256 of the secret is stored (keys carry 190 bits of entropy, so a fast
    hash is the right tool). The key belongs to the live workspace; `ak_test_` keys act on its sandbox."""

    id = PrefixedIdField(prefix="key")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    is_sandbox = models.BooleanField(default=False)
    prefix = models.CharField(max_length=20, help_text="First characters of the key, to recognise it")
    secret_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    waba_id = models.CharField(max_length=40, blank=True, default="", help_text="Bound WABA (waba_…), if any")
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Event(models.Model):
    """The event log (outbox). Appended inside the writer's transaction; read by the webhook
    dispatcher, the inbox stream and reports. Sequence is per workspace and strictly increasing."""

    id = PrefixedIdField(prefix="evt")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="events")
    sequence = models.BigIntegerField()
    type = models.CharField(max_length=64)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "sequence"], name="uniq_event_sequence")]
        ordering = ["workspace", "sequence"]

    def __str__(self) -> str:
        return f"{self.type} #{self.sequence}"


class AuditLog(models.Model):
    """Append-only record of every mutating API call and admin action."""

    id = PrefixedIdField(prefix="aud")
    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=200)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="audit_ws_created")]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"


class IdempotencyRecord(models.Model):
    TENANT_WABA_PATH = WABA_SHARED  # the keys of one workspace share one idempotency space

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight"
        COMPLETED = "completed"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=State.choices, default=State.IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)
    response_headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "key"], name="uniq_idempotency_key")]
