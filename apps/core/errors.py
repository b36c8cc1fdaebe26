"""Application errors and the one renderer of the API error envelope."""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

logger = logging.getLogger("reach.errors")
WWW_AUTHENTICATE = 'Bearer realm="reach"'


class ApplicationError(Exception):
    """Base of every error Reach reports to a client. Subclasses fix `code` and `status`."""

    status = 400
    code = "VALIDATION_FAILED"
    default_message = "The request is invalid."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None, headers=None):
        self.message = message or self.default_message
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.message)


class ValidationFailed(ApplicationError):
    status, code = 400, "VALIDATION_FAILED"

    def __init__(self, message: str | None = None, *, field: str | None = None, details=None, **kw):
        details = dict(details or {})
        if field:
            details.setdefault("field", field)
        super().__init__(message, details=details, **kw)


class InvalidJson(ApplicationError):
    status, code, default_message = 400, "INVALID_JSON", "The request body is not valid JSON."


class InvalidApiKey(ApplicationError):
    status, code, default_message = 401, "INVALID_API_KEY", "The API key is missing, malformed, unknown or revoked."


class InsufficientBalance(ApplicationError):
    status, code, default_message = 402, "INSUFFICIENT_BALANCE", "The wallet cannot cover the cost estimate."


class InsufficientScope(ApplicationError):
    status, code, default_message = 403, "INSUFFICIENT_SCOPE", "The API key lacks the scope for this operation."


class PermissionDeniedError(ApplicationError):
    status, code, default_message = 403, "PERMISSION_DENIED", "You are not allowed to do this."


class NotFound(ApplicationError):
    status, code, default_message = 404, "NOT_FOUND", "No such resource."


class PhoneNotFound(ApplicationError):
    status, code, default_message = 404, "PHONE_NOT_FOUND", "No sender phone number matches."


class TemplateNotFound(ApplicationError):
    status, code, default_message = 404, "TEMPLATE_NOT_FOUND", "No such template."


class MethodNotAllowed(ApplicationError):
    status, code, default_message = 405, "METHOD_NOT_ALLOWED", "This method is not allowed on this resource."


class IdempotencyConflict(ApplicationError):
    status, code = 409, "IDEMPOTENCY_CONFLICT"
    default_message = "A request with this Idempotency-Key is still in flight."


class Conflict(ApplicationError):
    status, code, default_message = 409, "CONFLICT", "The resource is not in a state that allows this."


class PayloadTooLarge(ApplicationError):
    status, code, default_message = 413, "PAYLOAD_TOO_LARGE", "The request body or media is over its limit."


class UnsupportedMediaType(ApplicationError):
    status, code, default_message = 415, "UNSUPPORTED_MEDIA_TYPE", "This media type is not allowed here."


class IdempotencyKeyReused(ApplicationError):
    status, code = 422, "IDEMPOTENCY_KEY_REUSED"
    default_message = "This Idempotency-Key was used with a different request."


class UnprocessableError(ApplicationError):
    """Policy refusals (422) — subclasses set the code."""

    status = 422


class OutsideWindow(UnprocessableError):
    code = "OUTSIDE_24H_WINDOW"
    default_message = "The recipient has not written in the last 24 hours; send an approved template."


class TemplateNotApproved(UnprocessableError):
    code, default_message = "TEMPLATE_NOT_APPROVED", "The template is not approved."


class TemplateLanguageMismatch(UnprocessableError):
    code, default_message = "TEMPLATE_LANGUAGE_MISMATCH", "No approved translation in that language."


class TemplateVariableCountMismatch(UnprocessableError):
    code = "TEMPLATE_VARIABLE_COUNT_MISMATCH"
    default_message = "The variables do not match the template's placeholders."


class RecipientPhoneRequired(UnprocessableError):
    code = "RECIPIENT_PHONE_REQUIRED"
    default_message = ("Authentication templates need the recipient's phone number; this contact is known only by "
                       "a business-scoped user id.")


class ContactBlocked(UnprocessableError):
    code = "CONTACT_BLOCKED"
    default_message = "This contact is blocked; unblock them to send."


class ContactOptedOut(UnprocessableError):
    code = "CONTACT_OPTED_OUT"
    default_message = "The contact opted out of marketing messages."


