"""The typed answers of /api/v1/contacts… (API.md Contacts and consent)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field({"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 100,
                      "description": "Replaces the contact's tags."})
class TagsField(serializers.JSONField):
    """Checked by contacts.services.clean_tags (the one rule for tags)."""


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"},
                      "description": "String keys and values; shallow-merged on PATCH."})
class CustomFieldsField(serializers.JSONField):
    """Checked by contacts.services.clean_custom_fields."""


class ContactOut(serializers.Serializer):
    id = serializers.CharField()
    phone = serializers.CharField(allow_null=True, help_text="E.164")
    wa_id = serializers.CharField(allow_null=True)
    bsuid = serializers.CharField(allow_null=True, allow_blank=True,
                                  help_text="Meta's business-scoped user id (API.md Identity).")
    parent_bsuid = serializers.CharField(allow_null=True, help_text="The portfolio-level parent BSUID, if Meta sent one.")
    username = serializers.CharField(allow_null=True, help_text="The person's WhatsApp username, if any.")
    name = serializers.CharField(allow_blank=True)
    email = serializers.CharField(allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField())
    custom_fields = serializers.DictField(child=serializers.CharField(allow_blank=True))
    opted_in = serializers.BooleanField()
    blocked = serializers.BooleanField(help_text="Blocked through Meta's block_users; sends are refused.")
    blocked_at = serializers.DateTimeField(allow_null=True)
    external_id = serializers.CharField(allow_null=True)
    last_inbound_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class RejectedRowOut(serializers.Serializer):
    row = serializers.IntegerField()
    phone = serializers.CharField(allow_blank=True)
    reason = serializers.CharField()


class ImportReportOut(serializers.Serializer):
    """A finished synchronous import."""

    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    rejected = serializers.IntegerField()
    rejected_rows = RejectedRowOut(many=True)
    rejected_rows_truncated = serializers.BooleanField()


class ContactImportOut(serializers.Serializer):
    """An asynchronous import's progress."""

    id = serializers.CharField()
    status = serializers.CharField()
    filename = serializers.CharField(allow_blank=True)
    progress_percent = serializers.IntegerField()
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    rejected = serializers.IntegerField()
    rejected_rows = RejectedRowOut(many=True)
    error = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class ContactImportIn(serializers.Serializer):
    file = serializers.FileField(help_text="CSV: phone,name,email,tags,… (extra columns become custom fields).")
    async_ = serializers.BooleanField(required=False, help_text="Run in the background (202); large files always do.")

    def get_fields(self):
        fields = super().get_fields()
        fields["async"] = fields.pop("async_")
        return fields


class ConsentOut(serializers.Serializer):
    id = serializers.CharField()
    contact_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["opt_in", "opt_out"])
    source = serializers.CharField()
    note = serializers.CharField(allow_blank=True)
    inbound_message_id = serializers.CharField(allow_null=True)
    api_key_id = serializers.CharField(allow_null=True)
    user_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
