"""The API's parsers: DRF's, with apps.core.input_guard applied to everything they produce (the one place
bad input becomes a 400)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser

from apps.core import input_guard


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        return input_guard.json_loads_strict(text)


def _check_form(data, files=None) -> None:
    for key, values in data.lists():
        input_guard.text_check(key, field=key)
        for value in values:
            input_guard.text_check(value, field=key)
            if key == "filename":  # a name we store and later send back in Content-Disposition
                input_guard.filename_check(value, field=key)
    for key, upload in (files.items() if files is not None else ()):
        if upload.name:
            input_guard.filename_check(upload.name, field=f"{key}.filename")


class StrictMultiPartParser(MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        _check_form(result.data, result.files)
        return result


class StrictFormParser(FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _check_form(data)
        return data
