from django.db import models
from django.db.models import Q

from apps.core.ids import PrefixedIdField


class Contact(models.Model):
    """A customer. Keyed by E.164 phone (wa_id) or, when Meta withholds the phone, by BSUID."""

    # The WABA binding (apps.core.scoping) is registered by the conversations app: a contact belongs to
    # the WABAs it has traffic on and to the one it was created through (created_waba_id).
    id = PrefixedIdField(prefix="con")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="contacts")
    phone = models.CharField(max_length=16, null=True, blank=True)
    wa_id = models.CharField(max_length=32, blank=True, default="")
    bsuid = models.CharField(max_length=160, null=True, blank=True)
    # Meta's parent_user_id (an enterprise-level BSUID, `US.ENT.…`) and the customer's WhatsApp username.
    parent_bsuid = models.CharField(max_length=160, blank=True, default="")
    username = models.CharField(max_length=64, blank=True, default="")
    # Blocked with Meta's block_users API on the workspace's numbers: no message goes to them.
    blocked_at = models.DateTimeField(null=True, blank=True)
    name = models.CharField(max_length=255, blank=True, default="")
    email = models.EmailField(max_length=254, blank=True, default="")
    external_id = models.CharField(max_length=255, blank=True, default="")
    custom_fields = models.JSONField(default=dict, blank=True)
    # Cache of the consent ledger's latest row, written in the same transaction as the row: True (opt_in),
    # False (opt_out), None (no row: the contact never said; marketing needs an opt-in row when the
    # workspace's marketing_requires_opt_in is on, see conversations.policy.consent_refuses).
    opted_in = models.BooleanField(null=True, default=None)
    consent_updated_at = models.DateTimeField(null=True, blank=True)
    # Start of the customer service window: the contact's last inbound message or call.
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    # The WABA of the bound key (or import) that created it ("" when created unbound or by traffic).
    created_waba_id = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "phone"], condition=Q(phone__isnull=False),
                                    name="uniq_contact_phone"),
            models.UniqueConstraint(fields=["workspace", "bsuid"], condition=Q(bsuid__isnull=False),
                                    name="uniq_contact_bsuid"),
        ]
        indexes = [
            models.Index(fields=["workspace", "external_id"], name="contact_ws_external"),
            models.Index(fields=["workspace", "opted_in"], name="contact_ws_opted_in"),
            # The list is keyset-paginated on the id within one workspace.
            models.Index(fields=["workspace", "id"], name="contact_ws_id"),
            # Name/phone search uses trigram GIN indexes on PostgreSQL (migration 0004).
        ]

    def __str__(self) -> str:
        return self.name or self.phone or self.bsuid or self.pk


class SocialIdentity(models.Model):
    """A customer as one Page or Instagram account knows them: Meta's page-scoped id (PSID) or Instagram-
    scoped id (IGSID). The ids are per account, so the identity is keyed by (account, user_id)."""

    TENANT_WABA_PATH = "account__waba_id"

    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey("wabas.SocialAccount", on_delete=models.CASCADE, related_name="identities")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="social_identities")
    user_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "user_id"], name="uniq_social_identity")]


class ContactTag(models.Model):
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="tag_rows")
    name = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "name"], name="uniq_contact_tag")]
        indexes = [models.Index(fields=["workspace", "name", "contact"], name="contacttag_ws_name")]


class LedgerImmutable(Exception):
    """Raised on any attempt to update or delete a consent ledger row through the ORM."""


class ConsentRecordQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise LedgerImmutable("Consent records are append-only; append a new row instead.")

    def delete(self):
        raise LedgerImmutable("Consent records are append-only; they cannot be deleted.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise LedgerImmutable("Consent records are append-only; append a new row instead.")

    def update_or_create(self, *args, **kwargs):
        raise LedgerImmutable("Consent records are append-only; append a new row instead.")


class ConsentRecord(models.Model):
    """Append-only consent ledger. Rows are never updated or deleted: guarded here (ORM) and, on
    PostgreSQL, by a trigger (migration 0003). The only way out is erasing the contact itself
    (services.contact_delete), which removes the ledger with the person."""

    class Status(models.TextChoices):
        OPT_IN = "opt_in"
        OPT_OUT = "opt_out"

    class Source(models.TextChoices):
        API = "api"
        KEYWORD = "keyword"
        IMPORT = "import"
        ADMIN = "admin"
        INBOX = "inbox"
        META_PREFERENCES = "meta_user_preferences"

    id = PrefixedIdField(prefix="cst")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consents")
    status = models.CharField(max_length=10, choices=Status.choices)
    source = models.CharField(max_length=30, choices=Source.choices)
    note = models.TextField(blank=True, default="")
    inbound_message_id = models.CharField(max_length=40, blank=True, default="")
    api_key_id = models.CharField(max_length=40, blank=True, default="")
    user = models.ForeignKey("core.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ConsentRecordQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["contact", "-created_at"], name="consent_contact_created")]

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise LedgerImmutable("Consent records are append-only; append a new row instead.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerImmutable("Consent records are append-only; they cannot be deleted.")


class ContactImport(models.Model):
    """One CSV import: its progress and its report. Big files run in a Celery task; the admin page polls."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    TENANT_WABA_PATH = "waba_id"

    id = PrefixedIdField(prefix="imp")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    waba_id = models.CharField(max_length=40, blank=True, default="")  # the importing key's WABA binding
    api_key_id = models.CharField(max_length=40, blank=True, default="")  # the importing key (consent evidence)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    filename = models.CharField(max_length=255, blank=True, default="")
    file_path = models.CharField(max_length=500, blank=True, default="")
    total_bytes = models.BigIntegerField(default=0)
    processed_bytes = models.BigIntegerField(default=0)
    rows_seen = models.IntegerField(default=0)
    created_count = models.IntegerField(default=0)
    updated_count = models.IntegerField(default=0)
    rejected_count = models.IntegerField(default=0)
    rejected_rows = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey("core.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.filename or self.pk} ({self.status})"

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.total_bytes:
            return 0
        return min(99, int(self.processed_bytes * 100 / self.total_bytes))
