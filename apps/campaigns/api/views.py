"""Audiences and campaigns (API.md "Audiences and campaigns"). Views parse, call one service or selector, render."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from apps.campaigns import selectors, services
from apps.campaigns.models import Audience, Campaign
from apps.core.api.base import ApiView
from apps.core.api.docs import PAGE_PARAMETERS, api_doc, paginated, query
from apps.core.api.parsers import StrictJSONParser as JSONParser
from apps.core.api.parsers import StrictMultiPartParser as MultiPartParser
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
            {"id": c.pk, "phone": c.phone, "name": c.name, "opted_in": c.opted_in is True} for c in preview
        ]
    return out


def campaign_out(campaign: Campaign, stats: dict | None) -> dict:
    return {
        "id": campaign.pk, "name": campaign.name, "status": campaign.status,
        "template": {"name": campaign.template_name, "language": campaign.template_language,
                     "category": campaign.template.category},
        "audience_id": campaign.audience_id, "phone_number_id": campaign.phone_number_id,
        "variables": campaign.variables, "components": campaign.components,
        "schedule_at": _ts(campaign.schedule_at), "valid_until": _ts(campaign.valid_until),
        "started_at": _ts(campaign.started_at), "paused_at": _ts(campaign.paused_at),
        "pause_reason": campaign.pause_reason or None, "auto_paused": campaign.auto_paused,
        "completed_at": _ts(campaign.completed_at), "canceled_at": _ts(campaign.canceled_at),
        "stats": stats, "created_at": _ts(campaign.created_at),
    }


@extend_schema_field({"type": "object", "properties": {
    "tags_any": {"type": "array", "items": {"type": "string"}},
    "tags_all": {"type": "array", "items": {"type": "string"}},
    "custom_fields": {"type": "object", "additionalProperties": {"type": "string"}},
    "opted_in": {"type": "boolean"}}, "additionalProperties": False})
class AudienceFilterField(serializers.JSONField):
    """Checked by campaigns.services (the one rule for filters)."""


class AudienceIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    filter = AudienceFilterField(required=False, default=dict)


class AudienceUploadIn(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    file = serializers.FileField(help_text="CSV with a `phone` column (and optional `name`), or one phone per line.")


class AudiencePreviewOut(serializers.Serializer):
    id = serializers.CharField()
    phone = serializers.CharField(allow_null=True)
    name = serializers.CharField(allow_blank=True)
    opted_in = serializers.BooleanField()


class AudienceOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Audience.Kind.values)
    filter = serializers.JSONField(allow_null=True)
    created_at = serializers.DateTimeField()
    size = serializers.IntegerField(required=False)
    preview = AudiencePreviewOut(many=True, required=False)
    import_ = serializers.JSONField(required=False, allow_null=True, help_text="List audiences: the upload's report.")

    def get_fields(self):
        fields = super().get_fields()
        fields["import"] = fields.pop("import_")
        return fields


class CampaignTemplateOut(serializers.Serializer):
    name = serializers.CharField()
    language = serializers.CharField()
    category = serializers.CharField()


class FailureGroupOut(serializers.Serializer):
    reason = serializers.CharField(help_text="The failure table's stable reason.")
    count = serializers.IntegerField()
    description = serializers.CharField()
    action = serializers.CharField()
    upstream_codes = serializers.ListField(child=serializers.IntegerField(), help_text="Meta codes seen.")


class CampaignOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Campaign.Status.values)
    template = CampaignTemplateOut()
    audience_id = serializers.CharField()
    phone_number_id = serializers.CharField()
    variables = serializers.JSONField()
    components = serializers.ListField(child=serializers.DictField(), help_text="Meta-shaped components as "
                                       "given (strings may hold `{{contact.…}}`, filled per recipient).")
    schedule_at = serializers.DateTimeField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    paused_at = serializers.DateTimeField(allow_null=True)
    pause_reason = serializers.CharField(allow_null=True)
    auto_paused = serializers.BooleanField()
    completed_at = serializers.DateTimeField(allow_null=True)
    canceled_at = serializers.DateTimeField(allow_null=True)
    stats = serializers.DictField(child=serializers.IntegerField(), help_text="total, queued, sent, delivered, "
                                  "read, failed, skipped_opted_out, …")
    created_at = serializers.DateTimeField()


class PreflightTemplateOut(CampaignTemplateOut):
    status = serializers.CharField()


class CampaignPreflightOut(serializers.Serializer):
    campaign_id = serializers.CharField()
    audience_size = serializers.IntegerField()
    recipients = serializers.IntegerField(help_text="Who would get a message now.")
    skipped = serializers.DictField(child=serializers.IntegerField(), help_text="Count per skip reason.")
    skipped_total = serializers.IntegerField()
    template = PreflightTemplateOut()
    messaging_tier = serializers.CharField()
    tier_limit = serializers.IntegerField(allow_null=True)
    tier_headroom = serializers.IntegerField(allow_null=True)
    estimated_cost = serializers.CharField()
    currency = serializers.CharField()
    throughput_mps = serializers.IntegerField()
    estimated_seconds = serializers.FloatField(allow_null=True)
    estimated_finish_at = serializers.DateTimeField(allow_null=True)
    refused = serializers.DictField(child=serializers.CharField(), allow_null=True,
                                    help_text="{code, message} when a rule of the whole campaign refuses.")
    notes = serializers.ListField(child=serializers.CharField())


class AudienceListView(ApiView):
    """Audiences. POST JSON `{"name", "filter": {"tags_any", "tags_all", "custom_fields": {k: v}, "opted_in"}}`
    for a live filter, or multipart with `file` (CSV: a `phone` column and optional `name`, or one phone per
    line) and `name` for a fixed list; unknown phones become contacts, rejected rows are reported in `import`."""

    scopes = {"GET": READ, "POST": WRITE}
    InputSerializer = AudienceIn
    parser_classes = [JSONParser, MultiPartParser]

    @api_doc(operation_id="audiences_list", summary="List audiences", description="Audiences, newest first.",
             parameters=PAGE_PARAMETERS, responses={200: paginated(AudienceOut)})
    def get(self, request):
        return self.paginated(self.scoped(Audience), audience_out)

    @api_doc(operation_id="audiences_create", summary="Create an audience",
             description="JSON `{name, filter}` for a live filter over contacts (tags_any, tags_all, custom_fields, "
             "opted_in), or a multipart CSV upload (`file`, `name`) for a fixed list: unknown phones become "
             "contacts and rejected rows are reported in `import`.",
             request={"application/json": AudienceIn, "multipart/form-data": AudienceUploadIn},
             examples=[OpenApiExample("filter", request_only=True, media_type="application/json", value={
                 "name": "Delhi VIPs", "filter": {"tags_any": ["vip"], "custom_fields": {"city": "Delhi"},
                                                  "opted_in": True}})],
             responses={201: AudienceOut})
    def post(self, request):
        upload = request.FILES.get("file") if hasattr(request, "FILES") else None
        if upload is not None:
            if upload.size > settings.API_MAX_UPLOAD_BYTES:
                raise PayloadTooLarge()
            audience = services.audience_create_from_csv(
                workspace=self.tenant.workspace, name=request.data.get("name") or upload.name or "",
                data=upload.read(), waba_id=self.tenant.waba_id,
            )
        else:
            if (request.content_type or "").startswith("multipart/"):
                raise ValidationFailed("Upload the CSV as the `file` part.", field="file")
            data = AudienceIn(data=request.data)
            data.is_valid(raise_exception=True)
            audience = services.audience_create(workspace=self.tenant.workspace, name=data.validated_data["name"],
                                                filter=data.validated_data.get("filter"), waba_id=self.tenant.waba_id)
        self.audit_target = ("audience", audience.pk)
        ws = self.tenant.workspace
        return Response(audience_out(audience, size=selectors.audience_size(workspace=ws, audience=audience),
                                     preview=selectors.audience_preview(workspace=ws, audience=audience)),
                        status=201)


class AudienceDetailView(ApiView):
    scopes = {"GET": READ}

    @api_doc(operation_id="audiences_get", summary="Get an audience",
             description="One audience with its current size and a preview of its first contacts.",
             responses={200: AudienceOut})
    def get(self, request, pk: str):
        audience = self.get_scoped(Audience, pk)
        ws = self.tenant.workspace
        return Response(audience_out(audience, size=selectors.audience_size(workspace=ws, audience=audience),
                                     preview=selectors.audience_preview(workspace=ws, audience=audience)))


class CampaignIn(serializers.Serializer):
    class CampaignTemplateIn(serializers.Serializer):
        name = serializers.CharField(max_length=512)
        language = serializers.CharField(max_length=15)
        components = serializers.ListField(
            child=serializers.DictField(), required=False,
            help_text="Meta-shaped send components (header media, URL-button and copy-code parameters, an offer's "
                      "expiration_time_ms, carousel cards); any string may hold `{{contact.…}}` like `variables`.")

    name = serializers.CharField(max_length=200)
    template = CampaignTemplateIn()
    audience_id = serializers.CharField(max_length=40)
    phone_number_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    variables = serializers.JSONField(required=False)
    components = serializers.ListField(child=serializers.DictField(), required=False,
                                       help_text="The same as template.components (either place).")
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
    `valid_until`: recipients not yet sent by then expire instead of going out late.
    `template.components` (or `components`): Meta-shaped send components for header media, dynamic URL buttons,
    copy codes, a limited-time offer's `expiration_time_ms` and carousel cards, checked against the approved
    template at creation; their strings take the same `{{contact.…}}` expressions, filled per recipient."""

    scopes = {"GET": READ, "POST": WRITE}
    InputSerializer = CampaignIn

    @api_doc(operation_id="campaigns_list", summary="List campaigns",
             description="Campaigns with their stats, newest first.",
             parameters=[*PAGE_PARAMETERS, query("status", enum=Campaign.Status.values)],
             responses={200: paginated(CampaignOut)})
    def get(self, request):
        qs = _campaigns(self)
        if request.query_params.get("status"):
            qs = qs.filter(status=request.query_params["status"])
        response = self.paginated(qs, lambda c: c)
        items = response.data["data"]
        stats = selectors.with_clicks(selectors.campaigns_stats(campaign_ids=[c.pk for c in items]),
                                      workspace_id=self.tenant.workspace.pk)
        response.data["data"] = [campaign_out(c, stats[c.pk]) for c in items]
        return response

    @api_doc(operation_id="campaigns_create", summary="Create a campaign",
             description="A template sent to an audience, paced to the sender's throughput. " + (__doc__ or ""),
             request=CampaignIn, responses={201: CampaignOut}, examples=[OpenApiExample(
                 "campaign", request_only=True, value={
                     "name": "November promo", "template": {"name": "promo_nov", "language": "en"},
                     "audience_id": "aud_01HNQX2P8Y9R3T4V5W6Z7A8B9C",
                     "variables": {"1": "{{contact.name|there}}", "2": "{{contact.custom_fields.city}}"},
                     "schedule_at": "2030-01-01T09:00:00Z"}), OpenApiExample(
                 "campaign with components", request_only=True, value={
                     "name": "Flash sale", "template": {"name": "flash_sale", "language": "en", "components": [
                         {"type": "header", "parameters": [{"type": "image", "image": {
                             "link": "https://cdn.example.com/sale.jpg"}}]},
                         {"type": "limited_time_offer", "parameters": [{"type": "limited_time_offer",
                          "limited_time_offer": {"expiration_time_ms": 1924992000000}}]},
                         {"type": "button", "sub_type": "copy_code", "index": "0", "parameters": [
                             {"type": "coupon_code", "coupon_code": "{{contact.custom_fields.code}}"}]},
                         {"type": "button", "sub_type": "url", "index": "1", "parameters": [
                             {"type": "text", "text": "{{contact.external_id}}"}]}]},
                     "audience_id": "aud_01HNQX2P8Y9R3T4V5W6Z7A8B9C",
                     "variables": {"1": "{{contact.first_name|there}}"}})])
    def post(self, request):
        data = CampaignIn(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = services.campaign_create(tenant=self.tenant, data=data.validated_data)
        self.audit_target = ("campaign", campaign.pk)
        return Response(campaign_out(campaign, selectors.campaign_stats_with_clicks(campaign=campaign)), status=201)


class CampaignDetailOut(CampaignOut):
    failures_by_reason = FailureGroupOut(many=True, help_text="Failed messages grouped by reason, most first.")


class CampaignDetailView(ApiView):
    scopes = {"GET": READ}

    @api_doc(operation_id="campaigns_get", summary="Get a campaign",
             description="One campaign with its status, stats, and its failures grouped by reason (the failure "
             "table's reason, sentence, next action and the Meta codes seen).", responses={200: CampaignDetailOut})
    def get(self, request, pk: str):
        campaign = self.get_scoped(_campaigns(self), pk)
        out = campaign_out(campaign, selectors.campaign_stats_with_clicks(campaign=campaign))
        out["failures_by_reason"] = selectors.campaign_failures_by_reason(campaign=campaign)
        return Response(out)


class CampaignActionView(ApiView):
    scopes = {"POST": WRITE}
    action_name = ""
    ACTION_DOCS = {
        "start": "Starts a draft or scheduled campaign now. Each recipient gets at most one message.",
        "pause": "Pauses a running campaign; nothing more is handed out until it is resumed.",
        "resume": "Resumes a paused campaign.",
        "cancel": "Cancels the campaign; recipients not yet sent are not sent. Emits nothing more.",
    }

    def post(self, request, pk: str):
        campaign = self.get_scoped(_campaigns(self), pk)
        self.audit_target = ("campaign", campaign.pk)
        action = {
            "start": services.campaign_start, "pause": services.campaign_pause,
            "resume": services.campaign_resume, "cancel": services.campaign_cancel,
        }[self.action_name]
        campaign = action(campaign=campaign)
        return Response(campaign_out(campaign, selectors.campaign_stats_with_clicks(campaign=campaign)))


def _action_view(action: str) -> type[CampaignActionView]:
    """One view class per action, so each route documents its own operation."""

    class View(CampaignActionView):
        @api_doc(operation_id=f"campaigns_{action}", summary=f"{action.capitalize()} a campaign",
                 description=CampaignActionView.ACTION_DOCS[action] + " A status that does not allow it is 409.",
                 request=None, responses={200: CampaignOut}, errors=(409,))
        def post(self, request, pk: str):
            return super().post(request, pk)

    View.__name__ = View.__qualname__ = f"Campaign{action.capitalize()}View"
    return View


CAMPAIGN_ACTION_VIEWS = {action: _action_view(action) for action in ("start", "pause", "resume", "cancel")}


class CampaignPreflightView(ApiView):
    # A dry run writes nothing, but it is part of preparing a send: campaigns:write like the launch it precedes.
    scopes = {"POST": WRITE}

    @api_doc(operation_id="campaigns_preflight", summary="Dry-run a campaign",
             description="Who would get a message now, who would be skipped and why, the estimated cost and "
             "finish time. Writes nothing.", request=None, responses={200: CampaignPreflightOut})
    def post(self, request, pk: str):
        campaign = self.get_scoped(_campaigns(self), pk)
        result = services.campaign_preflight(campaign=campaign)
        result["estimated_finish_at"] = _ts(result["estimated_finish_at"])
        return Response(result)
