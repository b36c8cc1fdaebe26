"""The send road up to the queue: the API's send and the internal ones (inbox replies, auto-replies),
each asking the policy (apps.conversations.policy, API.md's order) and writing through the one writer
(services.writer); scheduled messages' cancel and release.

Order, every time: payload validation -> sender resolution -> template status/language/variables ->
24 h window (non-template) -> consent (MARKETING only) -> wallet. Nothing is written until all pass."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from apps.contacts.models import Contact
from apps.contacts.services import contact_address
from apps.conversations import policy
from apps.conversations.models import Message
from apps.conversations.selectors.sending import send_target_guard
from apps.conversations.services import transitions, writer
from apps.conversations.services.validation import (
    MEDIA_TYPES,
    SendRequest,
    body_preview,
    content_validate,
    send_request_validate,
)
from apps.conversations.services.writer import (  # noqa: F401 - the campaign's and the benches' names
    messages_enqueue_bulk,
    messages_enqueue_query,
)
from apps.core.errors import NotFound
from apps.core.models import User, Workspace
from apps.core.sql import is_transient_db_error
from apps.core.tenancy import Tenant
from apps.wabas.models import PhoneNumber

logger = logging.getLogger("reach.sending")


def _one_statement_applies(req: SendRequest) -> bool:
    """Sends whose whole policy is the sender, the contact and its window (no template, no consent, no
    media or message to look up) can be checked inside the statement that writes them."""
    from apps.links.services import has_track

    return (connection.vendor == "postgresql" and req.channel == Message.Channel.WHATSAPP
            and req.to.startswith("+") and req.type not in ("template", "reaction") and not has_track(req.content)
            and not (req.type in MEDIA_TYPES and req.content.get("media_id")))


def _send_in_one_statement(*, tenant: Tenant, req: SendRequest, audit: dict | None, now: datetime) -> Message | None:
    """The common send, a free-form message to a contact inside their window, in their current conversation
    on the workspace's only (or the pinned) number, as ONE statement and one round trip: the policy's read
    is a guard CTE of the write (send_target_guard, pinned to policy.window_is_open by tests), and the
    writer writes only if it found that case. None when it did not: nothing was written, and the caller
    takes the full road, which refuses with the reason, or opens the contact or the conversation."""
    workspace = tenant.workspace
    ctx = policy.SendContext(workspace=workspace, channel=req.channel, message_type=req.type, to=req.to,
                             content=req.content, now=now, body=body_preview(req.type, req.content),
                             cost=policy.cost_estimate(category="", to=req.to))
    guard = send_target_guard(
        workspace=workspace, waba_id=tenant.waba_id, phone_number_id=req.phone_number_id, to=req.to,
        channel_kind=req.channel, window_opened_after=policy.window_opened_after(now))
    return writer.message_write_guarded(
        ctx, guard=guard, sent_by="api", sent_by_user=tenant.user,
        api_key_id=tenant.api_key.pk if tenant.api_key else "", scheduled_at=req.scheduled_at,
        client_reference=req.client_reference, fallback=req.fallback, audit=audit)


# A send that loses a deadlock to a concurrent one (their row locks met in another order) runs again.
SEND_ATTEMPTS = 3


def message_send(*, tenant: Tenant, data: dict, audit: dict | None = None, now: datetime | None = None) -> Message:
    """POST /api/v1/messages: the policy chain, then the queued (or scheduled) row, stored before the 202
    (with the request's audit record, when given, in the same transaction). A lost deadlock leaves nothing
    behind and the send runs again (up to SEND_ATTEMPTS): outside a transaction each write is its own
    (the common send is one autocommit statement); inside the caller's (an Idempotency-Key request), each
    try is a savepoint."""
    now = now or timezone.now()
    req = send_request_validate(data, now=now)
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            if not connection.in_atomic_block:
                return _message_send_once(tenant=tenant, req=req, audit=audit, now=now)
            with transaction.atomic():
                return _message_send_once(tenant=tenant, req=req, audit=audit, now=now)
        except OperationalError as exc:
            if attempt == SEND_ATTEMPTS or not is_transient_db_error(exc):
                raise
            logger.warning("send lost a deadlock (try %s of %s): running it again", attempt, SEND_ATTEMPTS)
    raise AssertionError("unreachable")


def _message_send_once(*, tenant: Tenant, req: SendRequest, audit: dict | None, now: datetime) -> Message:
    if _one_statement_applies(req):
        message = _send_in_one_statement(tenant=tenant, req=req, audit=audit, now=now)
        if message is not None:
            return message
    ctx = policy.send_context(workspace=tenant.workspace, channel=req.channel, message_type=req.type, to=req.to,
                              content=req.content, now=now, waba_id=tenant.waba_id,
                              phone_number_id=req.phone_number_id, resolve_sender=True, tag=req.tag,
                              account_id=req.account_id)
    return writer.message_write(
        ctx, sent_by="api", sent_by_user=tenant.user, api_key_id=tenant.api_key.pk if tenant.api_key else "",
        scheduled_at=req.scheduled_at, client_reference=req.client_reference, fallback=req.fallback, audit=audit)


def message_send_internal(*, workspace: Workspace, phone_number: PhoneNumber | None, contact: Contact,
                          message_type: str, content, sent_by: str, sent_by_user: User | None = None,
                          now: datetime | None = None, channel: str = Message.Channel.WHATSAPP, account=None,
                          tag: str = "") -> Message:
    """Agent replies (inbox), auto-replies and the opt-out confirmation: the same policy, with the sender
    (number, or the Page / Instagram account) and the contact the caller brings; content in API.md shape."""
    now = now or timezone.now()
    content = content_validate(message_type=message_type, content=content)
    if channel in policy.SOCIAL_CHANNELS:
        from apps.contacts.selectors import social_user_id

        to = social_user_id(contact=contact, account=account) if account is not None else ""
        policy.recipient_check(to=to)
    else:
        to = contact_address(contact, channel=channel)
    ctx = policy.send_context(workspace=workspace, channel=channel, message_type=message_type,
                              to=to, content=content, now=now, number=phone_number,
                              contact=contact, account=account, tag=tag)
    return writer.message_write(ctx, sent_by=sent_by, sent_by_user=sent_by_user)


# --- scheduled messages ------------------------------------------------------------------------------


def message_cancel(*, workspace: Workspace, message_id: str, waba_id: str = "") -> Message:
    from apps.core.errors import Conflict

    with transaction.atomic():
        qs = Message.objects.select_for_update().filter(workspace=workspace, pk=message_id,
                                                        direction=Message.Direction.OUTBOUND)
        if waba_id:
            qs = qs.filter(phone_number__waba_id=waba_id)
        message = qs.first()
        if message is None:
            raise NotFound()
        if message.status != Message.Status.SCHEDULED:
            raise Conflict("Only a scheduled message can be canceled.",
                           details={"field": "status", "status": message.status})
        transitions.message_transition(message=message, to=Message.Status.CANCELED)
    return message


def messages_release_scheduled(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Beat: scheduled messages whose time has come become queued (skip-locked, so two beats never race)."""
    now = now or timezone.now()
    with transaction.atomic():
        qs = Message.objects.filter(status=Message.Status.SCHEDULED, scheduled_at__lte=now).order_by("scheduled_at")
        if settings.IS_POSTGRES:
            qs = qs.select_for_update(skip_locked=True)
        events: dict[str, list] = {}
        released = transitions.messages_release_due(messages=list(qs[:limit]), now=now, events=events)
        transitions.events_flush(events)
        for pn in {m.phone_number_id for m in released if m.phone_number_id}:
            writer.kick_on_commit(pn)
        for account_id in {m.social_account_id for m in released if m.social_account_id}:
            from apps.conversations.services.dispatch.social import social_dispatch_kick

            transaction.on_commit(lambda a=account_id: social_dispatch_kick(account_id=a))
    return len(released)
