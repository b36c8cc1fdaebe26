"""Record: one short transaction per batch; an attempt row per call; every status move through
transitions. Retryable errors go back to queued with `next_attempt_at` (Retry-After, else exponential with
±20% jitter); past `expires_at` the message fails as MESSAGE_EXPIRED; terminal errors fail it with the
mapped code and bring the SMS fallback when the message asked for one. A send whose outcome is unknown (the
request may have reached Meta) keeps its claim, lapsed, for the reconciliation road."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.conversations.models import Message, MessageAttempt
from apps.conversations.services import sms, transitions
from apps.conversations.services.dispatch import fallback, kicks
from apps.conversations.services.dispatch.base import Outcome, _setting, _Terminal


def _backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after:
        return float(retry_after)
    base = float(_setting("DISPATCH_BACKOFF_BASE_SECONDS", 2.0))
    cap = float(_setting("DISPATCH_BACKOFF_MAX_SECONDS", 900.0))
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay * random.uniform(0.8, 1.2)


def _error_fields(err) -> dict:
    return {"code": getattr(err, "code", "DISPATCH_ERROR"), "message": getattr(err, "message", str(err))[:2000],
            "upstream_code": getattr(err, "upstream_code", None)}


def outcomes_record(*, outcomes: list[Outcome], token: str, now: datetime | None = None) -> dict[str, int]:
    """Write a batch's results in one short transaction. Rows whose claim was lost (lease expired and
    re-claimed) are left alone: the CAS on the claim token refuses them."""
    now = now or timezone.now()
    counts: dict[str, int] = defaultdict(int)
    if not outcomes:
        return counts
    events: dict[str, list] = {}
    attempts: list[MessageAttempt] = []
    kick: set[str] = set()
    with transaction.atomic():
        accepted = [o for o in outcomes if o.kind == "accepted"]
        sent_ids = transitions.messages_mark_sent(
            items=[transitions.Sent(message=o.message, provider_message_id=o.provider_message_id,
                                    at=o.finished_at or now) for o in accepted],
            token=token, now=now, events=events)
        counts["sent"] += len(sent_ids)
        for o in accepted:
            if o.message.pk in sent_ids:
                attempts.append(_attempt(o, o.message.attempts + 1, MessageAttempt.Outcome.ACCEPTED))
                if o.message.channel == Message.Channel.SMS:
                    sms.sms_accepted_record(message=o.message, segments=getattr(o.sms, "segments", None),
                                            price=getattr(o.sms, "price", None),
                                            price_unit=getattr(o.sms, "price_unit", ""))
        for o in outcomes:
            if o.kind == "deferred":
                if transitions.messages_release_claims(messages=[o.message], token=token, now=now,
                                                       next_attempt_at=now + timedelta(seconds=o.defer_seconds)):
                    counts["deferred"] += 1
            elif o.kind in ("retryable", "terminal"):
                _record_failure(o, token=token, now=now, counts=counts, events=events, attempts=attempts,
                                kick=kick)
            elif o.kind == "unknown":
                _record_unknown(o, token=token, now=now, counts=counts)
        if attempts:
            _attempts_insert(attempts)
        transitions.events_flush(events)
        for pn in kick:
            transaction.on_commit(lambda pn=pn: kicks.dispatch_kick(phone_number_id=pn))
    return counts


def _record_unknown(o: Outcome, *, token: str, now: datetime, counts: dict) -> None:
    """The call failed after the request left (a read timeout, a cut connection): Meta may have accepted it.
    The claim is ended as if its worker had died, so the one rule for an unknown outcome applies
    (dispatch.sweep.leases_recover): a status webhook carrying our id settles it, and only a send Meta never
    reported within the reconciliation window goes back to the queue."""
    e = _error_fields(o.error)
    if transitions.messages_claims_lapse(messages=[o.message], token=token, now=now,
                                         also={"error_code": e["code"], "error_message": e["message"]}):
        counts["unknown"] += 1


def _record_failure(o: Outcome, *, token: str, now: datetime, counts: dict, events: dict, attempts: list,
                    kick: set) -> None:
    m = o.message
    err = o.error
    number = m.attempts + 1
    expired = m.expires_at is not None and m.expires_at <= now
    if o.kind == "retryable" and not expired:
        delay = _backoff(number, getattr(err, "retry_after", None))
        if delay >= 0 and (m.expires_at is None or now + timedelta(seconds=delay) < m.expires_at):
            e = _error_fields(err)
            if transitions.messages_release_claims(
                    messages=[m], token=token, now=now, next_attempt_at=now + timedelta(seconds=delay),
                    also={"attempts": F("attempts") + 1, "error_code": e["code"], "error_message": e["message"],
                          "upstream_code": e["upstream_code"]}):
                counts["retried"] += 1
                attempts.append(_attempt(o, number, MessageAttempt.Outcome.RETRYABLE))
            return
        expired = True
    if expired and o.kind == "retryable":
        err = _Terminal("MESSAGE_EXPIRED", "Retries ran past the message's maximum age; last error: "
                        f"{getattr(err, 'code', '')} {getattr(err, 'message', '')}".strip(),
                        upstream_code=getattr(err, "upstream_code", None))
    called = o.started_at is not None
    if not transitions.message_transition(
            message=m, to=Message.Status.FAILED, at=now, error=_error_fields(err), guard={"claim_token": token},
            also={"claim_token": "", "claimed_until": None, "attempts": F("attempts") + (1 if called else 0)},
            events=events):
        return
    counts["failed"] += 1
    if called:
        attempts.append(_attempt(o, number, MessageAttempt.Outcome.TERMINAL))
    if fallback.fallback_wanted(m):  # any terminal WhatsApp failure
        linked = fallback.fallback_for(message=m, now=now)
        if linked is not None:
            sms, evts = linked
            events.setdefault(m.workspace_id, []).extend(evts)
            kick.add(sms.phone_number_id)


_ATTEMPT_COLS = ("message_id", "number", "outcome", "http_status", "error_code", "upstream_code", "error_message",
                 "latency_ms", "started_at", "finished_at")


def _attempts_insert(attempts: list[MessageAttempt]) -> None:
    """COPY on PostgreSQL (an attempt row per send at 1,000 mps); bulk_create elsewhere."""
    if connection.vendor != "postgresql":
        MessageAttempt.objects.bulk_create(attempts, ignore_conflicts=True)
        return
    table = MessageAttempt._meta.db_table
    sql = f"COPY {table} ({', '.join(_ATTEMPT_COLS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for a in attempts:
            copy.write_row([getattr(a, c) for c in _ATTEMPT_COLS])


def _attempt(o: Outcome, number: int, outcome: str) -> MessageAttempt:
    err = o.error
    return MessageAttempt(
        message_id=o.message.pk, number=number, outcome=outcome,
        http_status=getattr(err, "http_status", None) if err else 200,
        error_code=getattr(err, "code", "") if err else "", upstream_code=getattr(err, "upstream_code", None),
        error_message=(getattr(err, "message", "") or "")[:2000] if err else "", latency_ms=o.latency_ms,
        started_at=o.started_at or timezone.now(), finished_at=o.finished_at or timezone.now(),
    )
