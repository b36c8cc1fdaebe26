"""OpenAPI post-processing: document the error envelope on every operation."""

from __future__ import annotations

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


def add_error_responses(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, description in COMMON_ERRORS.items():
                operation["responses"].setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": ref}}}
                )
    return result
