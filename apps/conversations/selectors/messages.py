"""Reads of messages."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.conversations.models import Message
from apps.core.errors import ValidationFailed
from apps.core.models import Workspace

_STATUSES = {s for s in Message.Status.values if s != Message.Status.SENDING}


def messages_list(*, queryset: QuerySet[Message], params) -> QuerySet[Message]:
    """Filters status, to, campaign_id, client_reference, direction on an already tenant-scoped queryset."""
    qs = queryset
    status = params.get("status")
    if status:
        if status not in _STATUSES:
            raise ValidationFailed(f"status must be one of {', '.join(sorted(_STATUSES))}.", field="status")
        qs = qs.filter(status__in=[Message.Status.QUEUED, Message.Status.SENDING]) \
            if status == Message.Status.QUEUED else qs.filter(status=status)
    if params.get("to"):
        from apps.contacts.services import normalize_phone

        to = params["to"]
        # An email address filters email messages (stored lower-cased); anything else is a phone.
        qs = qs.filter(to_phone=to.strip().lower() if "@" in to else normalize_phone(to, field="to"))
    for name in ("campaign_id", "client_reference", "direction"):
        if params.get(name):
            qs = qs.filter(**{name: params[name]})
    return qs


def message_get(*, workspace: Workspace, message_id: str) -> Message | None:
    return Message.objects.filter(workspace=workspace, pk=message_id).first()



def sandbox_open_windows(*, since) -> list[tuple[str, str, float]]:
    """(Meta phone number id, wa_id, epoch of the customer's last message) for every sandbox conversation
    whose customer wrote since `since`: what the in-process simulator rebuilds its window records from."""
    from apps.conversations.models import Conversation

    rows = (Conversation.objects.filter(workspace__is_sandbox=True, last_inbound_at__gte=since,
                                        phone_number__isnull=False)
            .values_list("phone_number__meta_phone_number_id", "contact__wa_id", "contact__phone", "last_inbound_at"))
    out = []
    for pnid, wa_id, phone, at in rows.iterator():
        digits = "".join(ch for ch in (wa_id or phone or "") if ch.isdigit())
        if digits and pnid:
            out.append((pnid, digits, at.timestamp()))
    return out
