"""Messenger and Instagram on the receive road: inbound messages (a customer's PSID / IGSID on a connected
Page or Instagram account) into that account's thread in the shared inbox, and delivery / read receipts
through the status mover's receipt form, with the same events as WhatsApp's. The social channels' reply
window is per thread (policy.CHANNEL_WINDOWS); an inbound message here never opens WhatsApp's."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from apps.conversations import events as conversation_events
from apps.conversations.models import Message
from apps.conversations.services import threads, transitions
from apps.core.services import event_append_many

S = Message.Status


@dataclass
class SocialApplied:
    inbound: int = 0
    duplicates: int = 0
    receipts: int = 0
    ignored: list = field(default_factory=list)
    after_commit: list = field(default_factory=list)


def _account(channel: str, meta_account_id: str):
    from apps.wabas.selectors import social_account_for_webhook

    return social_account_for_webhook(channel=channel, meta_account_id=meta_account_id)


def social_inbound_receive(*, item, received_at=None, out: SocialApplied) -> None:
    """One inbound message (providers.meta_social.webhooks.SocialInbound). Runs in the caller's transaction;
    a repeated mid is a duplicate (Meta redelivers)."""
    from apps.contacts import services as contact_services
    from apps.conversations.services.push import push_inbound_enqueue

    account = _account(item.channel, item.account_id)
    if account is None:
        out.ignored.append({"mid": item.mid, "reason": f"unknown {item.channel} account {item.account_id}"})
        return
    workspace = account.workspace
    now = timezone.now()
    at = min(item.timestamp, now)
    if Message.objects.filter(workspace=workspace, provider_message_id=item.mid).exists():
        out.duplicates += 1
        return
    # Meta shares no name or phone on these channels (its profile API is a separate call): a readable
    # placeholder the agent can rename.
    contact = contact_services.contact_from_social_inbound(
        workspace=workspace, account=account, user_id=item.sender_id,
        name=f"{account.get_channel_display()} customer {item.sender_id[-4:]}")
    conversation = threads.conversation_get_or_open(workspace=workspace, contact=contact, phone_number=None,
                                                    channel_kind=item.channel, social_account=account)
    message = Message.objects.create(
        workspace=workspace, conversation=conversation, contact=contact, social_account=account,
        direction=Message.Direction.INBOUND, channel=item.channel, type=item.type,
        to_phone=account.meta_account_id, content=item.content, body=item.body, status=S.RECEIVED,
        provider_message_id=item.mid, sent_by="customer",
    )
    threads.conversation_record_message(conversation=conversation, at=at, preview=item.body or f"[{item.type}]",
                                        inbound=True)
    event_append_many(workspace=workspace, events=[("message.inbound", conversation_events.message_inbound(
        message=message, contact=contact, sender=item.sender_id, wa_id=None, profile_name=None, timestamp=at,
        received_at=received_at or now))])
    out.inbound += 1
    out.after_commit.append(lambda mid=message.pk: push_inbound_enqueue(mid))


def social_receipt_apply(*, item, out: SocialApplied) -> None:
    """A delivery or read receipt: by mids, or (Messenger) by watermark — every message of the account's
    thread with this customer sent up to that time. Forward only; events as WhatsApp's."""
    from apps.contacts.models import SocialIdentity

    account = _account(item.channel, item.account_id)
    if account is None:
        out.ignored.append({"mids": list(item.mids), "reason": f"unknown {item.channel} account"})
        return
    qs = Message.objects.select_for_update().filter(
        workspace=account.workspace, social_account=account, direction=Message.Direction.OUTBOUND,
        channel=item.channel)
    if item.mids:
        qs = qs.filter(provider_message_id__in=item.mids)
    else:
        contact_ids = SocialIdentity.objects.filter(account=account, user_id=item.recipient_id).values("contact_id")
        qs = qs.filter(contact_id__in=contact_ids, sent_at__lte=item.watermark,
                       status__in=[S.SENT, S.DELIVERED] if item.status == S.READ else [S.SENT])
    changed = []
    events = []
    for message in qs.order_by("pk"):
        previous = message.status
        if transitions.message_receipt_apply(message=message, to=item.status, at=item.timestamp):
            changed.append(message)
            if message.status != previous:
                events.extend(transitions.status_events(message, previous, at=item.timestamp))
    if changed:
        transitions.messages_receipts_save(messages=changed, now=timezone.now())
        if events:
            event_append_many(workspace=account.workspace, events=events)
    out.receipts += len(changed)


def social_payload_apply(*, payload: dict, received_at=None) -> SocialApplied:
    """A whole page / instagram webhook payload, in the caller's transaction."""
    from apps.providers.meta_social.webhooks import SocialInbound, parse_social_webhook

    out = SocialApplied()
    for item in parse_social_webhook(payload):
        if isinstance(item, SocialInbound):
            social_inbound_receive(item=item, received_at=received_at, out=out)
        else:
            social_receipt_apply(item=item, out=out)
    return out


def sandbox_social_inbound_simulate(*, workspace, channel: str, account_id: str | None = None,
                                    user_id: str | None = None, text: str | None = None,
                                    quick_reply: str | None = None, waba_id: str = ""):
    """The sandbox's Messenger / Instagram customer writes: the simulator builds Meta's `messaging` webhook
    and it enters the same receive road as live traffic. -> (mid, user id, account)."""
    from apps.core import hooks
    from apps.core.errors import PermissionDeniedError
    from apps.providers.registry import social_sandbox_sender

    if not workspace.is_sandbox:
        raise PermissionDeniedError("Only sandbox accounts can receive simulated messages.")
    from apps.conversations.selectors.sending import social_account_resolve

    account = social_account_resolve(workspace=workspace, channel=channel, account_id=account_id, waba_id=waba_id)
    mid, user, payload = social_sandbox_sender().inbound(account_id=account.meta_account_id, user_id=user_id,
                                                         text=text, quick_reply=quick_reply, channel=channel)
    hooks.deliver_inbound(payload=payload, delay_seconds=0.0, source="simulator")
    return mid, user, account
