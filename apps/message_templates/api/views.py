"""/api/v1/wabas/{id}/templates (list, create) and /api/v1/templates (list across WABAs, read one)."""

from __future__ import annotations

from rest_framework.response import Response

from apps.core.api.base import ApiView
from apps.core.errors import ValidationFailed
from apps.message_templates import selectors, services
from apps.message_templates.models import MessageTemplate
from apps.wabas.models import Waba

SCOPES = {"GET": "templates:read", "POST": "templates:write"}


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

    def get(self, request, pk: str):
        waba = self.get_scoped(Waba, pk)
        qs = selectors.template_list(workspace=self.tenant.workspace, waba=waba, **_filters(request))
        return self.paginated(qs, services.template_serialize)

    def post(self, request, pk: str):
        waba = self.get_scoped(Waba, pk)
        if not isinstance(request.data, dict):
            raise ValidationFailed("The body must be a JSON object.", field="")
        template = services.template_create(workspace=self.tenant.workspace, waba=waba, data=dict(request.data))
        self.audit_target = ("template", template.pk)
        return Response(services.template_serialize(template), status=201)


class TemplateListView(ApiView):
    scopes = {"GET": "templates:read"}

    def get(self, request):
        qs = selectors.template_list(workspace=self.tenant.workspace, waba_id=self.tenant.waba_id,
                                     **_filters(request))
        return self.paginated(qs, services.template_serialize)


class TemplateDetailView(ApiView):
    scopes = {"GET": "templates:read"}

    def get(self, request, pk: str):
        return Response(template_detail_out(self.get_scoped(MessageTemplate, pk)))
