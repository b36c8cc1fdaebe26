"""OpenAPI post-processing: document the error envelope on every operation."""

from __future__ import annotations

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details", "request_id"],
            "properties": {
                "code": {"type": "string", "example": "VALIDATION_FAILED"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
                "request_id": {"type": "string", "example": "req_01JABCDEF"},
            },
        }
    },
}
COMMON_ERRORS = {
    "400": "VALIDATION_FAILED or INVALID_JSON",
    "401": "INVALID_API_KEY",
    "403": "INSUFFICIENT_SCOPE",
    "404": "NOT_FOUND (also for ids of another workspace)",
    "409": "IDEMPOTENCY_CONFLICT",
    "413": "PAYLOAD_TOO_LARGE",
    "422": "IDEMPOTENCY_KEY_REUSED or a policy refusal",
    "429": "RATE_LIMITED",
    "500": "INTERNAL_ERROR",
}


IDEMPOTENCY_PARAMETER = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "description": "1-255 printable ASCII characters. A retry with the same key and body replays the first "
    "response (with `Idempotent-Replayed: true`) for 24 h; a different body is 422, a concurrent one 409.",
    "schema": {"type": "string", "maxLength": 255},
}
RESPONSE_HEADERS = {
    "X-Request-Id": {"description": "Echoes a valid incoming X-Request-Id, else a new req_ id.",
                     "schema": {"type": "string"}},
    "X-RateLimit-Limit": {"description": "Requests per minute for this key.", "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "Requests left now (the tighter of the minute and 10-second "
                              "burst windows).", "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"description": "Unix seconds when that window resets.", "schema": {"type": "integer"}},
}


def add_error_responses(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, description in COMMON_ERRORS.items():
                operation["responses"].setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": ref}}}
                )
            operation["responses"]["429"].setdefault(
                "headers", {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
            )
            for response in operation["responses"].values():
                response.setdefault("headers", {})
                for name, header in RESPONSE_HEADERS.items():
                    response["headers"].setdefault(name, header)
            if method in ("post", "put", "patch", "delete"):
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == "Idempotency-Key" for p in parameters):
                    parameters.append(IDEMPOTENCY_PARAMETER)
    return result


# --- schema generation for ApiView ------------------------------------------------------------------------
# ApiView subclasses are plain APIViews (one view per route, HackSoft style). They document themselves
# with nested `InputSerializer` / `OutputSerializer` classes or @extend_schema; anything else falls back to
# a free-form JSON object instead of an error, so the schema always validates and covers every route.

_ENDS_WITH_PARAM = re.compile(r"\{[^}]+\}/?$")


class ReachAutoSchema(AutoSchema):
    def _declared(self, name: str):
        serializer = getattr(self.view, name, None)
        return serializer() if isinstance(serializer, type) else serializer

    def _has_serializer_hint(self) -> bool:
        view = self.view
        return any(callable(getattr(view, attr, None)) for attr in ("get_serializer", "get_serializer_class")) \
            or getattr(view, "serializer_class", None) is not None

    def get_request_serializer(self):
        declared = self._declared("InputSerializer")
        if declared is not None:
            return declared
        if self._has_serializer_hint():
            return super().get_request_serializer()
        return OpenApiTypes.OBJECT if self.method in ("POST", "PUT", "PATCH") else None

    def get_response_serializers(self):
        declared = self._declared("OutputSerializer")
        if declared is not None:
            return declared
        if self._has_serializer_hint():
            return super().get_response_serializers()
        return OpenApiTypes.OBJECT

    def get_operation_id(self) -> str:
        operation_id = super().get_operation_id()
        # Plain APIViews are never "list views" to drf-spectacular, so /things and /things/{id} collide.
        if self.method == "GET" and not _ENDS_WITH_PARAM.search(self.path) and operation_id.endswith("_retrieve"):
            operation_id = operation_id[: -len("_retrieve")] + "_list"
        return operation_id


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.core.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "ak_live_… / ak_test_…"}


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.core.authentication.WorkspaceSessionAuthentication"
    name = "Session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


# --- event types --------------------------------------------------------------------------------------------

EVENT_ENVELOPE_SCHEMA = {
    "type": "object",
    "description": "The body of every webhook delivery and inbox stream message (API.md).",
    "required": ["id", "type", "created_at", "workspace_id", "sandbox", "sequence", "data"],
    "properties": {
        "id": {"type": "string", "example": "evt_01HNQX2P8Y9R3T4V5W6Z7A8B9C"},
        "type": {"type": "string", "description": "The event type; `data` has that type's schema."},
        "created_at": {"type": "string", "format": "date-time"},
        "workspace_id": {"type": "string", "description": "The live workspace, also for sandbox events."},
        "sandbox": {"type": "boolean"},
        "sequence": {"type": "integer", "description": "Per workspace, increasing in commit order."},
        "data": {"type": "object"},
    },
}
WEBHOOK_HEADERS = [
    {"in": "header", "name": "X-Reach-Signature", "required": True, "schema": {"type": "string"},
     "description": "`sha256=<hex HMAC-SHA256 of the raw body>`, keyed with the secret's decoded bytes."},
    {"in": "header", "name": "webhook-id", "required": True, "schema": {"type": "string"},
     "description": "The same on every attempt and redelivery of one event to one subscription: dedupe on it."},
    {"in": "header", "name": "webhook-timestamp", "required": True, "schema": {"type": "integer"}},
    {"in": "header", "name": "webhook-signature", "required": True, "schema": {"type": "string"},
     "description": "Standard Webhooks: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`."},
]


def event_component_name(event_type: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[._]", event_type)) + "Event"


def add_event_types(result, generator, request, public):
    """The public event types from the registry: a component per type (the envelope with its data's JSON
    Schema) and an OpenAPI 3.1 `webhooks` entry per type, the request a subscription receives."""
    from apps.core.events import event_types

    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["EventEnvelope"] = EVENT_ENVELOPE_SCHEMA
    webhooks = result.setdefault("webhooks", {})
    for entry in event_types(public=True):
        name = event_component_name(entry.name)
        data = {k: v for k, v in entry.schema.items() if k != "$schema"}
        schemas[name] = {
            "description": entry.description,
            "allOf": [{"$ref": "#/components/schemas/EventEnvelope"},
                      {"type": "object", "properties": {"type": {"const": entry.name}, "data": data}}],
        }
        example = {"id": "evt_01HNQX2P8Y9R3T4V5W6Z7A8B9C", "type": entry.name, "created_at": "2026-05-23T14:22:19.000000Z",
                   "workspace_id": "ws_01HNQX2P8Y9R", "sandbox": False, "sequence": 42, "data": entry.example}
        webhooks[entry.name] = {"post": {
            "operationId": "event_" + entry.name.replace(".", "_"), "summary": entry.name,
            "description": entry.description, "tags": ["events"], "parameters": WEBHOOK_HEADERS,
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{name}"}, "example": example}}},
            "responses": {"2XX": {"description": "Received. Anything else (or no answer within the timeout) is "
                                                 "retried on the schedule API.md gives."}},
        }}
    return result
