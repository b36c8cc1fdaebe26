"""The receive road's domain writes: inbound customer messages (delivery statuses: receipts.py), Meta user
preferences, and the sandbox's window ageing.

Everything here runs inside the caller's transaction (the webhooks app processes one stored webhook
per transaction) and is idempotent: a repeated wamid finds its message and stops; a repeated or late
status never moves a message back. Network work (media download, auto-replies) is returned as
after-commit callbacks, never done while rows are locked.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.contacts.models import Contact
from apps.conversations import events as conversation_events
from apps.conversations.models import Conversation, Message
from apps.conversations.services import identity, threads
from apps.conversations.services.flow_answers import flow_of_response, flow_response_parse

# The statuses half of the road lives in receipts.py; the webhooks app reaches both through this module.
from apps.conversations.services.receipts import ProcessLater, StatusResult, message_statuses_apply  # noqa: F401
from apps.core.models import Workspace
from apps.core.services import event_append_many
from apps.core.sql import CompiledRead, execute_together, insert_statement
from apps.wabas import selectors as waba_selectors
from apps.wabas.models import PhoneNumber, Waba

logger = logging.getLogger("reach.receiving")

MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
# Meta's statuses as ours; `played` (first play of a voice note) counts as read.
def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


# --- inbound messages ----------------------------------------------------------------------------


@dataclass
class InboundResult:
    message_id: str | None = None
    duplicate: bool = False
    ignored: str = ""
    after_commit: list[Callable[[], None]] = field(default_factory=list)


def inbound_body(*, message_type: str, content: dict) -> str:
    """The text a person sees for an inbound message (the inbox, previews and `message.inbound`)."""
    c = content or {}
    if message_type == "text":
        return str(c.get("body") or "")
    if message_type in MEDIA_TYPES:
        return str(c.get("caption") or "")
    if message_type == "button":
        return str(c.get("text") or c.get("payload") or "")
    if message_type == "interactive":
        kind = c.get("type") or ""
        reply = c.get(kind) if isinstance(c.get(kind), dict) else {}
        if kind == "nfm_reply":
            return str(reply.get("body") or "Form submitted")
        return str(reply.get("title") or reply.get("body") or "")
    if message_type == "reaction":
        return str(c.get("emoji") or "")
    if message_type == "location":
        name = " — ".join(str(x) for x in (c.get("name"), c.get("address")) if x)
        return name or f"{c.get('latitude')},{c.get('longitude')}"
    if message_type == "contacts":
        names = [str((x.get("name") or {}).get("formatted_name") or "") for x in c.get("contacts") or []
                 if isinstance(x, dict)]
        return ", ".join(n for n in names if n)
    if message_type in ("order", "system"):
        return str(c.get("text") or c.get("body") or "")
    return ""


def _preview(message_type: str, body: str) -> str:
    return body if body else f"[{message_type}]"


@dataclass
class ReceiveBatch:
    """What a batch of stored webhooks looks up once for all its inbound messages (inbound_batch_prepare)
    rather than once per message, kept current as the batch writes. message_inbound_receive reads from it
    where it would otherwise query, and nothing else changes: the rules stay in the one function."""
    numbers: dict = field(default_factory=dict)  # Meta phone_number_id -> PhoneNumber | None
    contacts: dict = field(default_factory=dict)  # workspace id -> {e164: Contact}, locked
    preloaded: set = field(default_factory=set)  # contacts locked before their stored wamids were read
    wamids: dict = field(default_factory=dict)  # workspace id -> the batch's wamids already stored
    conversations: dict = field(default_factory=dict)  # (contact id, number id) -> current Conversation
    auto_replies: dict = field(default_factory=dict)  # workspace id -> has enabled auto-reply rules
    created: set = field(default_factory=set)  # contacts this batch created, until their first message

    def forget(self) -> None:
        """Rows moved under the batch (a contact merge): read them again from here on."""
        self.contacts.clear()
        self.preloaded.clear()
        self.wamids.clear()
        self.conversations.clear()


def inbound_batch_prepare(*, items: list, batch: ReceiveBatch) -> None:
    """Lock the batch's known senders (per workspace in id order, each in phone order: the receive road's
    lock order), create the unknown ones together (then lock them, in phone order) and open their first
    conversations together, then read the stored wamids and current conversations: a few queries per
    workspace and number instead of three per message (and some eight per first message: a burst of new
    customers used to queue behind one another)."""
    from apps.contacts import services as contact_services

    by_workspace: dict[str, list] = defaultdict(list)
    workspaces: dict[str, Workspace] = {}
    for item in items:
        if item.phone_number_id not in batch.numbers:
            batch.numbers[item.phone_number_id] = waba_selectors.phone_number_by_meta_id(item.phone_number_id)
        number = batch.numbers[item.phone_number_id]
        if number is not None:
            by_workspace[number.workspace_id].append((item, number))
            workspaces[number.workspace_id] = number.workspace
    for workspace_id in sorted(by_workspace):
        workspace, pairs = workspaces[workspace_id], by_workspace[workspace_id]
        contacts = contact_services.contacts_lock_by_phone(
            workspace=workspace, senders=[(item.from_phone, item.wa_id) for item, _ in pairs])
        new, created = contact_services.contacts_create_for_inbound(workspace=workspace, known=contacts, senders=[
            {"phone": item.from_phone, "wa_id": item.wa_id, "bsuid": item.bsuid, "profile_name": item.profile_name,
             "parent_bsuid": getattr(item, "parent_bsuid", None), "username": getattr(item, "username", None)}
            for item, _ in pairs])
        contacts = {**contacts, **new}
        batch.contacts[workspace_id] = contacts
        batch.created.update(created)
        batch.preloaded.update(c.pk for c in contacts.values())
        batch.wamids[workspace_id] = {m.provider_message_id for m in _stored_wamids(
            workspace_id=workspace_id, wamids=[item.wamid for item, _ in pairs])}
        if not contacts:
            continue
        for number in {number.pk: number for _, number in pairs}.values():
            current = threads.conversations_current(workspace=workspace, contact_ids=[c.pk for c in contacts.values()],
                                                    phone_number=number,
                                                    channel_kind=Conversation.ChannelKind.WHATSAPP)
            # A new sender's first conversation on the number it wrote to, opened for all of them at once.
            phones = {contact_services.inbound_sender_phone(item.from_phone, item.wa_id)
                      for item, n in pairs if n.pk == number.pk}
            first = [c.pk for phone, c in new.items() if phone in phones and c.pk not in current]
            if first:
                current.update(threads.conversations_get_or_open(
                    workspace=workspace, contact_ids=first, phone_number=number,
                    channel_kind=Conversation.ChannelKind.WHATSAPP))
            batch.conversations.update(((cid, number.pk), conv) for cid, conv in current.items())


def _stored_wamids_query(workspace_id: str, wamids: list[str]):
    return Message.objects.filter(workspace_id=workspace_id, provider_message_id__in=wamids).only(
        "provider_message_id")


_stored_wamids = CompiledRead(_stored_wamids_query)  # once per receive batch


def message_inbound_receive(*, item, numbers: dict | None = None, batch: ReceiveBatch | None = None) -> InboundResult:
    """Store one inbound customer message (an apps.providers.meta_cloud.webhooks.InboundMessage).
    `numbers` caches phone-number lookups across the items of one batch; `batch` (prepared by
    inbound_batch_prepare) also holds the batch's contacts, stored wamids and conversations."""
    numbers = batch.numbers if batch is not None else (numbers if numbers is not None else {})
    if item.phone_number_id not in numbers:
        numbers[item.phone_number_id] = waba_selectors.phone_number_by_meta_id(item.phone_number_id)
    number = numbers[item.phone_number_id]
    if number is None:
        return InboundResult(ignored="unknown phone_number_id")
    workspace = number.workspace
    if not (item.wa_id or item.from_phone or item.bsuid):
        return InboundResult(ignored="no sender identity")

    from apps.contacts import services as contact_services

    contact, created = contact_services.contact_upsert_from_inbound(
        workspace=workspace, phone=item.from_phone, wa_id=item.wa_id, bsuid=item.bsuid,
        profile_name=item.profile_name, parent_bsuid=getattr(item, "parent_bsuid", None),
        username=getattr(item, "username", None),
        by_phone=batch.contacts.get(workspace.pk) if batch is not None else None,
    )
    split = identity.contact_split_find(workspace=workspace, contact=contact, bsuid=item.bsuid)
    if split is not None:  # Meta tied the phone and the BSUID together: one person, one contact
        identity.contact_merge(workspace=workspace, survivor=contact, absorbed=split)
        contact.refresh_from_db()
        if batch is not None:
            batch.forget()
    if batch is not None and created and contact.phone and workspace.pk in batch.contacts:
        batch.contacts[workspace.pk][contact.phone] = contact
    if batch is not None and contact.pk in batch.created:  # the batch created it for this, its first message
        batch.created.discard(contact.pk)
        created = True
    # Duplicates are checked once the contact row is locked (by the upsert): a concurrent writer of the
    # same wamid has committed by now, so this look cannot miss it. A batch read its wamids after locking
    # its senders, so for those senders that read is as good.
    if batch is not None and contact.pk in batch.preloaded:
        duplicate = item.wamid in batch.wamids.get(workspace.pk, ())
    else:
        duplicate = Message.objects.filter(workspace=workspace, provider_message_id=item.wamid).exists()
    if duplicate:
        return InboundResult(duplicate=True)
    conversation = batch.conversations.get((contact.pk, number.pk)) if batch is not None else None
    if conversation is None:
        conversation = _conversation_get_or_open(workspace=workspace, contact=contact, number=number)
        if batch is not None:
            batch.conversations[(contact.pk, number.pk)] = conversation

    now = timezone.now()
    at = min(item.timestamp, now)  # a skewed clock must not open a window in the future
    events: list[tuple[str, dict]] = []
    if conversation.state in (Conversation.State.SNOOZED, Conversation.State.PENDING):
        previous = conversation.state
        Conversation.objects.filter(pk=conversation.pk).update(state=Conversation.State.OPEN, snooze_until=None,
                                                               updated_at=now)
        conversation.state, conversation.snooze_until = Conversation.State.OPEN, None
        events.append(("conversation.status_changed", conversation_events.conversation_status_changed(
            conversation=conversation, previous_state=previous, reason="inbound")))

    content = dict(item.content or {})
    if item.context:
        content["context"] = item.context
    if item.referral:
        content["referral"] = item.referral
    flow = flow_response_parse(message_type=item.type, content=item.content)
    if flow is not None:
        flow["flow_id"] = flow_of_response(workspace=workspace, context_wamid=item.context_wamid,
                                            flow_token=flow["flow_token"])
        content["flow_response"] = flow
    if item.errors:
        content["errors"] = [{"code": e.code, "title": e.title, "message": e.message, "details": e.details}
                             for e in item.errors]
    body = inbound_body(message_type=item.type, content=item.content)
    reply_to_id = None
    if item.context_wamid:
        reply_to_id = (Message.objects.filter(workspace=workspace, provider_message_id=item.context_wamid)
                       .values_list("pk", flat=True).first())
    wants_media = item.type in MEDIA_TYPES and bool(content.get("id"))
    # No savepoint: the contact lock above serialises writers of one wamid, and should the unique
    # (workspace, wamid) constraint still fire, the whole webhook rolls back and its retry finds the row.
    message = Message(
        workspace=workspace, conversation=conversation, contact=contact, phone_number=number,
        direction=Message.Direction.INBOUND, channel=Message.Channel.WHATSAPP, type=item.type,
        to_phone=number.display_phone_number[:20], content=content, body=body,
        status=Message.Status.RECEIVED, provider_message_id=item.wamid, sent_by="customer",
        reply_to_id=reply_to_id, next_attempt_at=now if wants_media else None,
    )
    if item.referral:
        _conversation_referral_record(conversation=conversation, referral=item.referral, at=at)
    last = conversation.last_inbound_at
    recorded_at, preview = (max(at, last) if last else at), _preview(item.type, body)
    # The message, the contact's and the conversation's last inbound: one round trip where the database allows.
    execute_together([
        insert_statement([message]),
        contact_services.contact_inbound_recorded_statement(contact=contact, at=at),
        threads.conversation_record_message_statement(conversation=conversation, at=recorded_at, preview=preview,
                                                      inbound=True),
    ])
    message._state.adding, message._state.db = False, "default"
    conversation.last_message_at = conversation.last_inbound_at = recorded_at  # as the row now is
    conversation.last_message_preview, conversation.unread_count = preview[:200], conversation.unread_count + 1
    if batch is not None:
        batch.wamids.setdefault(workspace.pk, set()).add(item.wamid)
    keyword = None
    if item.type in ("text", "button") and body:
        keyword = contact_services.consent_from_inbound_text(contact=contact, text=body,
                                                            inbound_message_id=message.pk)
    if conversation.assigned_user_id is None:  # the inbound team and its round-robin, if the workspace has them
        from apps.conversations.services.organise import conversation_route_inbound

        events += conversation_route_inbound(conversation=conversation, workspace=workspace, now=now)
    events.append(("message.inbound", conversation_events.message_inbound(
        message=message, contact=contact, sender=item.from_phone or item.bsuid, wa_id=item.wa_id,
        profile_name=item.profile_name, timestamp=item.timestamp, received_at=now)))
    event_append_many(workspace=workspace, events=events)

    result = InboundResult(message_id=message.pk)
    if wants_media:
        result.after_commit.append(lambda mid=message.pk: _enqueue_media_fetch(mid))
    rules = None
    if batch is not None and not keyword:  # one look per workspace and batch, not one per message
        if workspace.pk not in batch.auto_replies:
            batch.auto_replies[workspace.pk] = _workspace_has_auto_replies(workspace.pk)
        rules = batch.auto_replies[workspace.pk]
    result.after_commit.append(
        lambda mid=message.pk, c=created, k=keyword, ws=workspace.pk, r=rules: inbound_after_commit(
            message_id=mid, contact_created=c, consent_keyword=k, workspace_id=ws, has_auto_replies=r)
    )
    return result


