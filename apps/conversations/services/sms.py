"""SMS on the send and receive roads: what the gateway said when it accepted a message (segments, price),
its delivery receipts (forward only, through the status mover's receipt form, with the same events as
WhatsApp's), the final price, and inbound SMS (STOP and START through the contacts' consent keywords).

SMS threads are their own conversations (channel_kind sms) on the number the business texts from; an
inbound SMS never opens the WhatsApp customer-service window."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.conversations import events as conversation_events
from apps.conversations.models import Conversation, Message
from apps.conversations.services import threads, transitions
from apps.core.services import event_append_many

logger = logging.getLogger("reach.sms")


def _billing_charge(message: Message) -> None:
    """The gateway's price charged once (billing marks it in `cost`, saved here)."""
    from apps.billing import services as billing

    if billing.message_charge_sms(message=message) is not None:
        Message.objects.filter(pk=message.pk).update(cost=message.cost)


def _price_values(*, total: Decimal | None, currency: str, segments: int) -> dict:
    if total is None:
        return {}
    per_segment = (total / segments).quantize(Decimal("0.000001")) if segments else total
    return {"sms_price_per_segment": per_segment, "sms_price_currency": (currency or "USD")[:3]}


def sms_accepted_record(*, message: Message, segments: int | None, price: Decimal | None, price_unit: str) -> None:
    """The gateway took an SMS (the dispatcher's recording transaction): its segments, and its price when
    the gateway named it at once (then billing charges it)."""
    from apps.providers.sms import sms_segments

    count = segments or sms_segments(message.body or "").segments or 1
    values = {"sms_segments": count, **_price_values(total=price, currency=price_unit, segments=count)}
    Message.objects.filter(pk=message.pk).update(**values)
    for column, value in values.items():
        setattr(message, column, value)
    if "sms_price_per_segment" in values:
        _billing_charge(message)


@dataclass
class ReceiptResult:
    found: bool
    changed: bool = False
    after_commit: list[Callable[[], None]] = field(default_factory=list)


def sms_receipt_apply(*, provider_message_id: str, status: str, at: datetime, error_code: str = "",
                      error_message: str = "", price=None) -> ReceiptResult:
    """One delivery receipt from a live gateway (an apps.providers.sms.SmsStatusUpdate's fields). Forward
    only; a failed SMS gives its reservation back; a final one without a price gets it fetched after
    commit. found=False: no such SMS (yet: the gateway can report before the send is recorded)."""
    with transaction.atomic():
        message = (Message.objects.select_for_update()
                   .filter(provider_message_id=provider_message_id, channel=Message.Channel.SMS,
                           direction=Message.Direction.OUTBOUND, workspace__is_sandbox=False)
                   .order_by("pk").first())
        if message is None:
            return ReceiptResult(found=False)
        previous = message.status
        error = {"code": error_code or "SMS_UNDELIVERABLE", "message": error_message, "upstream_code": None} \
            if status == Message.Status.FAILED else None
        changed = bool(status) and transitions.message_receipt_apply(message=message, to=status, at=at, error=error)
        now = timezone.now()
        if changed:
            transitions.messages_receipts_save(messages=[message], now=now)
            events = transitions.status_events(message, previous, at=at) if message.status != previous else []
            if events:
                event_append_many(workspace=message.workspace, events=events)
            if message.status == Message.Status.FAILED and previous != Message.Status.FAILED:
                from apps.billing import services as billing

                if message.cost is None:
                    billing.message_reservation_release(message=message)
                    Message.objects.filter(pk=message.pk).update(cost=message.cost)
        result = ReceiptResult(found=True, changed=changed)
        if price is not None:
            _price_record(message=message, total=price.total, currency=price.currency, segments=price.segments)
        elif (message.sms_price_per_segment is None and status in (Message.Status.DELIVERED, Message.Status.FAILED)
              and previous != message.status):
            result.after_commit.append(lambda mid=message.pk: _price_fetch_enqueue(mid))
    return result


