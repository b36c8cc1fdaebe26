"""Admin for us -> subscribers: subscriptions (flagged ones first), deliveries with their attempts.
Actions call services; nothing here decides anything."""

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from apps.core.errors import ApplicationError
from apps.core.events import event_types
from apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from apps.webhooks.services import outbound


def _event_label(name: str, description: str):
    return format_html('<span><span class="event-name">{}</span><span class="event-description">{}</span></span>',
                       name, description)


class WebhookSubscriptionForm(forms.ModelForm):
    """`events` as the registry's public types to tick, or "*" alone."""

    url = forms.URLField(max_length=2048, assume_scheme="https")  # webhook URLs are https (API.md)
    events = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookSubscription
        fields = ("url", "events", "description", "rate_limit_per_second", "enabled")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["events"].choices = [("*", _event_label("*", "every public event type, now and later"))] + [
            (t.name, _event_label(t.name, t.description)) for t in event_types(public=True)]

    def clean_events(self) -> list[str]:
        events = self.cleaned_data["events"]
        if "*" in events and len(events) > 1:
            raise forms.ValidationError('"*" already means every type: tick it alone.')
        return events if events == ["*"] else sorted(events)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    form = WebhookSubscriptionForm

    class Media:
        css = {"all": ("webhooks/admin.css",)}

    list_display = ("id", "url", "workspace", "enabled", "flag", "disabled_reason", "last_success_at",
                    "failing_since", "rate_limit_per_second", "created_at")
    list_filter = ("flagged", "enabled", "disabled_reason", "workspace__is_sandbox")
    search_fields = ("id", "url", "description", "workspace__slug")
    ordering = ("-flagged", "-created_at")
    readonly_fields = ("id", "workspace", "event_cursor", "last_success_at", "failing_since", "disabled_at",
                       "disabled_reason", "flagged", "previous_secret_expires_at", "deleted_at", "created_at",
                       "updated_at")
    fields = ("id", "workspace", "url", "events", "description", "rate_limit_per_second", "enabled", "flagged",
              "disabled_reason", "disabled_at", "last_success_at", "failing_since", "event_cursor",
              "previous_secret_expires_at", "deleted_at", "created_at", "updated_at")
    actions = ["enable", "disable", "send_test"]
    list_select_related = ("workspace",)

    def has_add_permission(self, request):
        return False  # created through the API, which shows the secret once

    @admin.display(description="flagged", boolean=True, ordering="flagged")
    def flag(self, obj):
        return obj.flagged

    @admin.action(description="Enable (clears the flag)")
    def enable(self, request, queryset):
        for sub in queryset.filter(deleted_at__isnull=True):
            outbound.subscription_set_enabled(subscription=sub, enabled=True)
        self.message_user(request, "Enabled.", messages.SUCCESS)

    @admin.action(description="Disable")
    def disable(self, request, queryset):
        for sub in queryset:
            outbound.subscription_set_enabled(subscription=sub, enabled=False)
        self.message_user(request, "Disabled.", messages.SUCCESS)

    @admin.action(description="Send a test event")
    def send_test(self, request, queryset):
        for sub in queryset.filter(deleted_at__isnull=True)[:20]:
            delivery = outbound.subscription_send_test(subscription=sub)
            level = messages.SUCCESS if delivery.status == WebhookDelivery.Status.SUCCEEDED else messages.WARNING
            self.message_user(request, f"{sub.id}: {delivery.status} "
                                       f"({delivery.last_status_code or delivery.last_error})", level)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "status_code", "latency_ms", "error", "request_id", "response_excerpt")
    readonly_fields = fields
    ordering = ("number",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "event_type", "subscription", "status", "attempt_count", "last_status_code",
                    "short_error", "next_attempt_at", "created_at")
    list_filter = ("status", "event_type", "workspace__is_sandbox", "last_status_code")
    search_fields = ("id", "event_id", "subscription__id", "subscription__url")
    ordering = ("-created_at",)
    readonly_fields = ("id", "workspace", "subscription", "event_id", "event_type", "event_sequence",
                       "event_created_at", "status", "attempt_count", "cycle_attempts", "next_attempt_at",
                       "claimed_until", "last_status_code", "last_error", "succeeded_at", "failed_at",
                       "payload_purged_at", "created_at", "payload")
    exclude = ("claim_token",)
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]
    list_select_related = ("subscription",)
    list_per_page = 50
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    @admin.display(description="last error")
    def short_error(self, obj):
        return format_html("<span title='{}'>{}</span>", obj.last_error, obj.last_error[:60])

    @admin.action(description="Redeliver (same webhook-id)")
    def redeliver(self, request, queryset):
        done = 0
        for delivery in queryset.select_related("subscription")[:1000]:
            try:
                outbound.delivery_redeliver(delivery=delivery)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{delivery.id}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{done} queued for redelivery.", messages.SUCCESS)
