"""Admin for the messages side: messages with their attempts, and media. Read-mostly; actions call services."""

from django.contrib import admin, messages

from apps.conversations.models import Media, Message, MessageAttempt


class MessageAttemptInline(admin.TabularInline):
    model = MessageAttempt
    extra = 0
    can_delete = False
    fields = ("number", "outcome", "http_status", "error_code", "upstream_code", "latency_ms", "started_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "workspace", "direction", "channel", "type", "to_phone", "status", "attempts",
                    "error_code", "campaign_id", "created_at")
    list_filter = ("status", "direction", "channel", "type")
    search_fields = ("id", "to_phone", "provider_message_id", "client_reference", "campaign_id")
    readonly_fields = [f.name for f in Message._meta.fields]
    inlines = [MessageAttemptInline]
    actions = ["cancel_scheduled"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Cancel selected scheduled messages")
    def cancel_scheduled(self, request, queryset):
        from apps.conversations.services.sending import message_cancel
        from apps.core.errors import ApplicationError

        done = 0
        for message in queryset.filter(status=Message.Status.SCHEDULED).select_related("workspace"):
            try:
                message_cancel(workspace=message.workspace, message_id=message.pk)
                done += 1
            except ApplicationError:
                pass
        self.message_user(request, f"Canceled {done} message(s).", messages.SUCCESS)


@admin.register(Media)
class MediaAdmin(admin.ModelAdmin):
    list_display = ("id", "workspace", "kind", "content_type", "size", "source", "created_at")
    list_filter = ("kind", "source")
    search_fields = ("id", "sha256", "meta_media_id")
    readonly_fields = [f.name for f in Media._meta.fields]
