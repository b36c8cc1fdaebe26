"""How an /api/v1 operation documents itself: `api_doc(...)` is @extend_schema with the house rules.

Every operation gives a readable `operation_id` (`messages_send`, not `messages_create`), a summary, a
description, its request serializer (when it takes a body), its 2xx response serializer(s) with the real
status codes, and the error statuses beyond the ones every operation has (apps.core.schema adds those).
The walker test (tests/contract/test_schema_walk.py) fails on an operation that skips any of them.

    @api_doc(operation_id="contacts_create", summary="Create or find a contact", description="…",
             request=ContactIn, responses={201: ContactOut, 200: (ContactOut, "The phone already existed.")},
             errors=(422,), examples=[...])
    def post(self, request): ...
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

_PAGES: dict[type, type] = {}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="A stable, machine-readable code (API.md Errors).")
    message = serializers.CharField(help_text="For a person; may change.")
    details = serializers.DictField(help_text="`field` names the offending field for VALIDATION_FAILED.")
    request_id = serializers.CharField(help_text="The same id as the X-Request-Id header.")


class ErrorSerializer(serializers.Serializer):
    """The one error envelope of every /api/ error (API.md Errors)."""

    error = ErrorDetailSerializer()


def paginated(item: type[serializers.Serializer], *, name: str | None = None) -> type[serializers.Serializer]:
    """The cursor page `{"data": [item…], "next_cursor": "…" | null}` of an item serializer."""
    if item in _PAGES:
        return _PAGES[item]
    base = name or item.__name__.removesuffix("Serializer").removesuffix("Out")
    page = type(f"Paginated{base}List", (serializers.Serializer,), {
        "__doc__": f"A page of {base} items, newest first unless the operation says otherwise.",
        "data": item(many=True),
        "next_cursor": serializers.CharField(allow_null=True,
                                             help_text="Pass as `?cursor=` for the next page; null at the end."),
    })
    _PAGES[item] = page
    return page


def listing(item: type[serializers.Serializer], *, name: str, extra: dict | None = None) -> type:
    """An unpaginated list answer `{"data": [item…], …extra}`."""
    attrs = {"__doc__": f"Every {item.__name__.removesuffix('Out')} (no pagination).", "data": item(many=True)}
    attrs.update(extra or {})
    return type(name, (serializers.Serializer,), attrs)


LIMIT = OpenApiParameter("limit", int, description="Page size: default 25, at most 100.")
CURSOR = OpenApiParameter("cursor", str, description="`next_cursor` of the previous page.")
PAGE_PARAMETERS = [LIMIT, CURSOR]


def query(name: str, type_=str, description: str = "", enum=None) -> OpenApiParameter:
    return OpenApiParameter(name, type_, location=OpenApiParameter.QUERY, description=description, enum=enum)


def example(name: str, value, *, summary: str = "", request: bool = True, status: int | None = None):
    return OpenApiExample(name, value=value, summary=summary or name, request_only=request,
                          response_only=not request, status_codes=[str(status)] if status else None)


def api_doc(*, operation_id: str, summary: str, description: str, responses: dict, request=None,
            errors: tuple[int, ...] = (), parameters: list | None = None, examples: list | None = None,
            tags: list[str] | None = None):
    """responses: {status: Serializer | None (no body) | (Serializer, description)}; errors: extra error
    statuses (402, 409, 415, 422, 502…) answered with the envelope; the common ones are added for every
    operation by apps.core.schema."""
    out: dict = {}
    for status, spec in responses.items():
        if isinstance(spec, tuple):
            spec, text = spec
            out[status] = OpenApiResponse(response=spec, description=text)
        else:
            out[status] = spec
    for status in errors:
        out[status] = OpenApiResponse(response=ErrorSerializer, description="")
    return extend_schema(operation_id=operation_id, summary=summary, description=description, request=request,
                         responses=out, parameters=parameters, examples=examples, tags=tags)


TIMESTAMP = {"format": "date-time"}


def ts(**kw) -> serializers.DateTimeField:
    """An ISO-8601 UTC timestamp with Z (API.md conventions)."""
    return serializers.DateTimeField(**kw)
