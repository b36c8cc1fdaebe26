"""Email on the send and receive roads.

Out: the mail a queued email message becomes (`email_outgoing`, asked by the dispatcher): the channel's From
and SMTP server, a Message-ID that is the message's own (stored as its provider_message_id), In-Reply-To and
References set to the customer's last mail in the conversation so mail clients thread, the subject ("Re:" the
customer's last one unless the message names one) and, on marketing mail, List-Unsubscribe.

In: one raw RFC 822 mail, from the SMTP listener or a provider's webhook (`email_inbound_receive`): a bounce
(a delivery-status report) fails the message it reports on, with the diagnostic as the reason; any other mail
is the customer's: the contact found (or created) by address, or by the mail it answers; threaded into that
mail's conversation, else the contact's email conversation; text, sanitised HTML and attachments stored (the
media store); message.inbound; a stop word as the reply (or the subject of a List-Unsubscribe mail) goes to
the consent ledger through the contacts' one keyword rule."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from apps.conversations import events as conversation_events
from apps.conversations.models import Conversation, Message
from apps.conversations.services import threads, transitions
from apps.core.services import event_append_many

logger = logging.getLogger("reach.email")

REFERENCES_MAX = 20  # the References header keeps the newest ids of a long thread
ATTACHMENTS_MAX = 10


# --- out ----------------------------------------------------------------------------------------------------


def _reply_subject(subject: str) -> str:
    subject = subject.strip()
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def email_outgoing(*, message: Message):
    """(OutgoingEmail, SMTP connection arguments) for a claimed email message. ProviderError (terminal) when
    the workspace's email channel is gone."""
    from apps.providers.base import ProviderError
    from apps.providers.email import OutgoingEmail, email_message_id
    from apps.wabas.selectors import email_channel_for
    from apps.wabas.services import email_channel_smtp

    channel = email_channel_for(workspace=message.workspace_id)
    if channel is None:
        raise ProviderError(code="EMAIL_CHANNEL_MISSING", message="The workspace's email channel was removed.")
    content = message.content if isinstance(message.content, dict) else {}
    last = None
    if message.conversation_id:
        last = (Message.objects.filter(conversation_id=message.conversation_id, channel=Message.Channel.EMAIL,
                                       direction=Message.Direction.INBOUND)
                .exclude(provider_message_id=None).order_by("-created_at").first())
    in_reply_to, references = "", ()
    subject = content.get("subject") or ""
    if last is not None:
        in_reply_to = last.provider_message_id
        references = tuple([*last.content.get("references", []), in_reply_to][-REFERENCES_MAX:])
        if not subject and last.content.get("subject"):
            subject = _reply_subject(last.content["subject"])
    unsubscribe = ""
    if content.get("marketing") and (channel.inbound_address or channel.inbound_domain):
        unsubscribe = f"mailto:{channel.inbound_address or 'unsubscribe@' + channel.inbound_domain}?subject=unsubscribe"
    mail = OutgoingEmail(
        message_id=email_message_id(message_id=message.pk, from_address=channel.from_address),
        envelope_from=channel.inbound_address or channel.from_address, from_address=channel.from_address,
        from_name=channel.from_name, to=message.to_phone,
        subject=subject or channel.from_name or "Message", text=content.get("body", ""), html=content.get("html", ""),
        reply_to=channel.inbound_address if channel.inbound_address and channel.inbound_address !=
        channel.from_address.lower() else "",
        in_reply_to=in_reply_to, references=references, list_unsubscribe=unsubscribe,
    )
    return mail, email_channel_smtp(channel)


# --- in -----------------------------------------------------------------------------------------------------


@dataclass
class EmailInboundResult:
    message_id: str | None = None
    duplicate: bool = False
    ignored: str = ""
    bounced_message_id: str | None = None
    consent: str | None = None


def email_recipient_accepted(address: str) -> bool:
    """Does a channel receive mail at this address (the listener's RCPT check)?"""
    from apps.wabas.selectors import email_channel_for_recipient

    return email_channel_for_recipient(address) is not None