def _conversation_referral_record(*, conversation: Conversation, referral: dict, at: datetime) -> None:
    """The ad or post the customer came from, on the conversation (the latest entry wins), with the deadline
    for the reply that opens the free entry point window."""
    from apps.conversations import policy

    values = {"referral": referral, "referral_at": at,
              "entry_point_reply_deadline": policy.entry_point_reply_deadline(referral_at=at),
              "entry_point_opened_at": None}
    Conversation.objects.filter(pk=conversation.pk).update(**values)
    for key, value in values.items():
        setattr(conversation, key, value)


def _conversation_get_or_open(*, workspace: Workspace, contact: Contact, number: PhoneNumber) -> Conversation:
    return threads.conversation_get_or_open(workspace=workspace, contact=contact, phone_number=number,
                                            channel_kind=Conversation.ChannelKind.WHATSAPP)


def _enqueue_media_fetch(message_id: str) -> None:
    from apps.conversations.tasks.receiving import inbound_media_fetch_task

    try:
        inbound_media_fetch_task.delay(message_id)
    except Exception:  # the media sweeper retries rows whose next_attempt_at has passed
        logger.warning("could not enqueue media fetch for %s", message_id, exc_info=True)


def inbound_after_commit(*, message_id: str, contact_created: bool, consent_keyword: str | None,
                         workspace_id: str | None = None, has_auto_replies: bool | None = None) -> None:
    """Reactions to a committed inbound: the mobile push, the opt-out confirmation and the inbox's
    auto-replies. Best effort: a failure here is logged and never undoes the stored message."""
    from apps.conversations.services.push import push_inbound_enqueue

    push_inbound_enqueue(message_id)
    if consent_keyword == "opt_out":
        try:
            _optout_confirmation_send(message_id=message_id)
        except Exception:
            logger.exception("opt-out confirmation for %s failed", message_id)
    if consent_keyword:
        return  # a STOP/START word is answered by consent handling, never by a bot
    if has_auto_replies is None and workspace_id is not None:
        has_auto_replies = _workspace_has_auto_replies(workspace_id)
    if has_auto_replies is False:
        return  # most workspaces have no rules: one indexed EXISTS instead of loading the message
    try:
        from apps.conversations.services import autoreplies
    except ImportError:
        return
    hook = getattr(autoreplies, "auto_reply_for_inbound", None)
    if hook is None:
        return
    try:
        hook(message_id=message_id, contact_created=contact_created, consent_keyword=consent_keyword)
    except Exception:
        logger.exception("auto-reply for %s failed", message_id)


