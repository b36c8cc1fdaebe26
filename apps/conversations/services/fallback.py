"""The SMS fallback chain: the linked SMS for a WhatsApp message that asked for one (`fallback.sms`).

When it goes (`fallback.after`):
- `failed` (the default): on any terminal WhatsApp failure — the dispatcher's terminal error, expiry in
  the queue, or Meta's late `failed` status;
- `undelivered`: the same, and also when WhatsApp has not delivered `wait_seconds` after the release
  (`fallback_due_at`, swept by `fallbacks_due_send`); a message still queued then is failed
  (FALLBACK_SENT_INSTEAD) so WhatsApp never goes after its SMS.

Exactly one SMS per message: the message's row is locked by whoever decides (the dispatcher's CAS, the
receiver's and the sweeper's SELECT … FOR UPDATE), `fallback_message_id` is checked under that lock, and
a unique constraint on `fallback_for` backs it. Linked both ways (`fallback_message` / `fallback_for`).
Billed once: the WhatsApp message's reservation is released when its SMS goes, and a late WhatsApp
delivery after that is recorded (status, delivered_at, pricing) but not charged (receipts.message_statuses_apply, transitions.billing_charge).

The SMS asks the policy for its own channel's rules and is written by the one writer, in the caller's
transaction."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from apps.conversations import policy
from apps.conversations.models import Message
from apps.conversations.services import transitions, writer
from apps.core.errors import ApplicationError

logger = logging.getLogger("reach.fallback")

FAILED, UNDELIVERED = "failed", "undelivered"
_INSTEAD = {"code": "FALLBACK_SENT_INSTEAD",
            "message": "Not delivered on WhatsApp in time; the SMS fallback was sent instead.", "upstream_code": None}


def fallback_wanted(message: Message) -> bool:
    """Does this message ask for an SMS and not have one yet?"""
    return (message.channel == Message.Channel.WHATSAPP and bool((message.fallback or {}).get("sms"))
            and message.fallback_message_id is None)


def fallback_sms_create(*, message: Message, now: datetime, events: list | None = None) -> Message | None:
    """The SMS, queued and linked from `message` (fallback_message) and to it (fallback_for), or None when
    the policy refuses it (nothing written). Call inside the transaction that holds `message`'s row lock;
    events: the caller's batch of events for that transaction (else the creation event is appended here)."""
    try:
        ctx = policy.fallback_context(message=message, now=now)
        sms = writer.message_write(ctx, sent_by=message.sent_by, api_key_id=message.api_key_id,
                                   client_reference=message.client_reference, campaign_id=message.campaign_id,
                                   fallback_for=message.pk, events=events)
    except ApplicationError as exc:
        logger.info("SMS fallback for %s refused: %s %s", message.pk, exc.code, exc.message)
        return None
    Message.objects.filter(pk=message.pk).update(fallback_message=sms, fallback_due_at=None)
    message.fallback_message_id = sms.pk
    from apps.billing import services as billing

    if message.cost is None:  # the SMS is what this send costs now; the release is written once
        billing.message_reservation_release(message=message)
        Message.objects.filter(pk=message.pk).update(cost=message.cost)
    return sms


def fallback_for(*, message: Message, now: datetime) -> tuple[Message, list[tuple[str, dict]]] | None:
    """The SMS fallback when the message asks for one and has none yet: (sms, its events for the caller's
    transaction), else None (none asked for, one exists already, or the policy refused it)."""
    if not fallback_wanted(message):
        return None
    events: list[tuple[str, dict]] = []
    sms = fallback_sms_create(message=message, now=now, events=events)
    if sms is None:
        return None
    return sms, events


def fallbacks_due_send(*, now: datetime | None = None, limit: int = 500) -> int:
    """Beat job: `undelivered` fallbacks whose wait ran out while WhatsApp had not delivered. A message
    claimed by a dispatcher right now is left for the next round."""
    now = now or timezone.now()
    done = 0
    with transaction.atomic():
        qs = (Message.objects.select_related("workspace", "phone_number", "contact")
              .filter(fallback_due_at__lte=now, fallback_message__isnull=True,
                      status__in=(Message.Status.QUEUED, Message.Status.SENT))
              .order_by("fallback_due_at"))
        if connection.vendor == "postgresql":
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        else:
            qs = qs.select_for_update()
        events: dict[str, list] = {}
        for message in qs[:limit]:
            if message.status == Message.Status.QUEUED and not transitions.message_transition(
                    message=message, to=Message.Status.FAILED, at=now, error=_INSTEAD, events=events):
                continue
            linked = fallback_for(message=message, now=now)
            if linked is None:
                Message.objects.filter(pk=message.pk).update(fallback_due_at=None)
                continue
            events.setdefault(message.workspace_id, []).extend(linked[1])
            done += 1
        transitions.events_flush(events)
    return done
