"""The SMS fallback's one call site for the dispatcher and the receiver; the linked SMS itself is asked of
the policy and written by the writer (apps.conversations.services.fallback)."""

from __future__ import annotations

from datetime import datetime

from apps.conversations.models import Message
from apps.conversations.services.fallback import fallback_sms_create

__all__ = ["fallback_for", "fallback_sms_create"]


def fallback_for(*, message: Message, now: datetime) -> tuple[Message, list[tuple[str, dict]]] | None:
    """The SMS fallback when the message asks for one and has none yet: (sms, its events for the caller's
    transaction), else None (none asked for, one exists already, or the policy refused it)."""
    if not (message.fallback or {}).get("sms") or message.fallback_message_id is not None:
        return None
    events: list[tuple[str, dict]] = []
    sms = fallback_sms_create(message=message, now=now, events=events)
    if sms is None:
        return None
    return sms, events
