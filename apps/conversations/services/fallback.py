"""The SMS fallback: the linked SMS for a WhatsApp message that cannot reach the recipient (the
dispatcher's terminal not-on-WhatsApp error, or Meta's late `failed` status). It asks the policy for its
own channel's rules and is written by the one writer, in the caller's transaction."""

from __future__ import annotations

import logging
from datetime import datetime

from apps.conversations import policy
from apps.conversations.models import Message
from apps.conversations.services import writer
from apps.core.errors import ApplicationError

logger = logging.getLogger("reach.fallback")


def fallback_sms_create(*, message: Message, now: datetime, events: list | None = None) -> Message | None:
    """The SMS, queued and linked from `message` (fallback_message), or None when the policy refuses it
    (nothing written). Call inside the failure's transaction; events: the caller's batch of events for
    that transaction (else the creation event is appended here)."""
    try:
        ctx = policy.fallback_context(message=message, now=now)
        sms = writer.message_write(ctx, sent_by=message.sent_by, api_key_id=message.api_key_id,
                                   client_reference=message.client_reference, campaign_id=message.campaign_id,
                                   fallback_for=message.pk, events=events)
    except ApplicationError as exc:
        logger.info("SMS fallback for %s refused: %s %s", message.pk, exc.code, exc.message)
        return None
    Message.objects.filter(pk=message.pk).update(fallback_message=sms)
    message.fallback_message_id = sms.pk
    return sms
