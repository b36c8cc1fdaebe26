"""/api/v1/wabas/{id}/templates (list, create) and /api/v1/templates (list across WABAs, read one)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample
from rest_framework import serializers
from rest_framework.response import Response

from apps.core.api.base import ApiView
from apps.core.api.docs import PAGE_PARAMETERS, api_doc, paginated, query
from apps.core.errors import ValidationFailed
from apps.message_templates import selectors, services
from apps.message_templates.models import MessageTemplate
from apps.wabas.models import Waba

SCOPES = {"GET": "templates:read", "POST": "templates:write"}


class TemplateCreateIn(serializers.Serializer):
    """Checked against Meta's rules by message_templates.validation (the one rule), then submitted."""

    name = serializers.CharField(max_length=512, help_text="[a-z0-9_]")
    language = serializers.CharField(max_length=15, help_text="e.g. en_US")
    category = serializers.ChoiceField(choices=["MARKETING", "UTILITY", "AUTHENTICATION"])
    parameter_format = serializers.ChoiceField(choices=["positional", "named"], required=False)
    components = serializers.ListField(child=serializers.DictField(), help_text="Meta's component shape.")


class TemplateOut(serializers.Serializer):
    id = serializers.CharField()
    waba_id = serializers.CharField()
    name = serializers.CharField()
    language = serializers.CharField()
    category = serializers.ChoiceField(choices=MessageTemplate.Category.values)
    parameter_format = serializers.ChoiceField(choices=["positional", "named"])
    components = serializers.ListField(child=serializers.DictField())
    status = serializers.ChoiceField(choices=MessageTemplate.Status.values)
    rejection_reason = serializers.CharField(allow_null=True)
    quality_score = serializers.CharField(allow_null=True)
    meta_template_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class TemplateStatusChangeOut(serializers.Serializer):
    from_status = serializers.CharField(allow_null=True)
    to_status = serializers.CharField()
    reason = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class TemplateDetailOut(TemplateOut):
    history = TemplateStatusChangeOut(many=True)


FILTERS = [*PAGE_PARAMETERS, query("status", enum=MessageTemplate.Status.values),
           query("category", enum=MessageTemplate.Category.values), query("language"), query("name")]
TEMPLATE_EXAMPLE = OpenApiExample("utility template", request_only=True, value={
    "name": "order_confirmation", "language": "en", "category": "UTILITY", "components": [
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} is confirmed.",
         "example": {"body_text": [["Ada", "#1042"]]}}]})


def _filters(request) -> dict:
    params = request.query_params
    return {k: params.get(k) for k in ("status", "category", "language", "name")}


def template_detail_out(template: MessageTemplate) -> dict:
    out = services.template_serialize(template)
    out["history"] = [
        {"from_status": c.from_status or None, "to_status": c.to_status, "reason": c.reason or None,
         "created_at": c.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
        for c in selectors.template_history(template=template)
    ]
    return out


class WabaTemplatesView(ApiView):
    scopes = SCOPES

    @api_doc(operation_id="wabas_templates_list", summary="List a WABA's templates",
             description="Message templates of one WABA, newest first.", parameters=FILTERS,
             responses={200: paginated(TemplateOut)})
    def get(self, request, pk: str):
        waba = self.get_scoped(Waba, pk)
        qs = selectors.template_list(workspace=self.tenant.workspace, waba=waba, **_filters(request))
        return self.paginated(qs, services.template_serialize)

    @api_doc(operation_id="templates_create", summary="Create and submit a template",
             description="Validated locally against Meta's rules (name, lengths, placeholders 1..n with examples, "
             "buttons) — a bad template fails here with 400 and a `details` list — then submitted to Meta; "
             "answers 201 with status PENDING. Meta's review moves it and emits `template.status_changed`.",
             request=TemplateCreateIn, examples=[TEMPLATE_EXAMPLE], responses={201: TemplateOut}, errors=(502,))
    def post(self, request, pk: str):
        waba = self.get_scoped(Waba, pk)
        if not isinstance(request.data, dict):
            raise ValidationFailed("The body must be a JSON object.", field="")
        template = services.template_create(workspace=self.tenant.workspace, waba=waba, data=dict(request.data))
        self.audit_target = ("template", template.pk)
        return Response(services.template_serialize(template), status=201)


class TemplateListView(ApiView):
    scopes = {"GET": "templates:read"}

    @api_doc(operation_id="templates_list", summary="List templates",
             description="Templates across the WABAs the key may use.", parameters=FILTERS,
             responses={200: paginated(TemplateOut)})
    def get(self, request):
        qs = selectors.template_list(workspace=self.tenant.workspace, waba_id=self.tenant.waba_id,
                                     **_filters(request))
        return self.paginated(qs, services.template_serialize)


class TemplateDetailView(ApiView):
    scopes = {"GET": "templates:read"}

    @api_doc(operation_id="templates_get", summary="Get a template",
             description="One template with its review history.", responses={200: TemplateDetailOut})
    def get(self, request, pk: str):
        return Response(template_detail_out(self.get_scoped(MessageTemplate, pk)))
