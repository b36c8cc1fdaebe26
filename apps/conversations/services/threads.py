"""Conversations as threads between one contact and one sender number."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

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


def conversation_record_message(*, at: datetime, preview: str, inbound: bool,
                                conversation: Conversation | None = None, conversation_id: str | None = None) -> None:
    """Bump last activity (and the window, and unread count, for inbound) in one UPDATE. Every message
    sent or received runs it, so its SQL is written once rather than compiled on each call."""
    with connection.cursor() as cursor:
        cursor.execute(*conversation_record_message_statement(
            at=at, preview=preview, inbound=inbound, conversation=conversation, conversation_id=conversation_id))


def conversation_record_message_statement(*, at: datetime, preview: str, inbound: bool,
                                          conversation: Conversation | None = None,
                                          conversation_id: str | None = None,
                                          conversation_id_sql: str = "") -> tuple[str, list]:
    """conversation_record_message's UPDATE, unexecuted, as (sql, params). conversation_id_sql: the id as
    SQL of the statement it will run in (a scalar subquery over one of its CTEs), instead of a value."""
    inbound_sets = ", last_inbound_at = %s, unread_count = unread_count + 1" if inbound else ""
    params = [at, preview[:200], *([at] if inbound else [])]
    if not conversation_id_sql:
        params.append(conversation_id or conversation.pk)
    return (f"UPDATE {Conversation._meta.db_table} SET last_message_at = %s, last_message_preview = %s"  # noqa: S608
            f"{inbound_sets} WHERE id = {conversation_id_sql or '%s'}", params)