def email_inbound_from_listener(raw: bytes, recipients: list[str]) -> None:
    """The SMTP listener's delivery: one mail for each channel among its recipients."""
    from apps.wabas.selectors import email_channel_for_recipient

    seen = set()
    for address in recipients:
        channel = email_channel_for_recipient(address)
        if channel is not None and channel.pk not in seen:
            seen.add(channel.pk)
            result = email_inbound_receive(channel=channel, raw=raw, recipient=address)
            if result.ignored:
                logger.info("email listener: a mail for %s was ignored: %s", address, result.ignored)


def email_inbound_receive(*, channel, raw: bytes, recipient: str = "") -> EmailInboundResult:
    """One raw mail for `channel` (an apps.wabas EmailChannel): a bounce, or a customer's mail."""
    from apps.providers.email import BounceReport, email_parse

    try:
        parsed = email_parse(raw)
    except ValueError as exc:
        return EmailInboundResult(ignored=str(exc))
    if isinstance(parsed, BounceReport):
        return email_bounce_apply(channel=channel, report=parsed)
    return _customer_mail_store(channel=channel, mail=parsed, recipient=recipient)


def email_bounce_apply(*, channel, report) -> EmailInboundResult:
    """A bounce: the outbound mail it reports on (this workspace's only) becomes failed, EMAIL_BOUNCED with the
    diagnostic; message.failed. Forward only (failed after sent is allowed; a repeated report changes nothing)."""
    now = timezone.now()
    with transaction.atomic():
        message = (Message.objects.select_for_update()
                   .filter(workspace_id=channel.workspace_id, channel=Message.Channel.EMAIL,
                           direction=Message.Direction.OUTBOUND, provider_message_id=report.original_message_id)
                   .first())
        if message is None:
            return EmailInboundResult(ignored="a bounce for no mail of ours")
        previous = message.status
        error = {"code": "EMAIL_BOUNCED", "upstream_code": None,
                 "message": f"{report.status} {report.diagnostic}".strip()[:2000]}
        changed = transitions.message_receipt_apply(message=message, to=Message.Status.FAILED, at=now, error=error)
        if changed:
            transitions.messages_receipts_save(messages=[message], now=now)
            events = transitions.status_events(message, previous, at=now) if message.status != previous else []
            if events:
                event_append_many(workspace=message.workspace, events=events)
            if message.status == Message.Status.FAILED and previous != Message.Status.FAILED and message.cost is None:
                from apps.billing import services as billing

                billing.message_reservation_release(message=message)
                Message.objects.filter(pk=message.pk).update(cost=message.cost)
    return EmailInboundResult(bounced_message_id=message.pk)


def _attachments_store(*, workspace, mail) -> list[dict]:
    from apps.conversations.services.media import media_store_attachment

    stored = []
    for attachment in mail.attachments[:ATTACHMENTS_MAX]:
        media = media_store_attachment(workspace=workspace, data=attachment.data, filename=attachment.filename)
        item = {"filename": attachment.filename[:255], "content_type": attachment.content_type,
                "size": len(attachment.data)}
        if media is None:
            item["skipped"] = "type or size not accepted"
        else:
            item.update(media_id=media.pk, kind=media.kind, content_type=media.content_type)
        stored.append(item)
    return stored


