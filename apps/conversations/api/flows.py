"""GET /api/v1/flows/{flow_id}/responses — a WhatsApp Flow's answers, as JSON or CSV (Accept: text/csv or
?format=csv)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer
from rest_framework.settings import api_settings

from apps.conversations.models import Message
from apps.conversations.selectors.flows import flow_responses, flow_responses_csv, flow_sent
from apps.core.api.base import ApiView
from apps.core.api.docs import PAGE_PARAMETERS, api_doc, paginated, query
from apps.core.errors import NotFound


def _ts(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def flow_response_out(message: Message) -> dict:
    answer = message.content.get("flow_response") or {}
    return {"message_id": message.pk, "contact_id": message.contact_id, "conversation_id": message.conversation_id,
            "flow_id": answer.get("flow_id"), "flow_token": answer.get("flow_token"), "fields": answer.get("fields") or {},
            "received_at": _ts(message.created_at)}


class FlowResponseOut(serializers.Serializer):
    """One customer's answers to a WhatsApp Flow (an interactive `nfm_reply`)."""

    message_id = serializers.CharField(help_text="The inbound message that carried the answers.")
    contact_id = serializers.CharField()
    conversation_id = serializers.CharField(allow_null=True)
    flow_id = serializers.CharField(allow_null=True, help_text="The flow id (else name) of the flow message sent.")
    flow_token = serializers.CharField(allow_null=True)
    fields = serializers.DictField(help_text="The answered fields, as the flow returned them.")
    received_at = serializers.DateTimeField()


class CsvRenderer(BaseRenderer):
    """Lets `Accept: text/csv` through content negotiation; the view answers the CSV itself."""

    media_type, format, charset = "text/csv", "csv", "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        import json

        return data if isinstance(data, (str, bytes)) else json.dumps(data).encode()


class FlowResponsesView(ApiView):
    scopes = {"GET": "messages:read"}
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CsvRenderer]

    @api_doc(operation_id="flows_responses_list", summary="List a flow's answers",
             description="The answers customers gave to a WhatsApp Flow sent from this workspace, oldest first: "
             "JSON pages, or one CSV (`Accept: text/csv` or `?format=csv`) with phone and BSUID columns and one "
             "column per answered field. 404 when no flow message with this id was sent from the workspace.",
             parameters=[*PAGE_PARAMETERS, query("format", description="`csv` for a CSV download.", enum=["csv"])],
             responses={(200, "application/json"): paginated(FlowResponseOut),
                        (200, "text/csv"): OpenApiResponse(
                            response={"type": "string", "contentMediaType": "text/csv"},
                            description="The answers as CSV.")})
    def get(self, request, flow_id: str):
        scoped = self.scoped(Message)
        if not flow_sent(queryset=scoped, flow_id=flow_id):
            raise NotFound("No flow message with this flow id was sent from this workspace.")
        qs = flow_responses(queryset=scoped, flow_id=flow_id)
        wants_csv = request.query_params.get("format") == "csv" or "text/csv" in request.headers.get("Accept", "")
        if wants_csv:
            response = HttpResponse(flow_responses_csv(qs.iterator(chunk_size=2000)), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="flow-{flow_id[:40]}-responses.csv"'
            return response
        return self.paginated(qs, flow_response_out, newest_first=False)

