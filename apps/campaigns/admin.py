"""Admin: audiences, and a campaign page with live progress (bar + chart of sends and deliveries, polled
from a JSON view), the preflight dry run and start/pause/resume/cancel buttons that call the services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.urls import path, reverse

from apps.campaigns import selectors, services
from apps.campaigns.models import Audience, Campaign
from apps.core.errors import ApplicationError


@admin.register(Audience)
class AudienceAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "workspace", "size", "created_at")
    list_filter = ("kind",)
    search_fields = ("id", "name")
    readonly_fields = ("id", "workspace", "kind", "filter", "import_report", "size", "created_at")
    fields = ("id", "name", "workspace", "kind", "filter", "import_report", "size", "created_at")

    def has_add_permission(self, request):
        return False  # audiences are built through the API (filters are validated by the service)

    @admin.display(description="size (live)")
    def size(self, obj):
        return selectors.audience_size(workspace=obj.workspace, audience=obj)


def _iso(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "workspace", "template_name", "phone_number", "schedule_at", "started_at",
                    "completed_at")
    list_filter = ("status",)
    search_fields = ("id", "name", "template_name")
    change_form_template = "admin/campaigns/campaign/change_form.html"
    readonly_fields = ("id", "workspace", "audience", "phone_number", "template", "template_name",
                       "template_language", "variables", "status", "schedule_at", "valid_until", "started_at",
                       "materialized_at", "paused_at", "pause_reason", "auto_paused", "completed_at",
                       "canceled_at", "created_by", "created_at")
    fieldsets = (
        (None, {"fields": ("id", "name", "workspace", "status", "pause_reason")}),
        ("What and to whom", {"fields": ("template", "template_name", "template_language", "variables", "audience",
                                         "phone_number")}),
        ("When", {"fields": ("schedule_at", "valid_until", "started_at", "materialized_at", "paused_at",
                             "auto_paused", "completed_at", "canceled_at", "created_by", "created_at")}),
    )

    def has_add_permission(self, request):
        return False  # campaigns are created through the API, which validates template, sender and variables

    def has_delete_permission(self, request, obj=None):
        # Only drafts: a launched campaign's recipients are the record of who was messaged.
        return super().has_delete_permission(request, obj) and (obj is None or obj.status == Campaign.Status.DRAFT)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("workspace", "phone_number", "template")

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<str:object_id>/progress.json", wrap(self.progress_view), name="campaigns_campaign_progress"),
            path("<str:object_id>/preflight.json", wrap(self.preflight_view), name="campaigns_campaign_preflight"),
            path("<str:object_id>/action/<str:action>/", wrap(self.action_view), name="campaigns_campaign_action"),
            *super().get_urls(),
        ]

    def _campaign(self, request, object_id) -> Campaign:
        campaign = self.get_object(request, object_id)
        if campaign is None or not self.has_view_permission(request, campaign):
            raise Http404
        return campaign

    def progress_view(self, request, object_id):
        campaign = self._campaign(request, object_id)
        stats = selectors.campaign_stats(campaign=campaign)
        series = selectors.campaign_series(campaign=campaign)
        series["started_at"] = _iso(campaign.started_at)  # null until launched: the page hides the chart
        return JsonResponse({
            "status": campaign.status, "pause_reason": campaign.pause_reason, "auto_paused": campaign.auto_paused,
            "started_at": _iso(campaign.started_at), "completed_at": _iso(campaign.completed_at),
            "schedule_at": _iso(campaign.schedule_at), "valid_until": _iso(campaign.valid_until),
            "stats": stats, "series": series,
        })

    def preflight_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = self._campaign(request, object_id)
        result = services.campaign_preflight(campaign=campaign)
        return JsonResponse(result, encoder=DjangoJSONEncoder)

    def action_view(self, request, object_id, action):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = self._campaign(request, object_id)
        if not self.has_change_permission(request, campaign):
            raise Http404
        fn = {"start": services.campaign_start, "pause": services.campaign_pause,
              "resume": services.campaign_resume, "cancel": services.campaign_cancel}.get(action)
        if fn is None:
            raise Http404
        try:
            fn(campaign=campaign)
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
        else:
            self.log_change(request, campaign, f"{action} from the admin")
            self.message_user(request, f"Campaign {action} done.", level=messages.SUCCESS)
        return redirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        campaign = self.get_object(request, object_id)
        if campaign is not None:
            allowed = {"start": ("draft", "scheduled"), "pause": ("running",), "resume": ("paused",),
                       "cancel": ("draft", "scheduled", "running", "paused")}
            extra_context["campaign_actions"] = [a for a, states in allowed.items() if campaign.status in states]
            extra_context["campaign_obj"] = campaign
        return super().change_view(request, object_id, form_url, extra_context=extra_context)
