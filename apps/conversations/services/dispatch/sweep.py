"""The sweeper (beat): release scheduled messages, recover expired leases, expire stale messages, send the
`undelivered` SMS fallbacks that are due, and kick a drain for every number with due work (what the on-commit fast path missed)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from apps.conversations.models import Message
from apps.conversations.services import fallback as fallback_chain
from apps.conversations.services import transitions
from apps.conversations.services.dispatch import fallback, kicks
from apps.conversations.services.dispatch.base import _setting
from apps.core import hooks


def reconcile_window() -> timedelta:
    return timedelta(seconds=_setting("DISPATCH_RECONCILE_SECONDS", 120))


def leases_recover(*, now: datetime | None = None) -> int:
    """Claims whose lease ran out (the worker died) go back to the queue, in one CAS update, but not at once.

    The rule: a claimed send's outcome is unknown once its worker is gone (it may have died after Meta
    accepted it and before recording the answer). Every send carries our message id in Meta's
    `biz_opaque_callback_data`, and Meta echoes it on the message's status webhooks; the receive road
    (receipts.message_statuses_apply) settles an unrecorded send from such a webhook: it attaches the wamid
    and moves it to sent through message_transition. So an expired claim waits DISPATCH_RECONCILE_SECONDS
    past its lease for that report, and only a claim that stayed unreported for the whole window goes back to
    the queue: a message reaches the customer twice only when Meta never reported the first send.

    The window counts in time received, not time applied: a report may have arrived and still wait in the
    receive road's backlog (workers down while the web kept storing webhooks, a status row held by a dead
    worker's claim). So a claim goes back only once every webhook received up to the end of its window has
    been applied (core.hooks.receive_watermark). A send that dies in the request (a read timeout) lapses
    into the same state (dispatch.recording._record_unknown)."""
    now = now or timezone.now()
    before = now - reconcile_window()
    if not Message.objects.filter(status=Message.Status.SENDING, claimed_until__lt=before).exists():
        return 0
    watermark = hooks.receive_watermark()
    if watermark is not None:
        before = min(before, watermark - reconcile_window())
    return transitions.leases_expired_requeue(now=now, before=before)


_EXPIRED = {"code": "MESSAGE_EXPIRED", "message": "The message could not be sent before it expired.",
            "upstream_code": None}


def messages_expire(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Queued messages past their maximum age fail as MESSAGE_EXPIRED."""
    now = now or timezone.now()
    expired = 0
    with transaction.atomic():
        qs = Message.objects.filter(status=Message.Status.QUEUED, expires_at__lte=now).order_by("expires_at")
        if connection.vendor == "postgresql":
            qs = qs.select_for_update(skip_locked=True)
        events: dict[str, list] = {}
        for m in qs[:limit]:
            if transitions.message_transition(message=m, to=Message.Status.FAILED, at=now, error=_EXPIRED,
                                              events=events):
                expired += 1
                linked = fallback.fallback_for(message=m, now=now)  # expiry is a terminal failure too
                if linked is not None:
                    events.setdefault(m.workspace_id, []).extend(linked[1])
        transitions.events_flush(events)
    return expired


def dispatch_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Beat job: release scheduled messages, recover expired leases, expire stale ones, and kick a drain for
    every number with due work."""
    from apps.conversations.services.sending import messages_release_scheduled

    now = now or timezone.now()
    out = {"released": messages_release_scheduled(now=now), "recovered": leases_recover(now=now),
           "expired": messages_expire(now=now), "fallbacks": fallback_chain.fallbacks_due_send(now=now)}
    numbers = list(Message.objects.filter(status=Message.Status.QUEUED, next_attempt_at__lte=now)
                   .order_by().values_list("phone_number_id", flat=True).distinct()[:1000])
    for pn in numbers:
        if pn:
            kicks.dispatch_kick(phone_number_id=pn)
    out["kicked"] = len(numbers)
    from apps.conversations.services.dispatch.social import social_dispatch_kick

    accounts = list(Message.objects.filter(status=Message.Status.QUEUED, next_attempt_at__lte=now,
                                           social_account__isnull=False)
                    .order_by().values_list("social_account_id", flat=True).distinct()[:1000])
    for account_id in accounts:
        social_dispatch_kick(account_id=account_id)
    out["kicked_accounts"] = len(accounts)
    return out