def _auto_reply_rule_query(workspace_id: str):
    from apps.conversations.models import AutoReplyRule

    return AutoReplyRule.objects.filter(workspace_id=workspace_id, enabled=True).only("pk")[:1]


_an_auto_reply_rule = CompiledRead(_auto_reply_rule_query)  # once per receive batch


def _workspace_has_auto_replies(workspace_id: str) -> bool:
    return bool(_an_auto_reply_rule(workspace_id=workspace_id))


def _optout_confirmation_send(*, message_id: str) -> None:
    """If the workspace asks for it (contacts exposes the setting), confirm an opt-out with a reply.
    The customer has just written, so the free-form reply is inside the window."""
    from apps.contacts import selectors as contact_selectors

    message = Message.objects.select_related("workspace", "contact", "phone_number").filter(pk=message_id).first()
    if message is None or message.contact is None or message.phone_number is None:
        return
    text = contact_selectors.opt_out_confirmation_text(workspace=message.workspace)
    if not text:
        return
    from apps.conversations.services import sending

    sending.message_send_internal(
        workspace=message.workspace, phone_number=message.phone_number, contact=message.contact,
        message_type="text", content={"body": text}, sent_by="auto_reply",
    )


# --- inbound media ------------------------------------------------------------------------------------


def inbound_media_fetch(*, message_id: str) -> bool:
    """Download an inbound message's media from Meta (through SEND's media service) and attach it.
    On failure keep the message (it holds Meta's media id) and try again later, until Meta's
    media id has expired."""
    message = (Message.objects.select_related("workspace", "phone_number__waba")
               .filter(pk=message_id, direction=Message.Direction.INBOUND).first())
    if message is None or message.media_id is not None or message.phone_number is None:
        return False
    from apps.conversations.services import media as media_services

    now = timezone.now()
    try:
        media = media_services.media_download_inbound(
            workspace=message.workspace, phone_number=message.phone_number,
            meta_media_id=str(message.content.get("id") or ""),
            mime_type=str(message.content.get("mime_type") or ""),
            sha256=str(message.content.get("sha256") or ""),
        )
    except Exception as exc:
        expired = message.created_at + timedelta(seconds=settings.INBOUND_MEDIA_RETRY_FOR_SECONDS) <= now
        backoff = min(3600.0, settings.INBOUND_MEDIA_RETRY_BASE_SECONDS * (2 ** message.attempts))
        Message.objects.filter(pk=message.pk, media__isnull=True).update(
            attempts=message.attempts + 1, next_attempt_at=None if expired else now + timedelta(seconds=backoff),
            error_code="MEDIA_DOWNLOAD_FAILED", error_message=str(exc)[:1000],
        )
        logger.warning("media download for %s failed (%s)", message_id, exc)
        return False
    Message.objects.filter(pk=message.pk).update(media=media, next_attempt_at=None, error_code="",
                                                 error_message="")
    return True


