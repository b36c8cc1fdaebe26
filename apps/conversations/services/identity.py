"""One person, one contact (API.md "Identity"): when Meta ties a phone contact and a business-scoped user id
(BSUID) contact together (an inbound that carries both), the two rows are merged.

The conversations' half lives here (conversations and messages move to the survivor); the contacts' half
(tags, custom fields, consent, identity, the erase and `contact.merged`) is contacts.services.contact_absorb.
Runs inside the caller's transaction (the receive road's)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max

from apps.contacts import services as contact_services
from apps.contacts.models import Contact
from apps.conversations.models import Conversation, ConversationNote, Message
from apps.core.models import Workspace


def contact_split_find(*, workspace: Workspace, contact: Contact, bsuid: str | None) -> Contact | None:
    """The other row of a person Meta now names with both a phone and a BSUID: a contact holding the BSUID
    that is not `contact` (the phone's)."""
    if not bsuid or contact.bsuid == bsuid:
        return None
    return Contact.objects.filter(workspace=workspace, bsuid=bsuid).exclude(pk=contact.pk).first()


@transaction.atomic(savepoint=False)
def contact_merge(*, workspace: Workspace, survivor: Contact, absorbed: Contact, reason: str = "inbound") -> dict:
    """Fold `absorbed` into `survivor`. A conversation of the absorbed contact moves to the survivor; when
    both have a current (not resolved) one on the same number and channel, the absorbed one's messages join
    the survivor's and the emptied conversation is removed (one open conversation per contact, number and
    channel). Returns the `contact.merged` data."""
    mine = {(c.phone_number_id, c.channel_kind): c for c in Conversation.objects.select_for_update().filter(
        workspace=workspace, contact=survivor).exclude(state=Conversation.State.RESOLVED)}
    for conv in Conversation.objects.select_for_update().filter(workspace=workspace, contact=absorbed):
        target = mine.get((conv.phone_number_id, conv.channel_kind))
        if conv.state != Conversation.State.RESOLVED and target is not None:
            Message.objects.filter(conversation=conv).update(conversation=target, contact=survivor)
            ConversationNote.objects.filter(conversation=conv).update(conversation=target)
            agg = Message.objects.filter(conversation=target).aggregate(
                last=Max("created_at"), last_in=Max("created_at", filter=_inbound()))
            Conversation.objects.filter(pk=target.pk).update(
                last_message_at=max(x for x in (agg["last"], target.last_message_at, conv.last_message_at) if x),
                last_inbound_at=agg["last_in"] or target.last_inbound_at or conv.last_inbound_at,
                unread_count=target.unread_count + conv.unread_count)
            conv.delete()
        else:
            Conversation.objects.filter(pk=conv.pk).update(contact=survivor)
    Message.objects.filter(workspace=workspace, contact=absorbed).update(contact=survivor)
    return contact_services.contact_absorb(survivor=survivor, absorbed=absorbed, reason=reason)


def _inbound():
    from django.db.models import Q

    return Q(direction=Message.Direction.INBOUND)
