"""The typing indicator: while an agent types, the customer sees "typing…" (Meta: a read receipt on their
last message carrying typing_indicator {type: text}; it shows for up to 25 s or until our reply)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from apps.conversations.models import Conversation, Message
from apps.core.redis import get_redis

logger = logging.getLogger("reach.inbox.typing")
RESEND_SECONDS = 20  # Meta shows it for 25 s: one call per 20 s of typing keeps it up without a call per key


def conversation_typing(*, conversation: Conversation) -> bool:
    """Show the typing indicator on the customer's last message. False (nothing sent) outside the window,
    on SMS, without a customer message, or when Meta refused; True when shown (or shown < 20 s ago)."""
    from apps.conversations.selectors.conversations import window_expires_at
    from apps.providers.base import ProviderError
    from apps.providers.registry import whatsapp_provider
    from apps.wabas.services import waba_access_token

    if not settings.INBOX_TYPING_INDICATOR:
        return False
    if conversation.channel_kind != Conversation.ChannelKind.WHATSAPP or conversation.phone_number_id is None:
        return False
    if window_expires_at(conversation, now=timezone.now()) is None:
        return False
    wamid = (Message.objects.filter(conversation=conversation, direction=Message.Direction.INBOUND,
                                    provider_message_id__isnull=False)
             .order_by("-created_at").values_list("provider_message_id", flat=True).first())
    if not wamid:
        return False
    if not get_redis().set(f"reach:typing:{conversation.pk}", "1", nx=True, ex=RESEND_SECONDS):
        return True  # still showing from the last call
    number = conversation.phone_number
    waba = number.waba
    simulated = waba.is_simulated
    try:
        return whatsapp_provider(simulated=simulated).mark_read(
            phone_number_id=number.meta_phone_number_id, access_token="" if simulated else waba_access_token(waba),
            wamid=wamid, typing=True)
    except ProviderError as exc:
        get_redis().delete(f"reach:typing:{conversation.pk}")
        logger.info("typing indicator for %s refused: %s", conversation.pk, exc)
        return False