def inbound_media_due(*, limit: int = 200) -> list[str]:
    now = timezone.now()
    return list(
        Message.objects.filter(direction=Message.Direction.INBOUND, status=Message.Status.RECEIVED,
                               media__isnull=True, next_attempt_at__lte=now, type__in=MEDIA_TYPES)
        .order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )


# --- Marketing Messages API clicks --------------------------------------------------------------------


def link_click_apply(*, item, numbers: dict | None = None) -> bool:
    """A click on a marketing message's link or CTA (Meta's click tracking) -> `link.clicked`, tied to the
    message (and its campaign and contact) when Meta names the wamid. False: unknown number."""
    numbers = numbers if numbers is not None else {}
    if item.phone_number_id not in numbers:
        numbers[item.phone_number_id] = waba_selectors.phone_number_by_meta_id(item.phone_number_id)
    number = numbers[item.phone_number_id]
    if number is None:
        return False
    message = None
    if item.wamid:
        message = Message.objects.filter(workspace_id=number.workspace_id, provider_message_id=item.wamid,
                                         direction=Message.Direction.OUTBOUND).first()
    from apps.links.services import meta_click_record

    meta_click_record(workspace=number.workspace, at=item.timestamp, message=message,
                      meta={"click_component": item.click_component, "click_id": item.click_id,
                            "tracking_token": item.tracking_token, "product_id": item.product_id,
                            "provider_message_id": item.wamid})
    return True


