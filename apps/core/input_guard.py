"""Bad input → 400 with the envelope, in one place, before any view, service or database sees it.

What PostgreSQL, the csv module, `json` or HTTP headers cannot hold is refused here, whatever the endpoint:
NUL bytes and lone surrogates in any JSON string (keys too), query parameter, path segment, form field or
CSV cell; JSON nested deeper than MAX_JSON_DEPTH (measured before `json.loads` recurses); upload filenames
with control characters or header-unsafe ones. Used by the API's parsers (apps.core.api.parsers), the API
middleware (paths and query strings), the Meta webhook receiver and the CSV readers.
"""

from __future__ import annotations

import csv
import json
import re
from typing import Any

from apps.core.errors import InvalidJson, ValidationFailed

MAX_JSON_DEPTH = 64
# NUL and lone (unpaired) UTF-16 surrogates: valid in a Python str, refused by PostgreSQL and by UTF-8.
_BAD_CHARS = re.compile(r"[\x00\ud800-\udfff]")
# In a filename that ends up in a Content-Disposition header: controls, quotes, backslash, path separators.
_UNSAFE_FILENAME = re.compile(r'[\x00-\x1f\x7f"\\/;]')


def text_problem(value: str) -> str | None:
    """Why this string cannot be stored, or None."""
    match = _BAD_CHARS.search(value)
    if match is None:
        return None
    return "must not contain NUL bytes." if match.group() == "\x00" else "must not contain lone surrogates."


def text_check(value: str, *, field: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValidationFailed(f"{field or 'body'}: {problem}", field=field)
    return value


def json_depth_check(raw: bytes | str, *, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuses a document nested deeper than `limit` without parsing it (so `json.loads` never recurses
    that far). Brackets inside strings do not count."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else raw
    if text.count("[") + text.count("{") <= limit:
        return
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                raise InvalidJson(f"The JSON is nested deeper than {limit} levels.", details={"max_depth": limit})
        elif char in "]}":
            depth -= 1


def json_strings_check(value: Any, path: str = "") -> None:
    """Every string in a parsed document (keys and values) can be stored."""
    if isinstance(value, str):
        text_check(value, field=path)
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and text_problem(key):
                raise ValidationFailed(f"{path or 'body'}: keys {text_problem(key)}", field=path)
            json_strings_check(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            json_strings_check(item, f"{path}[{index}]")


def json_loads_strict(raw: bytes | str) -> Any:
    """json.loads that refuses deep nesting first and unstorable strings after (400, never a 500)."""
    json_depth_check(raw)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidJson(details={"reason": str(exc)[:200]}) from exc
    json_strings_check(data)
    return data


def filename_check(name: str, *, field: str = "filename") -> str:
    """A filename we store and later send back in Content-Disposition: no controls (CR/LF), quotes,
    backslashes, slashes or semicolons, no NUL or surrogates, at most 255 characters."""
    text_check(name, field=field)
    if _UNSAFE_FILENAME.search(name):
        raise ValidationFailed(f"{field}: must not contain control characters, quotes, slashes or ';'.",
                               field=field)
    if len(name) > 255:
        raise ValidationFailed(f"{field}: at most 255 characters.", field=field)
    return name


def query_and_path_check(*, path: str, params) -> None:
    """Path segments (ids) and query parameters of an API request."""
    problem = text_problem(path)
    if problem:
        raise ValidationFailed(f"The path {problem}", field="path")
    for key, values in params.lists():
        text_check(key, field=key)
        for value in values:
            text_check(value, field=key)


CSV_FIELD_MAX = 131072  # the csv module's default field_size_limit


def csv_rows(text: str, *, field: str = "file") -> list[list[str]]:
    """All rows of an uploaded CSV; a NUL byte, a lone surrogate or a cell over CSV_FIELD_MAX characters
    refuses the file (400) instead of surfacing later as a csv.Error or a database error."""
    problem = text_problem(text)
    if problem:
        raise ValidationFailed(f"The CSV {problem}", field=field)
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as exc:
        raise ValidationFailed(f"The CSV cannot be read: {exc}.", field=field) from exc
    for number, row in enumerate(rows, start=1):
        if any(len(cell) > CSV_FIELD_MAX for cell in row):
            raise ValidationFailed(f"Row {number} has a field over {CSV_FIELD_MAX} characters.", field=field)
    return rows
