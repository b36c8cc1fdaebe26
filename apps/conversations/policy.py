"""The send rules, each stated once: whether a message may go (API.md "Policy").

Order, every time: sender resolution -> template status/language/variables -> 24 h window (non-template,
per channel) -> consent (MARKETING only) -> wallet. Each rule is a function over one resolved context
(`SendContext`) or over the few values it reads, so a caller that holds only those values (the campaign
hand-out's rows, the inbox's display) asks the same function. Fast SQL forms of a rule (the send guard's
`last_inbound_at > %s`, the hand-out's `NOT c.opted_in`) take their bounds from here and are pinned to
these functions by tests (tests/conversations/test_policy.py).

Who asks what:
- API send, inbox reply, auto-replies and the opt-out confirmation: `send_context` (all rules).
- campaign hand-out: `campaign_check` (sender, template, per batch) and `recipient_classify` (number,
  consent, variables, per recipient); the writer reserves the batch's cost (`wallet_reserve`).
- campaign creation: `sender_resolve` and `template_resolve`, as the API send states them.
- campaign preflight: the same `campaign_refusal` and `recipient_classify`; it reserves nothing.
- scheduled release (sending.messages_release_scheduled): re-checks nothing today; every rule was
  checked when the message was accepted and its cost reserved then. What can change meanwhile: the
  template's status (re-checked at dispatch by message_templates' template_send_refusal), the window
  (a free-form message released after it closed is refused by Meta, 131047, and recorded failed) and
  consent (not re-checked).
- SMS fallback: `fallback_context` (the channel's rules: SMS has no window; the WhatsApp message's
  consent and template were checked when it was accepted) and the wallet."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings

from apps.billing import services as billing
from apps.contacts.models import Contact
from apps.contacts.selectors import marketing_requires_opt_in
from apps.conversations.models import Media, Message
from apps.conversations.services.validation import MEDIA_TYPES, body_preview
from apps.core.errors import (
    ApplicationError,
    ContactBlocked,
    ContactNotOptedIn,
    ContactOptedOut,
    NotFound,
    OutsideWindow,
    PhoneNotFound,
    RecipientPhoneRequired,
    ValidationFailed,
)
from apps.core.models import Workspace
from apps.wabas.models import PhoneNumber

WHATSAPP, SMS, MESSENGER, INSTAGRAM, EMAIL = "whatsapp", "sms", "messenger", "instagram", "email"
# Channels whose messages go out through Meta's Send API from a connected Page / Instagram account.
SOCIAL_CHANNELS = (MESSENGER, INSTAGRAM)
MARKETING = "MARKETING"
# recipient_classify's answers, in the order they are checked.
INVALID_NUMBER, OPTED_OUT, NOT_OPTED_IN, MISSING_VARIABLE = "invalid_number", "opted_out", "not_opted_in", "missing_variable"
BLOCKED = "blocked"


@dataclass
class SendContext:
    """One send, resolved: what every rule reads."""

    workspace: Workspace
    channel: str
    message_type: str
    to: str
    content: dict | list
    now: datetime
    number: PhoneNumber | None = None
    contact: Contact | None = None
    conversation_id: str | None = None  # the contact's current conversation on the number, when known
    template: object | None = None  # message_templates.MessageTemplate
    category: str = ""
    body: str = ""
    media: Media | None = None
    cost: Decimal = field(default=Decimal("0"))
    account: object | None = None  # wabas.SocialAccount: the sender of a Messenger / Instagram message
    tag: str = ""  # a Messenger / Instagram message tag (CHANNEL_WINDOWS)
    # The customer's last message on this channel's thread, when the window is per thread (social channels).
    last_inbound_at: datetime | None = None


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


# --- sender --------------------------------------------------------------------------------------------


def sender_resolve(*, workspace: Workspace, waba_id: str, phone_number_id: str | None, to: str, channel: str,
                   template_name: str | None = None):
    """The API's sender resolution: the pinned number or the workspace's (key's WABA's) only one, with the
    recipient contact and its current conversation, in one read (with template_name, also the number's
    WABA's templates of that name, for template_resolve). PHONE_NOT_FOUND / VALIDATION_FAILED."""
    from apps.conversations.selectors.sending import email_send_targets, send_targets

    if channel == EMAIL:
        return email_send_targets(workspace=workspace, waba_id=waba_id, to=to)
    return send_targets(workspace=workspace, waba_id=waba_id, phone_number_id=phone_number_id, to=to,
                        channel_kind=channel, template_name=template_name)


def sender_check(*, number, workspace: Workspace) -> None:
    """Senders that bring their number (inbox, auto-replies, campaigns, fallback): it must exist and be
    this workspace's."""
    if number is None or number.workspace_id != workspace.pk:
        raise PhoneNotFound("There is no sender number to send from.", details={"field": "phone_number_id"})


def recipient_check(*, to: str, channel: str = WHATSAPP) -> None:
    if not to:
        raise ValidationFailed("This contact has no email address to send to." if channel == EMAIL
                               else "This contact has no phone number to send to.", field="to")


def email_channel_check(*, workspace: Workspace, number) -> None:
    """Email goes out through the workspace's email channel, on the number it rides on."""
    from apps.wabas.selectors import email_channel_for

    channel = email_channel_for(workspace=workspace)
    if channel is None or number is None or channel.phone_number_id != number.pk:
        raise ValidationFailed("This workspace has no email channel to send from (PUT /api/v1/channels/email).",
                               field="channel")


def recipient_is_bsuid(to: str) -> bool:
    """A recipient named by its business-scoped user id (no phone): Meta's `recipient` field."""
    return bool(to) and not to.startswith("+") and "@" not in to


AUTHENTICATION = "AUTHENTICATION"


def recipient_sendable_address(*, address: str | None, category: str) -> str | None:
    """The contact's address (phone, else BSUID) if a message of this template category may go to it: an
    authentication template needs a phone. The campaign hand-out's SQL takes its addresses through this."""
    if not address or (category == AUTHENTICATION and recipient_is_bsuid(address)):
        return None
    return address


def block_check(*, contact: Contact | None) -> None:
    """A contact the business blocked (Meta's block_users) gets nothing: 422 CONTACT_BLOCKED."""
    if contact is not None and contact.blocked_at is not None:
        raise ContactBlocked(details={"field": "to"})


def identity_check(*, category: str, to: str) -> None:
    """Authentication templates (copy code, one-tap, zero-tap) cannot go to a BSUID (META.md §3.9): 422
    RECIPIENT_PHONE_REQUIRED, instead of Meta's 131062 after the 202."""
    if category == AUTHENTICATION and recipient_is_bsuid(to):
        raise RecipientPhoneRequired(details={"field": "recipient"})


# --- template --------------------------------------------------------------------------------------------


def template_resolve(*, workspace: Workspace, number, content: dict, candidates: list | None = None):
    """(template, rendered body): TEMPLATE_NOT_FOUND / _LANGUAGE_MISMATCH / _NOT_APPROVED, then the
    components' send rules (header media, button parameters, offer expiry, carousel cards: VALIDATION_FAILED),
    then TEMPLATE_VARIABLE_COUNT_MISMATCH. candidates: the WABA's templates of that name, when the sender
    resolution read them (send_targets)."""
    from apps.message_templates.selectors import template_for_send
    from apps.message_templates.services import send_components_require, template_render

    template = template_for_send(workspace=workspace, waba=number.waba, name=content["name"],
                                 language=content["language"], candidates=candidates)
    send_components_require(template=template, components=content.get("components"), field="template.components")
    body = template_render(template=template, variables=content.get("variables"),
                           components=content.get("components"))
    return template, body


def template_check(*, template) -> None:
    """A template already chosen (a campaign's): still approved? The rule is message_templates' own, the
    one the dispatcher asks again before each send."""
    from apps.message_templates.selectors import template_send_refusal

    refusal = template_send_refusal(template)
    if refusal is not None:
        raise refusal


# --- the reply windows, per channel ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelWindow:
    """One channel's reply window: free-form messages may go `hours` after the customer's last message;
    a message tag stretches it to tags[tag] hours (None: any time, e.g. Messenger's post-purchase updates)."""

    hours: float
    tags: dict[str, float | None] = field(default_factory=dict)
    hours_setting: str = ""  # read the hours from this setting instead (WhatsApp's is configurable)

    def standard_hours(self) -> float:
        return float(getattr(settings, self.hours_setting)) if self.hours_setting else self.hours


HUMAN_AGENT_HOURS = 7 * 24
# The rule, once, as data: one entry per channel (None: the channel has no window). Messenger's standard
# messaging window is 24 h; its message tags allow later sends (HUMAN_AGENT: 7 days; the three update tags
# at any time). Instagram's window is 24 h, and HUMAN_AGENT 7 days. A new channel is one entry here.
CHANNEL_WINDOWS: dict[str, ChannelWindow | None] = {
    WHATSAPP: ChannelWindow(hours=24, hours_setting="CUSTOMER_SERVICE_WINDOW_HOURS"),
    SMS: None,
    EMAIL: None,
    MESSENGER: ChannelWindow(hours=24, tags={"HUMAN_AGENT": HUMAN_AGENT_HOURS, "CONFIRMED_EVENT_UPDATE": None,
                                             "POST_PURCHASE_UPDATE": None, "ACCOUNT_UPDATE": None}),
    INSTAGRAM: ChannelWindow(hours=24, tags={"HUMAN_AGENT": HUMAN_AGENT_HOURS}),
}


def channel_window(channel: str) -> ChannelWindow | None:
    return CHANNEL_WINDOWS.get(channel)


def channel_tags(channel: str) -> tuple[str, ...]:
    window = channel_window(channel)
    return tuple(window.tags) if window else ()


def window_opened_after(now: datetime, *, channel: str = WHATSAPP) -> datetime:
    """The window is open when the last inbound message came strictly after this (SQL forms use it)."""
    return now - timedelta(hours=CHANNEL_WINDOWS[channel].standard_hours())


def window_expires_at(*, channel: str, last_inbound_at: datetime | None, now: datetime) -> datetime | None:
    """When the channel's standard window closes, or None when it is closed (or the channel has none)."""
    window = channel_window(channel)
    if window is None or last_inbound_at is None:
        return None
    ends = last_inbound_at + timedelta(hours=window.standard_hours())
    return ends if ends > now else None


def window_is_open(*, channel: str, last_inbound_at: datetime | None, now: datetime, tag: str = "") -> bool:
    """May a free-form message (with this message tag, if any) go? No window: always. Else within the
    standard window after the last inbound message, or within the tag's stretch of it."""
    window = channel_window(channel)
    if window is None:
        return True
    if last_inbound_at is None:
        return False
    if tag and tag in window.tags:
        hours = window.tags[tag]
        return hours is None or last_inbound_at > now - timedelta(hours=hours)
    return last_inbound_at > now - timedelta(hours=window.standard_hours())


AGENT_TAG = "HUMAN_AGENT"


def agent_reply_tag(*, channel: str, last_inbound_at: datetime | None, now: datetime) -> str:
    """The tag a person's reply from the inbox goes with: none inside the standard window; HUMAN_AGENT (what
    Meta made it for) after it, on the channels that have it; "" when nothing would allow it."""
    if window_is_open(channel=channel, last_inbound_at=last_inbound_at, now=now):
        return ""
    if AGENT_TAG in channel_tags(channel) and window_is_open(channel=channel, last_inbound_at=last_inbound_at,
                                                              now=now, tag=AGENT_TAG):
        return AGENT_TAG
    return ""


def agent_reply_expires_at(*, channel: str, last_inbound_at: datetime | None, now: datetime) -> datetime | None:
    """Until when a person may still reply from the inbox: the standard window, stretched by HUMAN_AGENT on
    the channels that have it; None when closed or when the channel has no window."""
    window = channel_window(channel)
    if window is None or last_inbound_at is None:
        return None
    hours = window.standard_hours()
    if window.tags.get(AGENT_TAG):
        hours = max(hours, window.tags[AGENT_TAG])
    ends = last_inbound_at + timedelta(hours=hours)
    return ends if ends > now else None


def tag_check(*, channel: str, tag: str) -> None:
    """A message tag is the channel's own (Messenger's or Instagram's), or none."""
    if tag and tag not in channel_tags(channel):
        allowed = ", ".join(channel_tags(channel)) or "none"
        raise ValidationFailed(f"tag: {channel} messages take {allowed}.", field="tag")


def window_last_inbound(ctx: SendContext) -> datetime | None:
    """The customer's last message the window counts from: per thread on the social channels (a Page's or
    account's own customer), the contact's for WhatsApp."""
    if ctx.channel in SOCIAL_CHANNELS:
        return ctx.last_inbound_at
    return ctx.contact.last_inbound_at if ctx.contact else None


def window_check(ctx: SendContext) -> None:
    if ctx.message_type == "template":
        return
    last = window_last_inbound(ctx)
    if not window_is_open(channel=ctx.channel, last_inbound_at=last, now=ctx.now, tag=ctx.tag):
        raise OutsideWindow(details={"field": "tag" if ctx.tag else "type", "last_inbound_at": _iso(last),
                                     **({"allowed_tags": list(channel_tags(ctx.channel))}
                                        if channel_tags(ctx.channel) else {})})


# --- the free entry point window (click-to-WhatsApp ads) ---------------------------------------------------


def entry_point_reply_deadline(*, referral_at: datetime) -> datetime:
    """A customer who came from a click-to-WhatsApp ad or a Page CTA: a reply before this opens the free
    entry point window (META.md §5, §6)."""
    return referral_at + timedelta(hours=settings.FREE_ENTRY_POINT_REPLY_HOURS)


def entry_point_expires_at(*, opened_at: datetime | None, now: datetime) -> datetime | None:
    """When the free entry point window (everything free, templates included; the 24 h window still rules
    free-form sends) ends, or None when it is not open."""
    if opened_at is None:
        return None
    ends = opened_at + timedelta(hours=settings.FREE_ENTRY_POINT_HOURS)
    return ends if ends > now else None


# --- consent ------------------------------------------------------------------------------------------------


def consent_refuses(*, category: str, opted_in: bool | None, requires_opt_in: bool) -> str | None:
    """The consent rule: None when a message of `category` may go to a contact whose latest consent row
    says `opted_in` (None: no row), else why not. MARKETING does not go to an opted-out contact (OPTED_OUT),
    nor, when the workspace's marketing_requires_opt_in is on, to one with no opt-in row (NOT_OPTED_IN);
    UTILITY and AUTHENTICATION go to everyone."""
    if category != MARKETING:
        return None
    if opted_in is False:
        return OPTED_OUT
    if opted_in is None and requires_opt_in:
        return NOT_OPTED_IN
    return None


def consent_applies(category: str) -> bool:
    """Does consent_refuses ever refuse this category (the set-based forms skip the check when not)?"""
    return consent_refuses(category=category, opted_in=False, requires_opt_in=True) is not None


def contact_opted_in(contact: Contact | None) -> bool | None:
    """The contact's consent as consent_refuses reads it (None: no ledger row, or no contact yet)."""
    return contact.opted_in if contact is not None else None


def sms_consent_refuses(*, opted_out: bool) -> bool:
    """SMS follows the carriers' STOP rule: after STOP nothing goes by SMS, whatever its kind."""
    return opted_out


def consent_check(ctx: SendContext) -> None:
    if ctx.channel == SMS:
        if sms_consent_refuses(opted_out=contact_opted_in(ctx.contact) is False):
            raise ContactOptedOut("The recipient texted STOP; no SMS may go to them.", details={"field": "to"})
        return
    if not consent_applies(ctx.category):
        return
    refusal = consent_refuses(category=ctx.category, opted_in=contact_opted_in(ctx.contact),
                              requires_opt_in=marketing_requires_opt_in(workspace=ctx.workspace))
    if refusal == OPTED_OUT:
        raise ContactOptedOut(details={"field": "to"})
    if refusal == NOT_OPTED_IN:
        raise ContactNotOptedIn(details={"field": "to"})


# --- wallet -------------------------------------------------------------------------------------------------


def cost_estimate(*, category: str, to: str, workspace: Workspace | None = None) -> Decimal:
    return billing.cost_estimate(category=category, to_phone=to, workspace=workspace)


def wallet_reserve(*, workspace: Workspace, amount: Decimal, message_id: str = "", campaign_id: str = "") -> None:
    """The last rule (INSUFFICIENT_BALANCE, details: required, available). The writer calls it inside the
    transaction that writes the message(s), so a refusal writes nothing; a batch reserves its total once."""
    billing.wallet_reserve(workspace=workspace, amount=amount, message_id=message_id, campaign_id=campaign_id)


# --- whole sends -----------------------------------------------------------------------------------------------


def media_resolve(*, workspace: Workspace, message_type: str, content, waba_id: str = ""):
    """Foreign or unknown ids in the payload answer 404 like any other id (part of payload validation)."""
    media = None
    if message_type in MEDIA_TYPES and content.get("media_id"):
        media = Media.objects.filter(workspace=workspace, pk=content["media_id"]).first()
        if media is None:
            raise NotFound("No such media.", details={"field": f"{message_type}.media_id"})
        if media.kind != message_type:
            raise ValidationFailed(f"{message_type}.media_id: that file is {media.kind}, not {message_type}.",
                                   field=f"{message_type}.media_id")
    if message_type == "reaction":
        target = content["message_id"]
        if target.startswith("msg_"):
            qs = Message.objects.filter(workspace=workspace, pk=target)
            if waba_id:
                qs = qs.filter(phone_number__waba_id=waba_id)
            if not qs.exists():
                raise NotFound("No such message.", details={"field": "reaction.message_id"})
    return media


def send_context(*, workspace: Workspace, channel: str, message_type: str, to: str, content, now: datetime,
                 number=None, contact: Contact | None = None, conversation_id: str | None = None,
                 waba_id: str = "", phone_number_id: str | None = None, resolve_sender: bool = False,
                 tag: str = "", account_id: str | None = None, account=None) -> SendContext:
    """Every rule in API.md's order for one message; returns the context the writer stores, or raises the
    first refusal. resolve_sender: the API's resolution (pinned or only number, contact by phone); else
    the caller brings `number` and `contact`."""
    if channel in SOCIAL_CHANNELS:
        return social_send_context(workspace=workspace, channel=channel, message_type=message_type, to=to,
                                   content=content, now=now, tag=tag, account_id=account_id, account=account,
                                   contact=contact, waba_id=waba_id)
    templates = None
    if resolve_sender:
        # A template send's candidates come with the sender, in the same round trip.
        targets = sender_resolve(workspace=workspace, waba_id=waba_id, phone_number_id=phone_number_id, to=to,
                                 channel=channel, template_name=content["name"] if message_type == "template" else None)
        number, contact, conversation_id = targets.number, targets.contact, targets.conversation_id
        templates = targets.templates
    else:
        sender_check(number=number, workspace=workspace)
        if channel == EMAIL:
            email_channel_check(workspace=workspace, number=number)
            if message_type != "text":
                raise ValidationFailed("Email messages are text.", field="type")
        recipient_check(to=to, channel=channel)
    block_check(contact=contact)
    ctx = SendContext(workspace=workspace, channel=channel, message_type=message_type, to=to, content=content,
                      now=now, number=number, contact=contact, conversation_id=conversation_id)
    ctx.media = media_resolve(workspace=workspace, message_type=message_type, content=content, waba_id=waba_id)
    if message_type == "template":
        ctx.template, ctx.body = template_resolve(workspace=workspace, number=number, content=content,
                                                  candidates=templates)
        ctx.category = ctx.template.category
        identity_check(category=ctx.category, to=to)
    else:
        ctx.body = body_preview(message_type, content)
        if channel == EMAIL and content.get("marketing"):
            ctx.category = MARKETING  # marketing mail: the same consent rule as marketing templates
    window_check(ctx)
    consent_check(ctx)
    # Mail costs nothing through Reach (the business's SMTP provider bills it).
    ctx.cost = Decimal("0") if channel == EMAIL else cost_estimate(category=ctx.category, to=to, workspace=workspace)
    return ctx


def social_send_context(*, workspace: Workspace, channel: str, message_type: str, to: str, content, now: datetime,
                        tag: str = "", account_id: str | None = None, account=None, contact: Contact | None = None,
                        waba_id: str = "") -> SendContext:
    """A Messenger / Instagram message, the same order: sender (the Page / Instagram account, pinned or the
    workspace's only one of the channel) and recipient (the PSID / IGSID that wrote to it) -> the channel's
    window and tag -> consent (nothing here is marketing) -> wallet (Meta does not charge these)."""
    from apps.conversations.selectors.sending import social_send_targets

    tag_check(channel=channel, tag=tag)
    targets = social_send_targets(workspace=workspace, channel=channel, to=to, account_id=account_id,
                                  account=account, waba_id=waba_id)
    block_check(contact=targets.contact)
    ctx = SendContext(workspace=workspace, channel=channel, message_type=message_type, to=to, content=content,
                      now=now, contact=targets.contact, conversation_id=targets.conversation_id,
                      account=targets.account, tag=tag, last_inbound_at=targets.last_inbound_at)
    ctx.media = media_resolve(workspace=workspace, message_type=message_type, content=content, waba_id=waba_id)
    ctx.body = body_preview(message_type, content)
    window_check(ctx)
    return ctx


def fallback_context(*, message, now: datetime) -> SendContext:
    """The linked SMS of a WhatsApp message that cannot reach the recipient: its own channel's rules."""
    sms = message.fallback["sms"]
    ctx = SendContext(workspace=message.workspace, channel=SMS, message_type="text", to=message.to_phone,
                      content={"body": sms["text"], "sender": sms.get("sender", "")}, now=now,
                      number=message.phone_number, contact=message.contact,
                      conversation_id=message.conversation_id, body=sms["text"])
    sender_check(number=ctx.number, workspace=ctx.workspace)
    recipient_check(to=ctx.to)
    window_check(ctx)
    consent_check(ctx)
    return ctx


# --- campaigns -------------------------------------------------------------------------------------------------


def campaign_check(*, campaign) -> None:
    """What a whole campaign batch needs: its number and its template, still approved."""
    sender_check(number=campaign.phone_number, workspace=campaign.workspace)
    template_check(template=campaign.template)


def campaign_refusal(*, campaign) -> ApplicationError | None:
    """campaign_check's refusal as a value (the preflight reports it instead of raising)."""
    try:
        campaign_check(campaign=campaign)
    except ApplicationError as exc:
        return exc
    return None


def recipient_classify(*, phone: str | None, opted_in: bool | None, requires_opt_in: bool, category: str,
                       missing_variable: bool, blocked: bool = False) -> str | None:
    """One campaign recipient: None when a message may go, else why not (INVALID_NUMBER, BLOCKED, OPTED_OUT,
    NOT_OPTED_IN, MISSING_VARIABLE, checked in that order). The set-based hand-out's CASE is pinned to this.
    `phone` is the contact's address (its phone, else its BSUID); an authentication template needs a real phone.
    `blocked`: the business blocked the contact (block_check's rule: a blocked contact gets nothing)."""
    if not recipient_sendable_address(address=phone, category=category):
        return INVALID_NUMBER
    if blocked:
        return BLOCKED
    refusal = consent_refuses(category=category, opted_in=opted_in, requires_opt_in=requires_opt_in)
    if refusal is not None:
        return refusal
    if missing_variable:
        return MISSING_VARIABLE
    return None