# --- user preferences ------------------------------------------------------------------------------


def user_preference_apply(*, item) -> bool:
    """Meta's user_preferences (marketing stop/resume) -> the consent ledger. False when the number
    and the WABA are both unknown."""
    workspace: Workspace | None = None
    if item.phone_number_id:
        number = waba_selectors.phone_number_by_meta_id(item.phone_number_id)
        workspace = number.workspace if number else None
    if workspace is None and item.waba_id:
        waba = Waba.objects.select_related("workspace").filter(meta_waba_id=item.waba_id).first()
        workspace = waba.workspace if waba else None
    if workspace is None:
        return False
    from apps.contacts import services as contact_services

    contact_services.consent_from_meta_preference(workspace=workspace, wa_id=item.wa_id, bsuid=item.bsuid,
                                                  value=item.value, at=item.timestamp)
    return True


# --- sandbox ------------------------------------------------------------------------------------------


def sandbox_inbound_simulate(*, workspace: Workspace, phone_number: PhoneNumber, from_phone: str | None,
                             message: dict, name: str | None = None, bsuid: str | None = None,
                             username: str | None = None, parent_bsuid: str | None = None) -> str:
    """Have the in-process simulator deliver a customer message to a sandbox number, through the same
    stored-webhook road as live traffic. Returns Meta's wamid."""
    if not workspace.is_sandbox or not phone_number.waba.is_simulated:
        from apps.core.errors import PermissionDeniedError

        raise PermissionDeniedError("Only sandbox numbers can receive simulated messages.")
    from apps.providers.registry import whatsapp_provider

    return whatsapp_provider(simulated=True).simulate_inbound(
        phone_number_id=phone_number.meta_phone_number_id, display_phone_number=phone_number.display_phone_number,
        waba_id=phone_number.waba.meta_waba_id, from_phone=from_phone, message=message, name=name, bsuid=bsuid,
        username=username, parent_bsuid=parent_bsuid,
    )