class ContactNotOptedIn(UnprocessableError):
    code = "CONTACT_NOT_OPTED_IN"
    default_message = ("The workspace sends marketing only to contacts who opted in, and this contact has no "
                       "opt-in on record.")


class RateLimited(ApplicationError):
    status, code, default_message = 429, "RATE_LIMITED", "Too many requests; slow down."


class UpstreamError(ApplicationError):
    status, code, default_message = 502, "UPSTREAM_ERROR", "Meta's API answered with an error."


class InternalError(ApplicationError):
    status, code, default_message = 500, "INTERNAL_ERROR", "Something went wrong on our side."


def error_body(code: str, message: str, details: dict | None, request_id: str | None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}, "request_id": request_id or ""}}


def _request_id(request) -> str | None:
    return getattr(request, "request_id", None) or getattr(getattr(request, "_request", None), "request_id", None)


def json_error(request, status: int, code: str, message: str, details: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, details, _request_id(request)), status=status)


def _flatten_drf_errors(detail, prefix: str = "") -> list[dict]:
    """Turn DRF's nested error structure into [{"field": "a.b", "message": "…"}]."""
    out: list[dict] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            out.extend(_flatten_drf_errors(value, f"{prefix}.{name}" if prefix and name else (name or prefix)))
    elif isinstance(detail, list):
        if all(isinstance(x, (str, drf_exceptions.ErrorDetail)) for x in detail):
            for x in detail:
                out.append({"field": prefix, "message": str(x)})
        else:
            for index, value in enumerate(detail):
                out.extend(_flatten_drf_errors(value, f"{prefix}[{index}]" if prefix else f"[{index}]"))
    else:
        out.append({"field": prefix, "message": str(detail)})
    return out


def api_exception_handler(exc, context):
    request = context.get("request")
    rid = _request_id(request)
    if isinstance(exc, ApplicationError):
        response = Response(error_body(exc.code, exc.message, exc.details, rid), status=exc.status)
        for key, value in exc.headers.items():
            response[key] = value
        if exc.status == 401:
            response["WWW-Authenticate"] = WWW_AUTHENTICATE
        return response
    if isinstance(exc, drf_exceptions.ValidationError):
        errors = _flatten_drf_errors(exc.detail)
        first = errors[0] if errors else {"field": "", "message": "Invalid input."}
        details = {"field": first["field"], "errors": errors}
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return Response(error_body("VALIDATION_FAILED", message, details, rid), status=400)
    if isinstance(exc, drf_exceptions.ParseError):
        return Response(error_body("INVALID_JSON", "The request body is not valid JSON.", {}, rid), status=400)
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        response = Response(error_body(InvalidApiKey.code, InvalidApiKey.default_message, {}, rid), status=401)
        response["WWW-Authenticate"] = WWW_AUTHENTICATE
        return response
    if isinstance(exc, (drf_exceptions.PermissionDenied, PermissionDenied)):
        return Response(error_body("PERMISSION_DENIED", "You are not allowed to do this.", {}, rid), status=403)
    if isinstance(exc, (drf_exceptions.NotFound, Http404)):
        return Response(error_body("NOT_FOUND", "No such resource.", {}, rid), status=404)
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return Response(
            error_body("METHOD_NOT_ALLOWED", f"Method {request.method} is not allowed here.", {}, rid), status=405
        )
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return Response(
            error_body("UNSUPPORTED_MEDIA_TYPE", "Send the body as application/json.", {}, rid), status=415
        )
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body(PayloadTooLarge.code, PayloadTooLarge.default_message, {}, rid), status=413)
    if isinstance(exc, drf_exceptions.Throttled):
        details = {"retry_after": math.ceil(exc.wait)} if exc.wait else {}
        response = Response(error_body(RateLimited.code, RateLimited.default_message, details, rid), status=429)
        if exc.wait:
            response["Retry-After"] = str(math.ceil(exc.wait))
        return response
    if isinstance(exc, drf_exceptions.APIException):
        return Response(error_body("ERROR", str(exc.detail), {}, rid), status=exc.status_code)
    logger.exception("unhandled error on %s", getattr(request, "path", "?"), extra={"request_id": rid})
    return Response(error_body(InternalError.code, InternalError.default_message, {}, rid), status=500)