def _price_record(*, message: Message, total: Decimal, currency: str, segments: int) -> bool:
    values = {"sms_segments": segments or message.sms_segments or 1,
              **_price_values(total=total, currency=currency, segments=segments or message.sms_segments or 1)}
    if all(getattr(message, k) == v for k, v in values.items()):
        return False
    Message.objects.filter(pk=message.pk).update(**values)
    for column, value in values.items():
        setattr(message, column, value)
    _billing_charge(message)
    return True


def _price_fetch_enqueue(message_id: str) -> None:
    from apps.conversations.tasks.sms import sms_price_fetch_task

    try:
        sms_price_fetch_task.delay(message_id)
    except Exception:  # best effort: the price stays unknown, the charge falls back to the estimate
        logger.warning("could not enqueue the SMS price fetch for %s", message_id, exc_info=True)


def sms_price_fetch(*, message_id: str) -> bool:
    """Ask the gateway what a finished SMS cost (Twilio prices a message once it is final) and record it."""
    from apps.providers.sms import get_sms_gateway

    message = Message.objects.filter(pk=message_id, channel=Message.Channel.SMS,
                                     workspace__is_sandbox=False).first()
    if message is None or not message.provider_message_id or message.sms_price_per_segment is not None:
        return False
    try:
        price = get_sms_gateway(simulated=False).message_price(provider_message_id=message.provider_message_id)
    except Exception as exc:
        logger.warning("SMS price fetch for %s failed: %s", message_id, exc)
        return False
    if price is None:
        return False
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        if message.sms_price_per_segment is not None:
            return False
        return _price_record(message=message, total=price.total, currency=price.currency, segments=price.segments)


# --- inbound -------------------------------------------------------------------------------------------


@dataclass
class SmsInboundResult:
    message_id: str | None = None
    duplicate: bool = False
    ignored: str = ""
    consent: str | None = None


def sms_inbound_receive(*, provider_message_id: str, from_phone: str, to_phone: str, text: str,
                        at: datetime | None = None) -> SmsInboundResult:
    """Store one inbound SMS in the SMS conversation of the number it was sent to; STOP / START words
    go to the consent ledger (an opted-out contact gets no more SMS: policy.consent_check)."""
    from apps.contacts import services as contact_services
    from apps.contacts.services import normalize_phone
    from apps.core.errors import ValidationFailed
    from apps.wabas import selectors as waba_selectors

    number = waba_selectors.phone_number_for_sms(to_phone=to_phone)
    if number is None:
        return SmsInboundResult(ignored="unknown number")
    try:
        phone = normalize_phone(from_phone, field="from")
    except ValidationFailed:
        return SmsInboundResult(ignored="sender is not an E.164 number")
    workspace = number.workspace
    now = timezone.now()
    at = min(at or now, now)
    with transaction.atomic():
        contact, _ = contact_services.contact_upsert_from_inbound(workspace=workspace, phone=phone, wa_id=None,
                                                                 bsuid=None, profile_name=None)
        if Message.objects.filter(workspace=workspace, provider_message_id=provider_message_id).exists():
            return SmsInboundResult(duplicate=True)
        conversation = threads.conversation_get_or_open(workspace=workspace, contact=contact, phone_number=number,
                                                        channel_kind=Conversation.ChannelKind.SMS)
        message = Message.objects.create(
            workspace=workspace, conversation=conversation, contact=contact, phone_number=number,
            direction=Message.Direction.INBOUND, channel=Message.Channel.SMS, type="text",
            to_phone=number.display_phone_number[:20], content={"body": text}, body=text,
            status=Message.Status.RECEIVED, provider_message_id=provider_message_id, sent_by="customer",
        )
        threads.conversation_record_message(conversation=conversation, at=at, preview=text or "[sms]", inbound=True)
        keyword = None
        if text:
            keyword = contact_services.consent_from_inbound_text(contact=contact, text=text,
                                                                inbound_message_id=message.pk)
        event_append_many(workspace=workspace, events=[("message.inbound", conversation_events.message_inbound(
            message=message, contact=contact, sender=phone, wa_id=None, profile_name=None, timestamp=at,
            received_at=now))])
        from apps.conversations.services.push import push_inbound_enqueue

        transaction.on_commit(lambda mid=message.pk: push_inbound_enqueue(mid))
    return SmsInboundResult(message_id=message.pk, consent=keyword)
