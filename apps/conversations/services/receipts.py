"""The receive road's delivery statuses: Meta's status webhooks applied to our messages, forward only,
with the reconciliation of sends whose answer was never recorded (dispatch.sweep.leases_recover), the
per-user marketing hold (131049), pricing for billing and the SMS fallback of a late failure.
Runs inside the caller's transaction, like the rest of the receive road (receiving.py)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.conversations.models import Message, MessageAttempt
from apps.conversations.services import transitions
from apps.core.services import event_append_many
from apps.wabas import selectors as waba_selectors

logger = logging.getLogger("reach.receiving")

_UPSTREAM_STATUS = {"sent": "sent", "delivered": "delivered", "read": "read", "played": "read",
                    "failed": "failed"}


class ProcessLater(Exception):  # noqa: N818 - a control-flow signal for the webhook processor
    """The payload refers to something not recorded yet (a status racing the dispatcher's commit)."""

    def __init__(self, reason: str, *, seconds: float):
        super().__init__(reason)
        self.seconds = seconds


# --- statuses ----------------------------------------------------------------------------------------


@dataclass
class StatusResult:
    applied: int = 0
    unchanged: int = 0
    ignored: list[dict] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


def message_statuses_apply(*, updates: list, received_at: datetime | None = None,
                           numbers: dict | None = None) -> StatusResult:
    """Apply Meta status updates (StatusUpdate dataclasses), forward only. Costs a handful of queries per
    sender number whatever the batch size: one locking read, one bulk update, one event append.
    `numbers` caches phone-number lookups (shared with the inbound messages of the same batch)."""
    result = StatusResult()
    numbers = numbers if numbers is not None else {}
    by_number: dict[str, list] = defaultdict(list)
    for update in updates:
        by_number[update.phone_number_id].append(update)
    now = timezone.now()
    for meta_pnid, group in by_number.items():
        if meta_pnid not in numbers:
            numbers[meta_pnid] = waba_selectors.phone_number_by_meta_id(meta_pnid)
        number = numbers[meta_pnid]
        if number is None:
            result.ignored.extend({"kind": "status", "wamid": u.wamid, "reason": "unknown phone_number_id"}
                                  for u in group[:20])
            continue
        wamids = sorted({u.wamid for u in group})
        messages = {
            m.provider_message_id: m
            for m in Message.objects.select_for_update().filter(
                workspace_id=number.workspace_id, provider_message_id__in=wamids,
                direction=Message.Direction.OUTBOUND,
            ).order_by("pk")
        }
        for message in messages.values():  # the number's workspace, loaded once (billing prices by its plan)
            message.workspace = number.workspace
        missing = [w for w in wamids if w not in messages]
        if missing:
            messages.update(_sends_reconcile(number=number, updates=[u for u in group if u.wamid in set(missing)],
                                             now=now))
            missing = [w for w in missing if w not in messages]
        grace = timedelta(seconds=settings.INBOUND_STATUS_ORPHAN_GRACE_SECONDS)
        if missing and received_at is not None and now - received_at < grace:
            # Meta can report `sent` before the dispatcher has committed the wamid it just got back.
            raise ProcessLater(f"{len(missing)} status(es) for unknown wamids",
                               seconds=settings.INBOUND_STATUS_ORPHAN_RETRY_SECONDS)
        result.ignored.extend({"kind": "status", "wamid": w, "reason": "unknown wamid"} for w in missing[:20])
        changed: dict[str, Message] = {}
        held: set[str] = set()  # queued again after a 131049 in this batch: later reports are about the old send
        events: list[tuple[str, dict]] = []
        # Apply in time order, so a batch holding sent+delivered+read tells the story once, forward.
        for update in sorted(group, key=lambda u: (u.timestamp, transitions.RANK.get(_UPSTREAM_STATUS.get(u.status), 9))):
            message = messages.get(update.wamid)
            if message is None or message.pk in held:
                continue
            hold = _hold_for_marketing_limit(message=message, update=update, now=now)
            if hold:
                held.add(message.pk)
                result.applied += 1
                events.extend(hold)
                continue
            previous = message.status
            touched = _status_apply_one(message=message, update=update)
            if not touched:
                result.unchanged += 1
                continue
            result.applied += 1
            changed[message.pk] = message
            if message.status == Message.Status.FAILED and previous != Message.Status.FAILED:
                transitions.billing_settle_final(message)  # releases, or refunds a charge, once
            else:
                transitions.billing_charge(message)  # redelivered / out-of-order statuses find it charged
            if message.status != previous:
                events.extend(transitions.status_events(message, previous, at=update.timestamp))
                if message.status == Message.Status.FAILED:
                    events.extend(_fallback_for_late_failure(message=message, update=update, now=now,
                                                             after_commit=result.after_commit))
        if changed:
            transitions.messages_receipts_save(messages=list(changed.values()), now=now)
        if events:
            event_append_many(workspace=number.workspace, events=events)
    return result


def _update_error(update) -> dict:
    """A failed status's first error as the stored error (Reach's code, Meta's code and text)."""
    from apps.providers.base import error_from_meta

    first = update.errors[0] if update.errors else None
    err = error_from_meta(first.code if first else -1, (first.title or first.message) if first else "",
                          details=first.details if first else "")
    return {"code": err.code, "upstream_code": first.code if first else None,
            "message": " — ".join(x for x in (err.message, first.details if first else "") if x)}


def _hold_for_marketing_limit(*, message: Message, update, now: datetime) -> list:
    """A `failed` with 131049 (the per-user marketing limit; the failure table's `growing` policy) on a sent
    message that is still valid: queued again on the growing schedule instead of failed. Its events, or []
    when it is not such a case (then the failure is applied as any other)."""
    from apps.providers.failures import GROWING, failure_for_meta_code

    if _UPSTREAM_STATUS.get(update.status) != Message.Status.FAILED or message.status != Message.Status.SENT:
        return []
    first = update.errors[0] if update.errors else None
    row = failure_for_meta_code(first.code) if first else None
    if row is None or row.retry != GROWING:
        return []
    retry_at = transitions.hold_retry_at(message=message, now=now)
    if retry_at is None:
        return []
    return transitions.message_hold_requeue(message=message, at=update.timestamp, retry_at=retry_at,
                                            error=_update_error(update))
def _sends_reconcile(*, number, updates: list, now: datetime) -> dict[str, Message]:
    """Statuses for wamids we never recorded, carrying our message id (biz_opaque_callback_data): the send
    went out but its worker died before recording Meta's answer (dispatch.sweep.leases_recover). Settle each
    such message with the reported wamid, unless a live claim still holds it (that worker records its own
    answer; the status waits, ProcessLater). Returns wamid -> message, ready for the receipts."""
    by_id: dict[str, tuple[str, datetime]] = {}
    for u in updates:
        if u.biz_opaque_callback_data and u.biz_opaque_callback_data.startswith("msg_"):
            seen = by_id.get(u.biz_opaque_callback_data)
            if seen is None or u.timestamp < seen[1]:
                by_id[u.biz_opaque_callback_data] = (u.wamid, u.timestamp)
    if not by_id:
        return {}
    settled: dict[str, Message] = {}
    rows = Message.objects.select_for_update().filter(
        Q(provider_message_id="") | Q(provider_message_id__isnull=True), workspace_id=number.workspace_id,
        phone_number_id=number.pk, pk__in=list(by_id), direction=Message.Direction.OUTBOUND,
        status__in=[Message.Status.SENDING, Message.Status.QUEUED],
    ).order_by("pk")
    for message in rows:
        if message.status == Message.Status.SENDING and message.claimed_until and message.claimed_until >= now:
            continue
        wamid, at = by_id[message.pk]
        if wamid in ((message.content or {}).get("previous_wamids") or []):
            continue  # a late status of a send Meta held back (131049): the message waits for its retry
        if transitions.message_send_reconcile(message=message, provider_message_id=wamid, at=at):
            MessageAttempt.objects.get_or_create(
                message_id=message.pk, number=message.attempts + 1,
                defaults={"outcome": MessageAttempt.Outcome.ACCEPTED, "started_at": at, "finished_at": at,
                          "error_message": "accepted by Meta; recorded from its status webhook"})
            settled[wamid] = message
    return settled


def _status_apply_one(*, message: Message, update) -> bool:
    """Apply one upstream report to `message` in memory; True when any field changed."""
    target = _UPSTREAM_STATUS.get(update.status, "")  # an unknown status may still bring pricing
    error = _update_error(update) if target == Message.Status.FAILED else None
    return transitions.message_receipt_apply(message=message, to=target, at=update.timestamp, error=error,
                                             pricing=update.pricing)


def _fallback_for_late_failure(*, message: Message, update, now: datetime, after_commit: list) -> list:
    """Meta reports most undeliverable messages (131026 & co.) as a late `failed` status, not as a send
    error: give them the same SMS fallback the dispatcher gives a synchronous terminal error (the rows
    are locked by the status batch's SELECT … FOR UPDATE)."""
    from apps.conversations.services.dispatch import fallback

    linked = fallback.fallback_for(message=message, now=now)  # the writer kicks the dispatcher on commit
    if linked is None:
        return []
    _, events = linked
    return events
