"""Request ids, API body limits and the JSON error envelope for anything under /api/ that Django
(not DRF) answers: unknown routes, 405s from plain views, 500s."""

from __future__ import annotations

import json
import logging
import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from apps.core.errors import error_body, json_error
from apps.core.ids import new_id

logger = logging.getLogger("reach.errors")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
API_PREFIXES = ("/api/",)
_DJANGO_ERROR_CODES = {
    400: ("VALIDATION_FAILED", "The request is invalid."),
    403: ("PERMISSION_DENIED", "You are not allowed to do this."),
    404: ("NOT_FOUND", "No such resource."),
    405: ("METHOD_NOT_ALLOWED", "This method is not allowed on this resource."),
    413: ("PAYLOAD_TOO_LARGE", "The request body or media is over its limit."),
    500: ("INTERNAL_ERROR", "Something went wrong on our side."),
}


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-Id", "")
        request.request_id = incoming if _REQUEST_ID_RE.match(incoming) else new_id("req")
        response = self.get_response(request)
        response["X-Request-Id"] = request.request_id
        return response


# Paths that accept bodies larger than the JSON limit (multipart uploads).
UPLOAD_PATHS = ("/api/v1/media", "/api/v1/contacts/import", "/api/v1/audiences")


class ApiBodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_path(request.path):
            limit = settings.API_MAX_BODY_BYTES
            if request.path.rstrip("/").startswith(UPLOAD_PATHS):
                limit = settings.API_MAX_UPLOAD_BYTES
            raw = request.META.get("CONTENT_LENGTH") or "0"
            try:
                length = int(raw)
            except ValueError:
                return json_error(request, 400, "VALIDATION_FAILED", "Content-Length is not a number.")
            if length > limit:
                return json_error(
                    request, 413, "PAYLOAD_TOO_LARGE", f"The body is over the {limit} byte limit.",
                    {"limit_bytes": limit},
                )
            if request.path.rstrip("/").startswith(UPLOAD_PATHS):
                # Django's own cap would refuse legitimate uploads; this path has checked the length.
                request.upload_limit = limit
        return self.get_response(request)


class ApiInputGuardMiddleware:
    """Path ids and query parameters that nothing downstream can store: 400 before any view runs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_path(request.path):
            from apps.core.errors import ApplicationError
            from apps.core.input_guard import query_and_path_check

            try:
                query_and_path_check(path=request.path, params=request.GET)
            except ApplicationError as exc:
                return json_error(request, exc.status, exc.code, exc.message, exc.details)
        return self.get_response(request)


class ApiErrorMiddleware:
    """Last line: whatever Django answers under /api/ with an error becomes the API envelope."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not is_api_path(request.path) or response.status_code < 400:
            return response
        content_type = response.get("Content-Type", "")
        if content_type.startswith("application/json"):
            return response
        code, message = _DJANGO_ERROR_CODES.get(response.status_code, ("ERROR", "The request failed."))
        new = HttpResponse(
            json.dumps(error_body(code, message, {}, getattr(request, "request_id", ""))),
            status=response.status_code,
            content_type="application/json",
        )
        for header in ("Allow", "Retry-After"):
            if header in response:
                new[header] = response[header]
        return new

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not is_api_path(request.path):
            return None
        logger.exception("unhandled error on %s", request.path)
        return json_error(request, 500, "INTERNAL_ERROR", "Something went wrong on our side.")
