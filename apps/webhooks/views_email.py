"""Email provider -> us: POST /webhooks/email/<token>, a provider's inbound route (the path's token is the
channel's inbound_token, a secret only the provider is given). The body is either the raw RFC 822 mail
(Content-Type message/rfc822, or text/plain / application/octet-stream) or JSON: {"raw": "<the RFC 822 mail>"}
or the parsed shape {"from", "to", "subject", "text", "html", "message_id", "in_reply_to", "references"}.
Bounces (delivery-status reports) come the same way. Thin: parse, find the channel, call one service."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from apps.conversations.services import email as email_services
from apps.core.errors import json_error
from apps.wabas.selectors import email_channel_for_token
from apps.webhooks.views_sms import require_post


def _raw_mail(request: HttpRequest, body: bytes) -> tuple[bytes | None, HttpResponse | None]:
    ctype = (request.content_type or "").lower()
    if ctype != "application/json":
        return body, None
    try:
        data = json.loads(body)
    except ValueError:
        return None, json_error(request, 400, "INVALID_JSON", "The request body is not valid JSON.")
    if not isinstance(data, dict):
        return None, json_error(request, 400, "VALIDATION_FAILED", "Expected a JSON object.", {"field": "body"})
    if "raw" in data:
        if not isinstance(data["raw"], str) or not data["raw"].strip():
            return None, json_error(request, 400, "VALIDATION_FAILED", "raw must be the mail's text.", {"field": "raw"})
        return data["raw"].encode("utf-8", errors="surrogateescape"), None
    try:
        return email_services.email_inbound_json_to_raw(data), None
    except ValueError as exc:
        field = str(exc) or "from"
        return None, json_error(request, 400, "VALIDATION_FAILED", f"{field} is missing or not valid.",
                                {"field": field})


@csrf_exempt
@require_post
def email_inbound(request: HttpRequest, token: str) -> HttpResponse:
    channel = email_channel_for_token(token)
    if channel is None:
        return json_error(request, 404, "NOT_FOUND", "No email channel has this inbound token.")
    limit = settings.EMAIL_INBOUND_MAX_BYTES
    body = request.read(limit + 1)
    if len(body) > limit:
        return json_error(request, 413, "PAYLOAD_TOO_LARGE", f"The body is over {limit} bytes.")
    if not body.strip():
        return json_error(request, 400, "VALIDATION_FAILED", "The body is empty.", {"field": "body"})
    raw, error = _raw_mail(request, body)
    if error:
        return error
    result = email_services.email_inbound_receive(channel=channel, raw=raw)
    if result.ignored and not result.bounced_message_id and not result.message_id:
        if result.ignored.startswith("a bounce"):
            return HttpResponse(json.dumps({"ignored": result.ignored}), content_type="application/json")
        return json_error(request, 400, "VALIDATION_FAILED", f"Not a mail: {result.ignored}", {"field": "body"})
    return HttpResponse(json.dumps({"message_id": result.message_id, "duplicate": result.duplicate,
                                    "bounced_message_id": result.bounced_message_id}),
                        content_type="application/json")
