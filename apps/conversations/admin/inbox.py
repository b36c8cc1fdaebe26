"""Admin for the inbox side: canned responses, auto-reply rules and their settings, notes."""

from django.contrib import admin

from apps.conversations.models import AutoReplyRule, AutoReplySettings, CannedResponse, ConversationNote


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    list_display = ("shortcut", "title", "workspace", "updated_at")
    list_filter = ("workspace",)
    search_fields = ("shortcut", "title", "body")
    readonly_fields = ("created_at", "updated_at")


@admin.register(AutoReplyRule)
class AutoReplyRuleAdmin(admin.ModelAdmin):
    list_display = ("__str__", "kind", "enabled", "match", "language", "priority", "workspace")
    list_filter = ("kind", "enabled", "workspace")
    search_fields = ("name", "reply_text")
    readonly_fields = ("created_at", "updated_at")


@admin.register(AutoReplySettings)
class AutoReplySettingsAdmin(admin.ModelAdmin):
    list_display = ("workspace", "timezone", "cooldown_seconds", "updated_at")
    help_texts = {"business_hours": 'e.g. {"mon": [["09:00", "17:30"]], "tue": [["09:00", "17:30"]]}'}


@admin.register(ConversationNote)
class ConversationNoteAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "author", "created_at")
    readonly_fields = ("workspace", "conversation", "author", "body", "created_at")
    search_fields = ("body",)
