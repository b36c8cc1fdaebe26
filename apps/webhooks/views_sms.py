"""SMS gateways -> us: delivery receipts and inbound SMS.

/webhooks/sms/twilio/status and /webhooks/sms/twilio/inbound take Twilio's form posts, checked against
X-Twilio-Signature (HMAC-SHA1 with TWILIO_AUTH_TOKEN over REACH_PUBLIC_URL + path + the sorted
parameters). /webhooks/sms/http/status and /webhooks/sms/http/inbound take the generic gateway's JSON,
checked against X-Reach-Sms-Signature (HMAC-SHA256 with SMS_HTTP_WEBHOOK_SECRET). A receipt for an SMS
not recorded yet (the gateway can be faster than our commit) answers 503 with Retry-After, which Twilio
retries when the callback URL asks it to (connection overrides) and the generic gateways do by habit.
Thin: parse, verify, call one conversations service."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from apps.conversations.services import sms as sms_services
from apps.core.errors import json_error
from apps.providers.sms import http_json, twilio

_TWIML_EMPTY = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_BYTES = 64 * 1024


def require_post(view):
    """POST only; anything else gets the API.md envelope's 405."""

    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            response = json_error(request, 405, "METHOD_NOT_ALLOWED", "Use POST.")
            response["Allow"] = "POST"
            return response
        return view(request, *args, **kwargs)

    wrapped.__name__, wrapped.__doc__ = view.__name__, view.__doc__
    return wrapped


def _twilio_params(request: HttpRequest) -> dict[str, str] | None:
    params = {k: request.POST.get(k, "") for k in request.POST}
    url = settings.REACH_PUBLIC_URL + request.get_full_path()
    if not twilio.twilio_signature_valid(auth_token=settings.TWILIO_AUTH_TOKEN, url=url, params=params,
                                         signature=request.headers.get("X-Twilio-Signature")):
        return None
    return params


def _bad_signature(request: HttpRequest, header: str) -> HttpResponse:
    return json_error(request, 401, "INVALID_SIGNATURE", f"{header} is missing or does not match.")


def _receipt(request: HttpRequest, update) -> HttpResponse:
    if update is None:
        return json_error(request, 400, "VALIDATION_FAILED", "Not a delivery receipt.", {"field": "status"})
    result = sms_services.sms_receipt_apply(provider_message_id=update.provider_message_id, status=update.status,
                                            at=update.at, error_code=update.error_code,
                                            error_message=update.error_message, price=update.price)
    if not result.found:
        response = json_error(request, 503, "NOT_RECORDED_YET", "No such SMS yet; retry shortly.")
        response["Retry-After"] = "1"
        return response
    for callback in result.after_commit:
        callback()
    return HttpResponse(status=204)


@csrf_exempt
@require_post
def twilio_status(request: HttpRequest) -> HttpResponse:
    params = _twilio_params(request)
    if params is None:
        return _bad_signature(request, "X-Twilio-Signature")
    return _receipt(request, twilio.parse_status_callback(params))


@csrf_exempt
@require_post
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    params = _twilio_params(request)
    if params is None:
        return _bad_signature(request, "X-Twilio-Signature")
    item = twilio.parse_inbound(params)
    if item is None:
        return json_error(request, 400, "VALIDATION_FAILED", "Not an inbound SMS.", {"field": "MessageSid"})
    sms_services.sms_inbound_receive(provider_message_id=item.provider_message_id, from_phone=item.from_phone,
                                     to_phone=item.to_phone, text=item.text, at=item.at)
    return HttpResponse(_TWIML_EMPTY, content_type="text/xml")


def _http_json(request: HttpRequest) -> tuple[dict | None, HttpResponse | None]:
    body = request.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        return None, json_error(request, 413, "PAYLOAD_TOO_LARGE", f"The body is over {MAX_BYTES} bytes.")
    if not http_json.http_signature_valid(secret=settings.SMS_HTTP_WEBHOOK_SECRET, body=body,
                                          header=request.headers.get(http_json.SIGNATURE_HEADER)):
        return None, _bad_signature(request, http_json.SIGNATURE_HEADER)
    try:
        data = json.loads(body)
    except ValueError:
        return None, json_error(request, 400, "INVALID_JSON", "The request body is not valid JSON.")
    if not isinstance(data, dict):
        return None, json_error(request, 400, "VALIDATION_FAILED", "Expected a JSON object.", {"field": "body"})
    return data, None


@csrf_exempt
@require_post
def http_status(request: HttpRequest) -> HttpResponse:
    data, error = _http_json(request)
    return error or _receipt(request, http_json.parse_receipt(data))


@csrf_exempt
@require_post
def http_inbound(request: HttpRequest) -> HttpResponse:
    data, error = _http_json(request)
    if error:
        return error
    item = http_json.parse_inbound(data)
    if item is None:
        return json_error(request, 400, "VALIDATION_FAILED", "Not an inbound SMS.", {"field": "from"})
    result = sms_services.sms_inbound_receive(provider_message_id=item.provider_message_id, from_phone=item.from_phone,
                                              to_phone=item.to_phone, text=item.text, at=item.at)
    return HttpResponse(json.dumps({"message_id": result.message_id, "duplicate": result.duplicate,
                                    "ignored": result.ignored}), content_type="application/json")
