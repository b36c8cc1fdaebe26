"""Audiences and campaigns (API.md "Audiences and campaigns"). Views parse, call one service or selector, render."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers
from rest_framework.response import Response

from apps.campaigns import selectors, services
from apps.campaigns.models import Audience, Campaign
from apps.core.api.base import ApiView
from apps.core.errors import PayloadTooLarge, ValidationFailed

READ, WRITE = "campaigns:read", "campaigns:write"


def _ts(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def audience_out(audience: Audience, *, size: int | None = None, preview: list | None = None) -> dict:
    out = {
        "id": audience.pk, "name": audience.name, "kind": audience.kind, "filter": audience.filter,
        "created_at": _ts(audience.created_at),
    }
    if audience.kind == Audience.Kind.LIST:
        out["import"] = audience.import_report
    if size is not None:
        out["size"] = size
    if preview is not None:
        out["preview"] = [
            {"id": c.pk, "phone": c.phone, "name": c.name, "opted_in": c.opted_in} for c in preview
        ]
    return out


def campaign_out(campaign: Campaign, stats: dict | None) -> dict:
    return {
        "id": campaign.pk, "name": campaign.name, "status": campaign.status,
        "template": {"name": campaign.template_name, "language": campaign.template_language,
                     "category": campaign.template.category},
        "audience_id": campaign.audience_id, "phone_number_id": campaign.phone_number_id,
        "variables": campaign.variables,
        "schedule_at": _ts(campaign.schedule_at), "valid_until": _ts(campaign.valid_until),
        "started_at": _ts(campaign.started_at), "paused_at": _ts(campaign.paused_at),
        "pause_reason": campaign.pause_reason or None, "auto_paused": campaign.auto_paused,
        "completed_at": _ts(campaign.completed_at), "canceled_at": _ts(campaign.canceled_at),
        "stats": stats, "created_at": _ts(campaign.created_at),
    }


class AudienceIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    filter = serializers.JSONField(required=False, default=dict)


class AudienceListView(ApiView):
    """Audiences. POST JSON `{"name", "filter": {"tags_any", "tags_all", "custom_fields": {k: v}, "opted_in"}}`
    for a live filter, or multipart with `file` (CSV: a `phone` column and optional `name`, or one phone per
    line) and `name` for a fixed list; unknown phones become contacts, rejected rows are reported in `import`."""

    scopes = {"GET": READ, "POST": WRITE}
    InputSerializer = AudienceIn

    def get(self, request):
        return self.paginated(self.scoped(Audience), audience_out)

    def post(self, request):
        upload = request.FILES.get("file") if hasattr(request, "FILES") else None
        if upload is not None:
            if upload.size > settings.API_MAX_UPLOAD_BYTES:
                raise PayloadTooLarge()
            audience = services.audience_create_from_csv(
                workspace=self.tenant.workspace, name=request.data.get("name") or upload.name or "",
                data=upload.read(),
            )
        else:
            if (request.content_type or "").startswith("multipart/"):
                raise ValidationFailed("Upload the CSV as the `file` part.", field="file")
            data = AudienceIn(data=request.data)
            data.is_valid(raise_exception=True)
            audience = services.audience_create(workspace=self.tenant.workspace, name=data.validated_data["name"],
                                                filter=data.validated_data.get("filter"))
        self.audit_target = ("audience", audience.pk)
        ws = self.tenant.workspace
        return Response(audience_out(audience, size=selectors.audience_size(workspace=ws, audience=audience),
                                     preview=selectors.audience_preview(workspace=ws, audience=audience)),
                        status=201)


class AudienceDetailView(ApiView):
    scopes = {"GET": READ}

    def get(self, request, pk: str):
        audience = self.get_scoped(Audience, pk)
        ws = self.tenant.workspace
        return Response(audience_out(audience, size=selectors.audience_size(workspace=ws, audience=audience),
                                     preview=selectors.audience_preview(workspace=ws, audience=audience)))


class CampaignIn(serializers.Serializer):
    class TemplateIn(serializers.Serializer):
        name = serializers.CharField(max_length=512)
        language = serializers.CharField(max_length=15)

    name = serializers.CharField(max_length=200)
    template = TemplateIn()
    audience_id = serializers.CharField(max_length=40)
    phone_number_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    variables = serializers.JSONField(required=False)
    schedule_at = serializers.DateTimeField(required=False, allow_null=True)
    valid_until = serializers.DateTimeField(required=False, allow_null=True)


def _campaigns(view: ApiView):
    return view.scoped(Campaign).select_related("template")


class CampaignListView(ApiView):
    """Campaigns. `variables` maps each template placeholder ("1".."n", or the names of a named template) to
    text with contact fields: `{{contact.name}}`, `{{contact.first_name}}`, `{{contact.phone}}`,
    `{{contact.email}}`, `{{contact.external_id}}`, `{{contact.custom_fields.KEY}}`; a default after a pipe,
    `{{contact.name|there}}`, is used when the value is blank. A recipient whose variable renders empty with no
    default is skipped (`skipped_missing_variable`). No `schedule_at`: draft; with it: scheduled.
    `valid_until`: recipients not yet sent by then expire instead of going out late."""

    scopes = {"GET": READ, "POST": WRITE}
    InputSerializer = CampaignIn

    def get(self, request):
        qs = _campaigns(self)
        if request.query_params.get("status"):
            qs = qs.filter(status=request.query_params["status"])
        response = self.paginated(qs, lambda c: c)
        items = response.data["data"]
        stats = selectors.campaigns_stats(campaign_ids=[c.pk for c in items])
        response.data["data"] = [campaign_out(c, stats[c.pk]) for c in items]
        return response

    def post(self, request):
        data = CampaignIn(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = services.campaign_create(tenant=self.tenant, data=data.validated_data)
        self.audit_target = ("campaign", campaign.pk)
        return Response(campaign_out(campaign, selectors.campaign_stats(campaign=campaign)), status=201)


class CampaignDetailView(ApiView):
    scopes = {"GET": READ}

    def get(self, request, pk: str):
        campaign = self.get_scoped(_campaigns(self), pk)
        out = campaign_out(campaign, selectors.campaign_stats(campaign=campaign))
        out["failures_by_reason"] = selectors.campaign_failures_by_reason(campaign=campaign)
        return Response(out)


class CampaignActionView(ApiView):
    scopes = {"POST": WRITE}
    action_name = ""

    def post(self, request, pk: str):
        campaign = self.get_scoped(_campaigns(self), pk)
        self.audit_target = ("campaign", campaign.pk)
        action = {
            "start": services.campaign_start, "pause": services.campaign_pause,
            "resume": services.campaign_resume, "cancel": services.campaign_cancel,
        }[self.action_name]
        campaign = action(campaign=campaign)
        return Response(campaign_out(campaign, selectors.campaign_stats(campaign=campaign)))


class CampaignPreflightView(ApiView):
    # A dry run writes nothing, but it is part of preparing a send: campaigns:write like the launch it precedes.
    scopes = {"POST": WRITE}

    def post(self, request, pk: str):
        campaign = self.get_scoped(_campaigns(self), pk)
        result = services.campaign_preflight(campaign=campaign)
        result["estimated_finish_at"] = _ts(result["estimated_finish_at"])
        return Response(result)
