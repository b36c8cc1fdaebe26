"""Small builders for the JSON Schemas of event data, so each app's declarations stay short."""

from __future__ import annotations

from typing import Any

STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
# Event data is stored as JSON: times travel as ISO 8601 strings in UTC.
TIMESTAMP: dict[str, Any] = {"type": "string", "format": "date-time"}


def ident(what: str) -> dict[str, Any]:
    return {"type": "string", "description": f"The {what}'s id."}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def obj(required: dict[str, dict], optional: dict[str, dict] | None = None, *,
        additional: bool = False, description: str = "") -> dict[str, Any]:
    """An object with these keys (required ones always present, optional ones sometimes). Closed by
    default: a key a builder adds without declaring it fails the suite's schema check."""
    schema: dict[str, Any] = {"type": "object", "properties": {**required, **(optional or {})},
                              "required": list(required), "additionalProperties": additional}
    if description:
        schema["description"] = description
    return schema
