"""Conversations as threads between one contact and one sender number."""

from __future__ import annotations

from datetime import datetime

from apps.contacts.models import Contact
from apps.conversations.models import Conversation
from apps.core.models import Workspace
from apps.wabas.models import PhoneNumber


def conversation_get_or_open(*, workspace: Workspace, contact: Contact, phone_number: PhoneNumber | None,
                             channel_kind: str = Conversation.ChannelKind.WHATSAPP) -> Conversation:
    """The contact's current conversation on this number, or a new open one. A resolved conversation
    stays closed; the next message opens a new one (the sidebar lists previous conversations).
    Call inside a transaction; opening one locks the contact row so two writers cannot both open one."""
    def current() -> Conversation | None:
        return (
            Conversation.objects.filter(workspace=workspace, contact=contact, phone_number=phone_number,
                                        channel_kind=channel_kind)
            .exclude(state=Conversation.State.RESOLVED)
            .order_by("-created_at")
            .first()
        )

    # The common case (an open thread exists) needs no lock; only opening one does.
    found = current()
    if found is not None:
        return found
    Contact.objects.select_for_update().filter(pk=contact.pk).first()
    found = current()
    if found is not None:
        return found
    return Conversation.objects.create(workspace=workspace, contact=contact, phone_number=phone_number,
                                       channel_kind=channel_kind, state=Conversation.State.OPEN)


def conversation_record_message(*, conversation: Conversation, at: datetime, preview: str, inbound: bool) -> None:
    """Bump last activity (and the window, and unread count, for inbound) in one UPDATE."""
    from django.db.models import F

    updates = {"last_message_at": at, "last_message_preview": preview[:200]}
    if inbound:
        updates["last_inbound_at"] = at
        updates["unread_count"] = F("unread_count") + 1
    Conversation.objects.filter(pk=conversation.pk).update(**updates)
