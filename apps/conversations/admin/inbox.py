"""Admin for the inbox side: canned responses, auto-reply rules and their settings, notes.
Rule and settings forms validate through the same services as the API."""

from django import forms
from django.contrib import admin

from apps.conversations.models import AutoReplyRule, AutoReplySettings, CannedResponse, ConversationNote
from apps.core.errors import ValidationFailed


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    list_display = ("shortcut", "title", "workspace", "updated_at")
    list_filter = ("workspace",)
    search_fields = ("shortcut", "title", "body")
    readonly_fields = ("created_at", "updated_at")


class AutoReplyRuleForm(forms.ModelForm):
    class Meta:
        model = AutoReplyRule
        fields = ("workspace", "kind", "name", "enabled", "keywords", "match", "language", "reply_text", "priority")

    def clean(self):
        from apps.conversations.services.autoreplies import auto_reply_rule_validate

        cleaned = super().clean()
        rule = AutoReplyRule(**{k: v for k, v in cleaned.items() if k in {
            "kind", "keywords", "reply_text"}})
        try:
            auto_reply_rule_validate(rule=rule)
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.message)
        cleaned["keywords"] = rule.keywords
        return cleaned


@admin.register(AutoReplyRule)
class AutoReplyRuleAdmin(admin.ModelAdmin):
    form = AutoReplyRuleForm
    list_display = ("__str__", "kind", "enabled", "match", "language", "priority", "workspace")
    list_filter = ("kind", "enabled", "workspace")
    search_fields = ("name", "reply_text")
    readonly_fields = ("created_at", "updated_at")


class AutoReplySettingsForm(forms.ModelForm):
    class Meta:
        model = AutoReplySettings
        fields = ("workspace", "cooldown_seconds", "timezone", "business_hours", "holidays")
        help_texts = {"business_hours": 'e.g. {"mon": [["09:00", "17:30"]], "tue": [["09:00", "17:30"]]}',
                      "holidays": 'e.g. ["2026-12-25", "2027-01-01"]'}

    def clean(self):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from apps.conversations.services.autoreplies import check_business_hours

        cleaned = super().clean()
        try:
            ZoneInfo(cleaned.get("timezone") or "UTC")
            cleaned["business_hours"] = check_business_hours(cleaned.get("business_hours") or {})
        except (ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError("Unknown time zone.")
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.message)
        return cleaned


@admin.register(AutoReplySettings)
class AutoReplySettingsAdmin(admin.ModelAdmin):
    form = AutoReplySettingsForm
    list_display = ("workspace", "timezone", "cooldown_seconds", "updated_at")


@admin.register(ConversationNote)
class ConversationNoteAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "author", "created_at")
    readonly_fields = ("workspace", "conversation", "author", "body", "created_at")
    search_fields = ("body",)
