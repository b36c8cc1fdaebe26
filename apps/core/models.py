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
    # The side (live or sandbox) this user last chose in the browser; None until they choose, when the inbox
    # opens on the side that has traffic (selectors.tenant_for_session).
    sandbox_preferred = models.BooleanField(null=True, blank=True, default=None)
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
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="events",
                                  db_index=False)  # uniq_event_sequence leads with it
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
    # audit_ws_created leads with the workspace; an API call has no user: only rows with one are indexed.
    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                  db_index=False)
    actor_user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   db_index=False)
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
        indexes = [models.Index(fields=["workspace", "-created_at"], name="audit_ws_created"),
                   models.Index(fields=["actor_user"], condition=models.Q(actor_user__isnull=False),
                                name="audit_actor_user")]

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


class UserToken(models.Model):
    """A per-user API token (`ut_…`, the mobile app's): acts on one workspace with the user's role there.
    Only the SHA-256 of the secret is stored; listed per user, revocable one by one."""

    id = PrefixedIdField(prefix="utk")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    device_name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=20)
    secret_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="utk_user_created")]

    def __str__(self) -> str:
        return f"{self.device_name} ({self.prefix}…)"


class Device(models.Model):
    """A push target of a user in a workspace (an FCM registration token)."""

    class Platform(models.TextChoices):
        ANDROID = "android"
        IOS = "ios"
        WEB = "web"

    id = PrefixedIdField(prefix="dev")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="devices")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    platform = models.CharField(max_length=10, choices=Platform.choices)
    push_token = models.CharField(max_length=4096)
    push_token_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "push_token_hash"], name="uniq_device_token")]


class PushPreference(models.Model):
    """What a user is pushed about in a workspace: inbound messages on conversations assigned to them
    (always, while enabled) and, when `unassigned` is on, on conversations nobody holds."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    enabled = models.BooleanField(default=True)
    unassigned = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "workspace"], name="uniq_push_preference")]
