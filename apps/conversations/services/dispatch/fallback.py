"""The SMS fallback of a WhatsApp message that cannot reach its recipient: the one call site the dispatcher
and the receiver use (the writer of the linked SMS may move; point this module at it)."""

from __future__ import annotations

from datetime import datetime, timedelta

from apps.conversations.models import Message
from apps.conversations.services.dispatch.base import _setting
from apps.conversations.services.transitions import status_events


def fallback_sms_create(*, message: Message, now: datetime) -> Message:
    """The linked SMS for a WhatsApp message that cannot reach the recipient (call inside the failure's
    transaction; the dispatcher sends it like any queued message)."""
    return _fallback_sms(message, now)


def _fallback_sms(m: Message, now: datetime) -> Message:
    sms_cfg = m.fallback["sms"]
    sms = Message.objects.create(
        workspace_id=m.workspace_id, conversation_id=m.conversation_id, contact_id=m.contact_id,
        phone_number_id=m.phone_number_id, direction=Message.Direction.OUTBOUND, channel=Message.Channel.SMS,
        type="text", to_phone=m.to_phone, content={"body": sms_cfg["text"], "sender": sms_cfg.get("sender", "")},
        body=sms_cfg["text"], status=Message.Status.QUEUED, client_reference=m.client_reference,
        campaign_id=m.campaign_id, sent_by=m.sent_by, api_key_id=m.api_key_id, next_attempt_at=now,
        expires_at=now + timedelta(seconds=_setting("DISPATCH_MAX_AGE_SECONDS", 86400)), currency=m.currency,
    )
    Message.objects.filter(pk=m.pk).update(fallback_message=sms)
    return sms


def fallback_sms_events(*, message: Message, sms: Message) -> list[tuple[str, dict]]:
    """The linked SMS's own `queued` event."""
    return status_events(sms, None, extra={"fallback_for": message.pk})


def fallback_for(*, message: Message, now: datetime) -> tuple[Message, list[tuple[str, dict]]] | None:
    """The SMS fallback when the message asks for one and has none yet: (sms, its events), else None."""
    if not (message.fallback or {}).get("sms") or message.fallback_message_id is not None:
        return None
    sms = _fallback_sms(message, now)
    message.fallback_message_id = sms.pk
    return sms, fallback_sms_events(message=message, sms=sms)
