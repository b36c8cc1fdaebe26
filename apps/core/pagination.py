"""Cursor pagination over time-sortable prefixed ids: `{"data": [...], "next_cursor": "…" | null}`."""

from __future__ import annotations

import base64
import binascii
import json

from django.db.models import QuerySet

from apps.core.errors import ValidationFailed

DEFAULT_LIMIT, MAX_LIMIT = 25, 100


def parse_limit(raw: str | None, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValidationFailed("limit must be a whole number.", field="limit")
    if not 1 <= value <= maximum:
        raise ValidationFailed(f"limit must be between 1 and {maximum}.", field="limit")
    return value


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": value}).encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> str:
    try:
        padded = raw + "=" * (-len(raw) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))["k"]
        if not isinstance(value, str) or len(value) > 64:
            raise ValueError
        return value
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed("cursor is not one this API handed out.", field="cursor")


def paginate(queryset: QuerySet, *, params, newest_first: bool = True, default_limit: int = DEFAULT_LIMIT,
             max_limit: int = MAX_LIMIT) -> tuple[list, str | None]:
    """Keyset pagination on the primary key (ULID ids sort by creation time)."""
    limit = parse_limit(params.get("limit"), default=default_limit, maximum=max_limit)
    cursor = params.get("cursor")
    qs = queryset.order_by("-pk" if newest_first else "pk")
    if cursor:
        key = decode_cursor(cursor)
        qs = qs.filter(pk__lt=key) if newest_first else qs.filter(pk__gt=key)
    items = list(qs[: limit + 1])
    next_cursor = encode_cursor(items[limit - 1].pk) if len(items) > limit else None
    return items[:limit], next_cursor
