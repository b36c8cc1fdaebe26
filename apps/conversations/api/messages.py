"""POST/GET /api/v1/messages, GET /api/v1/messages/{id}, POST /api/v1/messages/{id}/cancel."""

from __future__ import annotations

from rest_framework.response import Response

from apps.conversations.api.schemas_messages import (
    MESSAGE_STATUSES,
    SEND_EXAMPLES,
    MessageAcceptedSerializer,
    MessageSendSerializer,
    MessageSerializer,
)
from apps.conversations.events import message_error, public_status
from apps.conversations.models import Message
from apps.conversations.policy import SOCIAL_CHANNELS
from apps.conversations.selectors.messages import messages_list
from apps.conversations.services.sending import message_cancel, message_send
from apps.core.api.base import ApiView
from apps.core.api.docs import PAGE_PARAMETERS, api_doc, paginated, query
from apps.core.errors import ValidationFailed


def _ts(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _address(to: str, channel: str = "whatsapp") -> dict:
    """`to` (E.164), and `recipient` (the business-scoped user id, or the Messenger PSID / Instagram IGSID)
    when the message went to one (API.md Identity): a message to a BSUID answers `"to": null`."""
    if to and channel in SOCIAL_CHANNELS and not to.startswith("+"):
        return {"to": None, "recipient": to}
    if to and not to.startswith("+") and "." in to and "@" not in to:  # an email's `to` is its address
        return {"to": None, "recipient": to}
    return {"to": to}


def accepted_out(message: Message) -> dict:
    """The 202 body (API.md)."""
    out = {"id": message.pk, "status": public_status(message.status), "channel": message.channel,
           **_address(message.to_phone, message.channel), "type": message.type, "cost_estimate": f"{message.cost_estimate:.4f}", "currency": message.currency,
           "created_at": _ts(message.created_at)}
    if message.scheduled_at:
        out["scheduled_at"] = _ts(message.scheduled_at)
    if message.client_reference:
        out["client_reference"] = message.client_reference
    return out


def message_out(message: Message) -> dict:
    error = message_error(message)
    return {
        "id": message.pk, "status": public_status(message.status), "direction": message.direction,
        "channel": message.channel, "type": message.type, **_address(message.to_phone, message.channel),
        "phone_number_id": message.phone_number_id, "social_account_id": message.social_account_id,
        "contact_id": message.contact_id,
        "content": message.content, "body": message.body, "media_id": message.media_id,
        "scheduled_at": _ts(message.scheduled_at), "sent_at": _ts(message.sent_at),
        "delivered_at": _ts(message.delivered_at), "read_at": _ts(message.read_at),
        "failed_at": _ts(message.failed_at), "canceled_at": _ts(message.canceled_at),
        "provider_message_id": message.provider_message_id, "error": error, "attempts": message.attempts,
        "cost_estimate": f"{message.cost_estimate:.4f}",
        "cost": f"{message.cost:.4f}" if message.cost is not None else None, "currency": message.currency,
        "conversation_id": message.conversation_id, "campaign_id": message.campaign_id or None,
        "client_reference": message.client_reference or None, "fallback_message_id": message.fallback_message_id,
        "fallback_for_message_id": message.fallback_for_id,
        "sms_segments": message.sms_segments,
        "sent_by": message.sent_by_user_id or message.sent_by, "created_at": _ts(message.created_at),
    }


class MessagesView(ApiView):
    scopes = {"POST": "messages:send", "GET": "messages:read"}

    @api_doc(
        operation_id="messages_send", summary="Send a message",
        description="Sends one message (scope `messages:send`) and answers **202** as soon as it is stored and "
        "queued; delivery is reported by `message.*` events and `GET /api/v1/messages/{id}`. The policy is "
        "checked before the 202, in this order: payload → sender → template status, language and variables → "
        "24-hour customer service window (every non-template type) → consent (MARKETING) → wallet. `type` may "
        "be omitted when exactly one message object is present. With a sandbox key (`ak_test_…`) the built-in "
        "simulator answers like Meta: nothing leaves the machine.",
        request=MessageSendSerializer, examples=SEND_EXAMPLES,
        responses={202: (MessageAcceptedSerializer, "Stored and queued (or scheduled).")}, errors=(402, 422),
    )
    def post(self, request):
        if not isinstance(request.data, dict):
            raise ValidationFailed("The body must be a JSON object.", field="")
        message = message_send(tenant=self.tenant, data=request.data,
                               audit=self.audit_in_write(status_code=202, target_type="message"))
        self.audit_target = ("message", message.pk)
        return Response(accepted_out(message), status=202)

    @api_doc(
        operation_id="messages_list", summary="List messages",
        description="Messages of the caller's workspace (or sandbox), newest first, cursor-paginated.",
        parameters=[*PAGE_PARAMETERS, query("status", enum=MESSAGE_STATUSES), query("to", description="E.164, or an email address"),
                    query("campaign_id"), query("client_reference")],
        responses={200: paginated(MessageSerializer)},
    )
    def get(self, request):
        qs = messages_list(queryset=self.scoped(Message), params=request.query_params)
        return self.paginated(qs, message_out)


class MessageDetailView(ApiView):
    scopes = {"GET": "messages:read"}

    @api_doc(operation_id="messages_get", summary="Get a message",
             description="One message with its status timeline, error (when failed), attempts and cost.",
             responses={200: MessageSerializer})
    def get(self, request, pk: str):
        return Response(message_out(self.get_scoped(Message, pk)))


class MessageCancelView(ApiView):
    scopes = {"POST": "messages:send"}

    @api_doc(operation_id="messages_cancel", summary="Cancel a scheduled message",
             description="Cancels a message still in `scheduled`; any other status is 409 CONFLICT.",
             request=None, responses={200: MessageSerializer})
    def post(self, request, pk: str):
        message = message_cancel(workspace=self.tenant.workspace, message_id=pk, waba_id=self.tenant.waba_id)
        self.audit_target = ("message", message.pk)
        return Response(message_out(message))