def sandbox_window_age(*, workspace: Workspace, contact: Contact, hours: float) -> Contact:
    """Move a sandbox contact's last inbound `hours` into the past (never forward), with its
    conversations' windows and the simulator's own record, to test what happens after the window.
    A contact who never wrote has no window and stays without one."""
    if not workspace.is_sandbox:
        from apps.core.errors import PermissionDeniedError

        raise PermissionDeniedError("Only sandbox contacts can have their window aged.")
    target = timezone.now() - timedelta(hours=hours)
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk, workspace=workspace)
        if locked.last_inbound_at is not None and locked.last_inbound_at > target:
            # Sandbox-only rewind; contacts' own service moves the window forward only, by design.
            Contact.objects.filter(pk=locked.pk).update(last_inbound_at=target)
        Conversation.objects.filter(workspace=workspace, contact=locked, last_inbound_at__gt=target).update(
            last_inbound_at=target
        )
    contact = Contact.objects.get(pk=contact.pk)
    wa_id = contact.wa_id or (contact.phone or "").lstrip("+")
    if wa_id and contact.last_inbound_at is not None:
        # The simulator keeps its own window per number (it answers 131047 like Meta): give it the same age.
        from apps.providers.registry import whatsapp_provider

        age_hours = (timezone.now() - contact.last_inbound_at).total_seconds() / 3600
        simulator = whatsapp_provider(simulated=True)
        for number in PhoneNumber.objects.filter(workspace=workspace, waba__is_simulated=True):
            simulator.simulate_window_age(phone_number_id=number.meta_phone_number_id, wa_id=wa_id,
                                          hours=age_hours)
    return contact
