"""Admin for Meta -> us: the stored webhook queue, read-only, with a reprocess action."""

from django.contrib import admin, messages
from django.db.models import Q
from django.utils.html import format_html

from apps.webhooks.models import InboundWebhook
from apps.webhooks.services import inbound


class _ProcessedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("pending", "Pending"), ("failing", "Failing"), ("processed", "Processed")]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(processed_at__isnull=True)
        if self.value() == "failing":
            return queryset.filter(processed_at__isnull=True).exclude(Q(last_error="") | Q(last_error__startswith="deferred"))
        if self.value() == "processed":
            return queryset.filter(processed_at__isnull=False)
        return queryset


@admin.register(InboundWebhook)
class InboundWebhookAdmin(admin.ModelAdmin):
    list_display = ("id", "source", "received_at", "available_at", "processed_at", "attempts", "short_error")
    list_filter = (_ProcessedFilter, "source")
    search_fields = ("id", "dedupe_key")
    ordering = ("-received_at",)
    readonly_fields = ("id", "dedupe_key", "source", "received_at", "available_at", "processed_at", "claimed_until",
                       "attempts", "last_error", "summary", "payload")
    exclude = ("body",)
    actions = ["reprocess"]
    list_per_page = 50
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    @admin.display(description="last error")
    def short_error(self, obj):
        return (obj.last_error or "")[:120]

    @admin.display(description="payload")
    def payload(self, obj):
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", bytes(obj.body).decode(errors="replace")[:20000])

    @admin.action(description="Reprocess the selected webhooks (idempotent)")
    def reprocess(self, request, queryset):
        counts: dict[str, int] = {}
        for webhook_id in queryset.values_list("pk", flat=True)[:500]:
            status = inbound.inbound_webhook_reprocess(webhook_id=webhook_id).status
            counts[status] = counts.get(status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing"
        self.message_user(request, f"Reprocessed: {summary}.", messages.SUCCESS)
