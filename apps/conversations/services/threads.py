"""Conversations as threads between one contact and one sender number."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from apps.contacts.models import Contact
from apps.conversations.models import Conversation
from apps.core.models import Workspace
from apps.core.sql import CompiledRead
from apps.wabas.models import PhoneNumber


def _current_query(workspace_id: str, contact_ids: list[str], phone_number_id: str | None, channel_kind: str):
    # One open thread per (contact, number, channel): the cnv_one_open constraint's key.
    return Conversation.objects.filter(
        workspace_id=workspace_id, contact_id__in=contact_ids, phone_number_id=phone_number_id,
        channel_kind=channel_kind,
    ).exclude(state=Conversation.State.RESOLVED).order_by("created_at")


_current_read = CompiledRead(_current_query)  # every send and every receive batch


def _current(*, workspace: Workspace, contact_ids: list[str], phone_number: PhoneNumber | None,
             channel_kind: str) -> dict[str, Conversation]:
    return {c.contact_id: c for c in _current_read(
        workspace_id=workspace.pk, contact_ids=list(contact_ids),
        phone_number_id=phone_number.pk if phone_number is not None else None, channel_kind=str(channel_kind))}


def conversations_current(*, workspace: Workspace, contact_ids: list[str], phone_number: PhoneNumber | None,
                          channel_kind: str = Conversation.ChannelKind.WHATSAPP) -> dict[str, Conversation]:
    """Each contact's current (not resolved) conversation on this number, where it has one (the read half
    of conversations_get_or_open, for a caller that looks many up before opening any)."""
    return _current(workspace=workspace, contact_ids=contact_ids, phone_number=phone_number,
                    channel_kind=channel_kind)


def conversations_get_or_open(*, workspace: Workspace, contact_ids: list[str], phone_number: PhoneNumber | None,
                              channel_kind: str = Conversation.ChannelKind.WHATSAPP,
                              now: datetime | None = None, opened_by: str = "",
                              social_account=None) -> dict[str, Conversation]:
    """Each contact's current (not resolved) conversation on this number, opening the missing ones: an
    upsert on the one-open-conversation constraint (cnv_one_open), so concurrent openers end up with the
    same row. A resolved conversation stays closed; the next message opens a new one. Call inside a
    transaction. now: the new conversations' last_message_at (None leaves it empty). opened_by: "campaign"
    keeps the new ones out of the agents' lists until the customer replies."""
    found = _current(workspace=workspace, contact_ids=contact_ids, phone_number=phone_number,
                     channel_kind=channel_kind)
    missing = [cid for cid in dict.fromkeys(contact_ids) if cid not in found]
    if missing:
        # bulk_create, not insert_statement: a campaign's chunks come in any size, and that SQL is cached per size.
        Conversation.objects.bulk_create([
            Conversation(workspace=workspace, contact_id=cid, phone_number=phone_number, channel_kind=channel_kind,
                         state=Conversation.State.OPEN, last_message_at=now, opened_by=opened_by,
                         social_account=social_account)
            for cid in missing], ignore_conflicts=True)
        # Ours, or the one a concurrent opener committed first (the insert waited for it).
        found.update(_current(workspace=workspace, contact_ids=missing, phone_number=phone_number,
                              channel_kind=channel_kind))
    return found


def conversation_get_or_open(*, workspace: Workspace, contact: Contact, phone_number: PhoneNumber | None,
                             channel_kind: str = Conversation.ChannelKind.WHATSAPP,
                             social_account=None) -> Conversation:
    """conversations_get_or_open for one contact (send, receive). social_account: a Messenger / Instagram
    thread's Page or account (its contact is that account's PSID / IGSID, so the key stays one per contact)."""
    return conversations_get_or_open(workspace=workspace, contact_ids=[contact.pk], phone_number=phone_number,
                                     channel_kind=channel_kind, social_account=social_account)[contact.pk]


def conversation_open_sql(*, source: str, columns: str, exprs: str) -> str:
    """The same upsert as SQL, for a statement that opens conversations for a set of rows (the campaign
    hand-out): INSERT … ON CONFLICT on the constraint's expression DO UPDATE, which RETURNs the existing
    row's id too when a concurrent opener committed one first."""
    table = Conversation._meta.db_table
    return (f"INSERT INTO {table} ({columns}) SELECT {exprs} FROM {source} "  # noqa: S608 - our SQL
            f"ON CONFLICT (contact_id, COALESCE(phone_number_id, ''), channel_kind) "
            f"WHERE NOT (state = '{Conversation.State.RESOLVED.value}') "
            f"DO UPDATE SET last_message_at = EXCLUDED.last_message_at RETURNING contact_id, id")


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
    if not inbound:
        # The first reply before the deadline of a click-to-WhatsApp entry opens the free entry point window.
        inbound_sets = (", entry_point_opened_at = CASE WHEN entry_point_opened_at IS NULL AND "
                        "entry_point_reply_deadline IS NOT NULL AND entry_point_reply_deadline >= %s THEN %s "
                        "ELSE entry_point_opened_at END")
        params[2:2] = [at, at]
    return (f"UPDATE {Conversation._meta.db_table} SET last_message_at = %s, last_message_preview = %s"  # noqa: S608
            f"{inbound_sets} WHERE id = {conversation_id_sql or '%s'}", params)