def _customer_mail_store(*, channel, mail, recipient: str) -> EmailInboundResult:
    from apps.contacts import services as contact_services
    from apps.conversations.services.push import push_inbound_enqueue
    from apps.providers.email import html_sanitize, html_to_text, reply_text

    workspace = channel.workspace
    now = timezone.now()
    at = min(mail.date or now, now)
    if Message.objects.filter(workspace=workspace, provider_message_id=mail.message_id).exists():
        return EmailInboundResult(duplicate=True)
    text = mail.text or html_to_text(mail.html)
    html = html_sanitize(mail.html)
    with transaction.atomic():
        # Threading: the mail it answers (In-Reply-To, then References, newest first) names the conversation.
        refs = [r for r in [mail.in_reply_to, *reversed(mail.references)] if r]
        answered = None
        if refs:
            candidates = {m.provider_message_id: m for m in Message.objects.select_related("conversation").filter(
                workspace=workspace, channel=Message.Channel.EMAIL, provider_message_id__in=refs)}
            answered = next((candidates[r] for r in refs if r in candidates), None)
        contact = contact_services.contact_by_email(workspace=workspace, email=mail.from_address)
        if contact is None and answered is not None and answered.contact_id and answered.direction == "outbound":
            contact = answered.contact  # the customer answered from another address of theirs
        if contact is None:
            contact = contact_services.contact_upsert_by_email(workspace=workspace, email=mail.from_address,
                                                              name=mail.from_name)
        conversation = None
        if (answered is not None and answered.conversation is not None and answered.conversation.contact_id ==
                contact.pk and answered.conversation.state != Conversation.State.RESOLVED):
            conversation = answered.conversation
        if conversation is None:
            conversation = threads.conversation_get_or_open(workspace=workspace, contact=contact,
                                                            phone_number=channel.phone_number,
                                                            channel_kind=Conversation.ChannelKind.EMAIL)
        content = {"subject": mail.subject, "body": text, "html": html, "from": mail.from_address,
                   "to": mail.to or ([recipient] if recipient else []), "message_id": mail.message_id,
                   "in_reply_to": mail.in_reply_to, "references": mail.references[-REFERENCES_MAX:],
                   "attachments": _attachments_store(workspace=workspace, mail=mail)}
        first_media = next((a["media_id"] for a in content["attachments"] if a.get("media_id")), None)
        message = Message.objects.create(
            workspace=workspace, conversation=conversation, contact=contact, phone_number=channel.phone_number,
            direction=Message.Direction.INBOUND, channel=Message.Channel.EMAIL, type="text",
            to_phone=(recipient or channel.inbound_address or channel.from_address)[:170], content=content,
            body=text, media_id=first_media, status=Message.Status.RECEIVED, provider_message_id=mail.message_id,
            sent_by="customer", reply_to=answered,
        )
        preview = f"{mail.subject} — {text}" if mail.subject else text
        threads.conversation_record_message(conversation=conversation, at=at, preview=preview.strip() or "[email]",
                                            inbound=True)
        keyword = None
        if not mail.auto_submitted:
            # The one keyword rule, on what the customer wrote (not the quoted mail), else on the subject
            # (a List-Unsubscribe mailto: sends "unsubscribe" there).
            keyword = contact_services.consent_from_inbound_text(contact=contact, text=reply_text(text),
                                                                inbound_message_id=message.pk) or \
                contact_services.consent_from_inbound_text(contact=contact, text=mail.subject,
                                                           inbound_message_id=message.pk)
        event_append_many(workspace=workspace, events=[("message.inbound", conversation_events.message_inbound(
            message=message, contact=contact, sender=mail.from_address, wa_id=None, profile_name=mail.from_name or None,
            timestamp=at, received_at=now))])
        transaction.on_commit(lambda mid=message.pk: push_inbound_enqueue(mid))
    return EmailInboundResult(message_id=message.pk, consent=keyword)


def email_inbound_json_to_raw(data: dict) -> bytes:
    """A provider's parsed-JSON inbound shape -> a raw mail, so it takes the one parse road. Fields: `from`,
    `to`, `subject`, `text`, `html`, `message_id`, `in_reply_to`, `references` (list or space-separated)."""
    from apps.providers.email import email_compose

    def text(key: str, limit: int = 998) -> str:
        value = data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str) or len(value) > limit:
            raise ValueError(key)
        return value

    refs = data.get("references") or []
    if isinstance(refs, str):
        refs = refs.split()
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise ValueError("references")
    from email.utils import parseaddr

    name, address = parseaddr(text("from"))
    if "@" not in address:
        raise ValueError("from")
    for key in ("subject", "message_id", "in_reply_to", "to"):
        if any(c in text(key) for c in "\r\n"):
            raise ValueError(key)
    return email_compose(from_address=address, from_name=name, to=text("to") or "", subject=text("subject"),
                         text=text("text", 5_000_000), html=text("html", 5_000_000),
                         message_id=text("message_id"), in_reply_to=text("in_reply_to"), references=refs)
