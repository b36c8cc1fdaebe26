from django.db import models

from apps.core.ids import PrefixedIdField


class MessageTemplate(models.Model):
    """One (WABA, name, language) template as Meta knows it."""

    TENANT_WABA_PATH = "waba_id"

    class Category(models.TextChoices):
        MARKETING = "MARKETING"
        UTILITY = "UTILITY"
        AUTHENTICATION = "AUTHENTICATION"

    class ParameterFormat(models.TextChoices):
        POSITIONAL = "POSITIONAL"
        NAMED = "NAMED"

    class Status(models.TextChoices):
        PENDING = "PENDING"
        APPROVED = "APPROVED"
        REJECTED = "REJECTED"
        PAUSED = "PAUSED"
        DISABLED = "DISABLED"
        IN_APPEAL = "IN_APPEAL"
        FLAGGED = "FLAGGED"
        REINSTATED = "REINSTATED"
        DELETED = "DELETED"
        PENDING_DELETION = "PENDING_DELETION"
        ARCHIVED = "ARCHIVED"
        UNARCHIVED = "UNARCHIVED"
        LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
        LOCKED = "LOCKED"

    id = PrefixedIdField(prefix="tpl")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="message_templates")
    waba = models.ForeignKey("wabas.Waba", on_delete=models.CASCADE, related_name="templates")
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=15)
    category = models.CharField(max_length=20, choices=Category.choices)
    parameter_format = models.CharField(max_length=12, choices=ParameterFormat.choices,
                                        default=ParameterFormat.POSITIONAL)
    components = models.JSONField(default=list)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    rejection_reason = models.TextField(blank=True, default="")
    quality_score = models.CharField(max_length=20, blank=True, default="")
    meta_template_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["waba", "name", "language"], name="uniq_template_lang")]
        indexes = [models.Index(fields=["workspace", "status", "category"], name="template_ws_status")]

    def __str__(self) -> str:
        return f"{self.name} [{self.language}]"


class TemplateStatusChange(models.Model):
    template = models.ForeignKey(MessageTemplate, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
