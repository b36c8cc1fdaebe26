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
# One response component per error status, each the API.md envelope with the codes it can carry.
ERROR_RESPONSES = {
    "400": ("BadRequest", "VALIDATION_FAILED (`details.field` names the field) or INVALID_JSON.",
            "VALIDATION_FAILED", "to: must be an E.164 phone number.", {"field": "to"}),
    "401": ("Unauthorized", "INVALID_API_KEY: missing, malformed, unknown or revoked key.",
            "INVALID_API_KEY", "The API key is missing, malformed, unknown or revoked.", {}),
    "402": ("PaymentRequired", "INSUFFICIENT_BALANCE: the wallet cannot cover the cost estimate.",
            "INSUFFICIENT_BALANCE", "The wallet cannot cover the cost estimate.",
            {"required": "0.0120", "available": "0.0000"}),
    "403": ("Forbidden", "INSUFFICIENT_SCOPE (valid key without the scope) or PERMISSION_DENIED.",
            "INSUFFICIENT_SCOPE", "The API key lacks the scope for this operation.",
            {"required_scope": "messages:send"}),
    "404": ("NotFound", "NOT_FOUND (also for ids of another workspace, sandbox or WABA), PHONE_NOT_FOUND or "
            "TEMPLATE_NOT_FOUND.", "NOT_FOUND", "No such resource.", {}),
    "409": ("Conflict", "IDEMPOTENCY_CONFLICT (same Idempotency-Key still in flight) or CONFLICT (the resource's "
            "state does not allow this).", "IDEMPOTENCY_CONFLICT",
            "A request with this Idempotency-Key is still in flight.", {}),
    "413": ("PayloadTooLarge", "PAYLOAD_TOO_LARGE: the body or media is over its limit.", "PAYLOAD_TOO_LARGE",
            "The body is over the 1048576 byte limit.", {"limit_bytes": 1048576}),
    "415": ("UnsupportedMediaType", "UNSUPPORTED_MEDIA_TYPE: the media type is not allowed for its kind.",
            "UNSUPPORTED_MEDIA_TYPE", "This media type is not allowed here.", {}),
    "422": ("Unprocessable", "IDEMPOTENCY_KEY_REUSED or a policy refusal (OUTSIDE_24H_WINDOW, "
            "TEMPLATE_NOT_APPROVED, TEMPLATE_LANGUAGE_MISMATCH, TEMPLATE_VARIABLE_COUNT_MISMATCH, "
            "CONTACT_OPTED_OUT, …).", "OUTSIDE_24H_WINDOW",
            "The recipient has not written in the last 24 hours; send an approved template.",
            {"field": "type", "last_inbound_at": "2026-11-20T09:12:00Z"}),
    "429": ("TooManyRequests", "RATE_LIMITED: the key's rate limit; `Retry-After` says when.", "RATE_LIMITED",
            "Too many requests; slow down.", {"retry_after": 3}),
    "500": ("InternalError", "INTERNAL_ERROR: a bug on our side; no stack trace in the body.", "INTERNAL_ERROR",
            "Something went wrong on our side.", {}),
    "502": ("UpstreamError", "UPSTREAM_ERROR: Meta's API answered a synchronous call with an error; `details` "
            "carries Meta's code.", "UPSTREAM_ERROR", "Meta's API answered with an error.", {"meta_code": 100}),
}
# Every operation can answer these; mutating ones also the idempotency and size refusals.
ALWAYS = ("400", "401", "403", "404", "429", "500")
MUTATING_ALSO = ("409", "413", "422")
COMMON_ERRORS = {status: ERROR_RESPONSES[status][1] for status in ALWAYS + MUTATING_ALSO}


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


def _error_component(status: str) -> dict:
    name, description, code, message, details = ERROR_RESPONSES[status]
    headers = dict(RESPONSE_HEADERS)
    if status == "429":
        headers["Retry-After"] = {"description": "Seconds to wait.", "schema": {"type": "integer"}}
    return {"description": description, "headers": headers, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"},
        "example": {"error": {"code": code, "message": message, "details": details,
                              "request_id": "req_01HNQX2P8Y9R3T4V5W6Z7A8B9C"}}}}}


def add_error_responses(result, generator, request, public):
    """The envelope as one response component per error status; every operation refers to it for each
    error status it can answer. The security requirement is stated once, at the top."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    components["schemas"].pop("ErrorDetail", None)
    responses = components.setdefault("responses", {})
    for status in ERROR_RESPONSES:
        responses[ERROR_RESPONSES[status][0]] = _error_component(status)
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            operation.pop("security", None)  # the global `security` applies to every operation
            wanted = set(ALWAYS) | (set(MUTATING_ALSO) if method in ("post", "put", "patch", "delete") else set())
            wanted |= {s for s in operation["responses"] if s in ERROR_RESPONSES}
            for status in sorted(wanted):
                operation["responses"][status] = {"$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"}
            for response in operation["responses"].values():
                if "$ref" in response:
                    continue
                response.setdefault("headers", {})
                for name, header in RESPONSE_HEADERS.items():
                    response["headers"].setdefault(name, header)
            if method in ("post", "put", "patch", "delete"):
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == "Idempotency-Key" for p in parameters):
                    parameters.append(IDEMPOTENCY_PARAMETER)
    components.get("securitySchemes", {}).pop("Session", None)
    components["securitySchemes"]["Session"] = {
        "type": "apiKey", "in": "cookie", "name": "sessionid",
        "description": "The console's session (browsers); partners use ApiKey."}
    result["security"] = [{"ApiKey": []}]
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

    def map_parsers(self):
        # The JSON API takes JSON; an operation that takes uploads says so with its own parser_classes.
        from rest_framework.views import APIView

        if type(self.view).parser_classes is APIView.parser_classes:
            return ["application/json"]
        return super().map_parsers()

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
        # The envelope with this type's `type` and `data` (spelled out, not allOf: generators merge allOf
        # property by property and a `string` cannot merge with a `const`).
        schemas[name] = {**EVENT_ENVELOPE_SCHEMA, "description": entry.description, "properties": {
            **EVENT_ENVELOPE_SCHEMA["properties"], "type": {"type": "string", "const": entry.name}, "data": data}}
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
