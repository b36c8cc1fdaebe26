from django.contrib import admin, messages

from apps.core.errors import ApplicationError
from apps.message_templates.models import MessageTemplate, TemplateStatusChange
from apps.message_templates.services import template_sync


class TemplateStatusChangeInline(admin.TabularInline):
    model = TemplateStatusChange
    extra = 0
    can_delete = False
    fields = ("created_at", "from_status", "to_status", "reason")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "language", "category", "status", "quality_score", "waba", "workspace", "updated_at")
    list_filter = ("status", "category", "language")
    search_fields = ("name", "meta_template_id")
    readonly_fields = ("id", "meta_template_id", "status", "rejection_reason", "quality_score", "created_at",
                       "updated_at")
    inlines = [TemplateStatusChangeInline]
    actions = ["sync_from_meta"]

    @admin.action(description="Sync the selected templates' WABAs from Meta")
    def sync_from_meta(self, request, queryset):
        wabas = {t.waba for t in queryset.select_related("waba")}
        for waba in wabas:
            try:
                counts = template_sync(waba=waba)
            except ApplicationError as exc:
                self.message_user(request, f"{waba}: {exc.message}", level=messages.ERROR)
                continue
            self.message_user(request, f"{waba}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
