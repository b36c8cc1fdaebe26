"""How contacts and the events about messages, conversations and contacts belong to a WABA
(apps.core.scoping). Here because a contact's WABAs are found through its traffic, which this app owns.

A contact belongs to a WABA when it has a conversation or a message on one of that WABA's numbers, or
was created through it (by a key bound to it, or an import by such a key)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from apps.contacts.models import ConsentRecord, Contact, ContactTag
from apps.conversations.models import Conversation, Message
from apps.core.scoping import event_waba_anchor_register, waba_scope_register


def contact_waba_q(waba_id: str, *, ref: str = "pk") -> Q:
    """Contacts (the row `ref` points at) that WABA `waba_id` may see."""
    return Q(Exists(Contact.objects.filter(pk=OuterRef(ref), created_waba_id=waba_id))) | Q(
        Exists(Conversation.objects.filter(contact_id=OuterRef(ref), phone_number__waba_id=waba_id))) | Q(
        Exists(Message.objects.filter(contact_id=OuterRef(ref), phone_number__waba_id=waba_id)))


def contacts_waba_scoped(qs: QuerySet, waba_id: str) -> QuerySet:
    return qs.filter(contact_waba_q(waba_id))


def _via_contact(qs: QuerySet, waba_id: str) -> QuerySet:
    return qs.filter(contact_waba_q(waba_id, ref="contact_id"))


def register() -> None:
    waba_scope_register(Contact, contacts_waba_scoped)
    waba_scope_register(ContactTag, _via_contact)
    waba_scope_register(ConsentRecord, _via_contact)
    event_waba_anchor_register(("message_id",), priority=20,
                               rows=lambda waba_id: Message.objects.filter(phone_number__waba_id=waba_id))
    event_waba_anchor_register(("conversation_id",), priority=30,
                               rows=lambda waba_id: Conversation.objects.filter(phone_number__waba_id=waba_id))
    for priority, path in ((60, ("contact_id",)), (61, ("contact", "id"))):
        event_waba_anchor_register(path, priority=priority,
                                   rows=lambda waba_id: contacts_waba_scoped(Contact.objects.all(), waba_id))
