"""Meta -> us write layer: store the raw webhook body (the row is the queue), then process it.

The endpoint only verifies, stores and answers; processing runs in a task (fast path, enqueued on commit)
or in the periodic sweeper (the durable path: anything unprocessed whose available_at has passed).
A claim is a compare-and-set on claimed_until with a lease, so a killed worker's row is taken again
after the lease and never by two workers at once. Processing is one transaction per webhook: it either
applies every item and marks the row processed, or leaves nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.conversations.services.receiving import ProcessLater
from apps.core.errors import NotFound
from apps.core.ids import new_id
from apps.core.runtime.doorbell import Doorbell
from apps.core.runtime.lease import claim_ids, lease_until, skip_locked_claim_sql
from apps.core.services import events_batched
from apps.core.sql import is_transient_db_error
from apps.webhooks.models import InboundWebhook

logger = logging.getLogger("reach.webhooks.inbound")


# --- storing --------------------------------------------------------------------------------


def inbound_webhook_dedupe_key(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def inbound_webhook_store(*, body: bytes, source: str = InboundWebhook.Source.META,
                          delay_seconds: float = 0.0, hand_over: Callable[[str], bool] | None = None) -> str | None:
    """Store a raw body once (a repeated body is a no-op) and, on commit, hand it to a worker.
    Returns the new row's id, or None when the same body was already stored.
    `hand_over(row_id)`: the web process's own applier (apps/webhooks/applier.py); when it takes the row
    (returns True) no worker is rung for it. Either way the row is the queue: whoever claims it first
    applies it, and the sweeper takes whatever nobody finished.

    One INSERT … ON CONFLICT DO NOTHING statement: the endpoint is on the hot path."""
    now = timezone.now()
    row_id = new_id("iwh")
    table = InboundWebhook._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (id, dedupe_key, source, body, received_at, available_at, attempts, "  # noqa: S608
            "last_error, summary) VALUES (%s, %s, %s, %s, %s, %s, 0, '', '{}') "
            "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
            [row_id, inbound_webhook_dedupe_key(body), source, body, adapt(now),
             adapt(now + timedelta(seconds=max(0.0, delay_seconds)))],
        )
        inserted = cursor.fetchone()
    if inserted is None:
        return None
    countdown = max(0.0, delay_seconds)
    if countdown <= settings.INBOUND_WEBHOOK_MAX_COUNTDOWN_SECONDS:
        # Only a fast path: if the enqueue is lost, the sweeper finds the row once available_at passes.
        transaction.on_commit(lambda: _hand_over_or_enqueue(row_id, countdown, hand_over))
    return row_id


def _hand_over_or_enqueue(webhook_id: str, countdown: float, hand_over: Callable[[str], bool] | None) -> None:
    if countdown <= 0 and hand_over is not None and hand_over(webhook_id):
        return
    _enqueue(webhook_id, countdown)


KICK_KEY = "reach:inbound_webhooks:kick"


def _enqueue(webhook_id: str, countdown: float) -> None:
    """Fast path. A due row rings a doorbell: one Redis SET NX, and a drain task is queued only when none
    is pending, so a burst of webhooks costs one broker publish, not one each. A delayed (simulator) row
    gets its own countdown task."""
    from apps.webhooks.tasks.inbound import inbound_webhook_process_task, inbound_webhooks_drain_task

    try:
        if countdown > 0:
            inbound_webhook_process_task.apply_async(args=[webhook_id], countdown=countdown)
        elif _doorbell.acquire_or_wake("0"):  # held: an idle drainer, if any, wakes and takes the row
            inbound_webhooks_drain_task.delay()
    except Exception:  # broker down: the sweeper picks the row up
        _kick_release(0)
        logger.warning("could not enqueue inbound webhook %s; the sweeper will process it", webhook_id,
                       exc_info=True)


def inbound_webhook_ring_worker() -> None:
    """Ring the drain's doorbell for whatever is due (the web process's applier could not take its rows)."""
    _enqueue("", 0.0)


# The core runtime doorbell, one key per drain slot; it lapses after the lease if a drainer dies.
_doorbell = Doorbell(KICK_KEY, ttl_ms=lambda: settings.INBOUND_WEBHOOK_LEASE_SECONDS * 1000)


def _kick_acquire(slot: int = 0) -> bool:
    return _doorbell.acquire(str(slot))


def _kick_release(slot: int = 0) -> None:
    _doorbell.release(str(slot))


def _fan_out() -> None:
    """A backlog (a full batch claimed): start one more drainer, up to INBOUND_WEBHOOK_DRAINERS; they split
    the rows through SKIP LOCKED claims."""
    from apps.webhooks.tasks.inbound import inbound_webhooks_drain_task

    for slot in range(1, settings.INBOUND_WEBHOOK_DRAINERS):
        try:
            if _kick_acquire(slot):
                inbound_webhooks_drain_task.delay(slot)
                return
        except Exception:
            _kick_release(slot)
            logger.warning("could not start another inbound drainer", exc_info=True)
            return


def inbound_webhooks_drain(*, slot: int = 0, budget_seconds: float = 30.0, idle_seconds: float = 0.0) -> int:
    """The doorbell's task: process due rows until none is left (or the budget is spent), then release
    the doorbell and look once more, so a row stored between the last claim and the release is not
    left for the sweeper. Helper drainers (slot > 0) just stop when the backlog is gone.
    `idle_seconds`: the main drainer, out of rows, first waits that long for a ring (the doorbell's
    wake-up) and goes on at once when one comes: under steady traffic the next webhook is then applied
    without a new task's trip through the broker."""
    import time

    from apps.core.runtime.stopping import stop_requested

    deadline = time.monotonic() + budget_seconds
    batch = settings.INBOUND_WEBHOOK_DRAIN_BATCH
    done = 0
    while True:
        rows = _claim_due_rows(limit=batch)
        ids = [row.pk for row in rows]
        if len(ids) == batch:
            _fan_out()
        done += inbound_webhooks_process_claimed(webhook_ids=ids, rows=rows)
        if ids and time.monotonic() < deadline:
            continue
        if (not ids and slot == 0 and idle_seconds > 0 and time.monotonic() + idle_seconds < deadline
                and not stop_requested() and _doorbell.wait_wake("0", idle_seconds)):
            continue
        _kick_release(slot)
        if slot == 0 and not ids and _due_exists() and _kick_acquire(0):
            continue
        if ids and slot == 0:  # budget spent with work left: hand over to a fresh task
            _enqueue("", 0.0)
        return done


def inbound_webhooks_apply_stored(*, webhook_ids: list[str]) -> int:
    """The web process's fast road: apply rows it has just stored, without the hop to a worker. They are
    claimed through the drain's own claim (same conditions, same lease), so a row a drainer or the sweeper
    took already is skipped here and one taken here is skipped there; a row claimed here whose process
    died is taken again when the lease runs out. Returns how many rows it processed."""
    if not webhook_ids:
        return 0
    rows = _claim_due_rows(limit=len(webhook_ids), ids=webhook_ids)
    return inbound_webhooks_process_claimed(webhook_ids=[row.pk for row in rows], rows=rows)


def _due_exists() -> bool:
    now = timezone.now()
    return InboundWebhook.objects.filter(processed_at__isnull=True, available_at__lte=now,
                                         attempts__lt=settings.INBOUND_WEBHOOK_MAX_ATTEMPTS).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)).exists()


def inbound_sink(*, payload: dict, delay_seconds: float = 0.0, source: str = "simulator") -> None:
    """Registered as core.hooks' inbound sink: the in-process simulator delivers through here."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    inbound_webhook_store(body=body, source=source, delay_seconds=delay_seconds)


# --- claiming -------------------------------------------------------------------------------


def inbound_webhook_claim(*, webhook_id: str, force: bool = False) -> InboundWebhook | None:
    """Compare-and-set claim with a lease. None when processed, not yet due, leased by another worker,
    or out of attempts (force=True, the admin's reprocess, ignores the last two)."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.INBOUND_WEBHOOK_LEASE_SECONDS)
    qs = InboundWebhook.objects.filter(pk=webhook_id, processed_at__isnull=True)
    if not force:
        qs = qs.filter(available_at__lte=now, attempts__lt=settings.INBOUND_WEBHOOK_MAX_ATTEMPTS).filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
        )
    if qs.update(claimed_until=lease, attempts=F("attempts") + 1) != 1:
        return None
    return InboundWebhook.objects.get(pk=webhook_id)


def inbound_webhooks_claim_due(*, limit: int, ids: list[str] | None = None) -> list[str]:
    """Claim up to `limit` unprocessed rows that are due and not leased, in one short transaction
    (SKIP LOCKED on PostgreSQL, so concurrent sweepers split the work instead of waiting on each other).
    `ids`: only among these rows."""
    now = timezone.now()
    qs = (
        InboundWebhook.objects.filter(processed_at__isnull=True, available_at__lte=now,
                                      attempts__lt=settings.INBOUND_WEBHOOK_MAX_ATTEMPTS)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("available_at")
    )
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    # The recheck repeats the conditions: the compare-and-set is what makes the claim safe.
    return claim_ids(qs, limit=limit, recheck=InboundWebhook.objects.filter(processed_at__isnull=True).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)),
        update={"claimed_until": lease_until(settings.INBOUND_WEBHOOK_LEASE_SECONDS, now),
                "attempts": F("attempts") + 1})


def _claim_due_rows(*, limit: int, ids: list[str] | None = None) -> list[InboundWebhook]:
    """The drain's claim: on PostgreSQL one UPDATE … WHERE id IN (… FOR UPDATE SKIP LOCKED) RETURNING the
    rows' bodies, so a claim costs one round trip and the rows need no reload. Same conditions as
    inbound_webhooks_claim_due (which other databases use). `ids`: only among these rows (the web
    process's applier claims the rows it stored, through this same claim)."""
    if not connection.features.has_select_for_update_skip_locked or connection.vendor != "postgresql":
        ids = inbound_webhooks_claim_due(limit=limit, ids=ids)
        return list(InboundWebhook.objects.filter(pk__in=ids, processed_at__isnull=True).order_by("pk")) if ids else []
    now = timezone.now()
    table = InboundWebhook._meta.db_table
    only = " AND id = ANY(%s)" if ids is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            skip_locked_claim_sql(
                table=table, set_sql="claimed_until = %s, attempts = attempts + 1",
                where_sql="processed_at IS NULL AND available_at <= %s AND attempts < %s "
                          "AND (claimed_until IS NULL OR claimed_until < %s)" + only,
                order_sql="available_at", returning="id, body, received_at, attempts"),
            [lease_until(settings.INBOUND_WEBHOOK_LEASE_SECONDS, now), now,
             settings.INBOUND_WEBHOOK_MAX_ATTEMPTS, now, *([list(ids)] if ids is not None else []), limit],
        )
        found = cursor.fetchall()
    return sorted((InboundWebhook(id=i, body=b, received_at=r, attempts=a) for i, b, r, a in found),
                  key=lambda row: row.pk)


# --- processing -----------------------------------------------------------------------------


@dataclass
class ProcessOutcome:
    webhook_id: str
    status: str  # processed | skipped | deferred | failed
    summary: dict = field(default_factory=dict)
    error: str = ""


def inbound_webhook_process(*, webhook_id: str, force: bool = False, claimed: bool = False,
                            row: InboundWebhook | None = None) -> ProcessOutcome:
    """Claim the row, parse it, apply every item in one transaction and mark it processed in the
    same transaction; after commit, run the side effects (auto-replies, media downloads).
    `row`: the claimed row as the claim returned it (saves a reload; the final compare-and-set on
    processed_at still guards against a concurrent finisher)."""
    if row is None or not claimed:
        row = None if claimed else inbound_webhook_claim(webhook_id=webhook_id, force=force)
    if claimed and row is None:
        row = InboundWebhook.objects.filter(pk=webhook_id, processed_at__isnull=True).first()
    if row is None:
        return ProcessOutcome(webhook_id, "skipped")
    try:
        payload = json.loads(bytes(row.body))
    except ValueError as exc:  # cannot happen for rows the endpoint stored; kept out of the retry loop
        InboundWebhook.objects.filter(pk=row.pk).update(
            processed_at=timezone.now(), claimed_until=None, last_error=f"not JSON: {exc}", summary={"invalid": 1}
        )
        return ProcessOutcome(webhook_id, "failed", error=str(exc))
    try:
        with transaction.atomic():
            after_commit: list = []
            with events_batched():
                summary = inbound_payload_apply(payload=payload, after_commit=after_commit,
                                                received_at=row.received_at)
            done = InboundWebhook.objects.filter(pk=row.pk, processed_at__isnull=True).update(
                processed_at=timezone.now(), claimed_until=None, last_error="", summary=summary
            )
            if done != 1:  # someone else (the admin's force) finished it meanwhile: keep theirs
                raise _AlreadyDone()
            for callback in after_commit:
                transaction.on_commit(callback)
    except _AlreadyDone:
        return ProcessOutcome(webhook_id, "skipped")
    except ProcessLater as exc:
        InboundWebhook.objects.filter(pk=row.pk).update(
            available_at=timezone.now() + timedelta(seconds=exc.seconds), claimed_until=None,
            attempts=max(0, row.attempts - 1), last_error=f"deferred: {exc}",
        )
        return ProcessOutcome(webhook_id, "deferred", error=str(exc))
    except Exception as exc:
        logger.exception("inbound webhook %s failed", webhook_id)
        backoff = min(3600.0, settings.INBOUND_WEBHOOK_RETRY_BASE_SECONDS * (2 ** max(0, row.attempts - 1)))
        if _is_transient_db_error(exc):  # lost a deadlock or serialization race: the next drain retries it
            backoff = 0.0
        InboundWebhook.objects.filter(pk=row.pk).update(
            available_at=timezone.now() + timedelta(seconds=backoff), claimed_until=None,
            last_error=f"{type(exc).__name__}: {exc}"[:4000],
        )
        return ProcessOutcome(webhook_id, "failed", error=str(exc))
    return ProcessOutcome(webhook_id, "processed", summary=summary)


class _AlreadyDone(Exception):
    pass


def _is_transient_db_error(exc: Exception) -> bool:
    return is_transient_db_error(exc)


def inbound_webhooks_process_claimed(*, webhook_ids: list[str], rows: list[InboundWebhook] | None = None) -> int:
    """Process rows this worker has claimed. Several rows share one transaction (one commit, and all their
    statuses applied in one bulk pass); if anything in the batch fails or must wait, the batch is rolled
    back and every row gets its own transaction, so one bad row never holds up the others."""
    if len(webhook_ids) > 1:
        try:
            return _process_batch(webhook_ids, claimed=rows)
        except Exception as exc:  # includes ProcessLater: sort it out row by row
            logger.info("inbound batch of %d fell back to one by one: %s", len(webhook_ids), exc)
    at_hand = {row.pk: row for row in rows or ()}
    return sum(inbound_webhook_process(webhook_id=i, claimed=True, row=at_hand.get(i)).status == "processed"
               for i in webhook_ids)


def _process_batch(webhook_ids: list[str], claimed: list[InboundWebhook] | None = None) -> int:
    """`claimed`: the rows as the claim returned them (bodies included). They are used as they are, and
    the compare-and-set that marks them processed is what keeps a row from being applied twice (a
    concurrent finisher, the admin's force, makes it miss one: the batch rolls back and goes row by row)."""
    from apps.conversations.services import receiving
    from apps.providers.meta_cloud import webhooks as meta_webhooks

    with transaction.atomic():
        if claimed is not None and {row.pk for row in claimed} == set(webhook_ids):
            rows = sorted(claimed, key=lambda row: row.pk)
        else:
            rows = list(InboundWebhook.objects.select_for_update()
                        .filter(pk__in=webhook_ids, processed_at__isnull=True).order_by("pk"))
        after_commit: list = []
        statuses: list = []
        summaries = {}
        payloads = {row.pk: json.loads(bytes(row.body)) for row in rows}
        items = {row.pk: [] if isinstance(payloads[row.pk], dict) and payloads[row.pk].get("object") in SOCIAL_OBJECTS
                 else meta_webhooks.parse_webhook(payloads[row.pk]) for row in rows}
        # Lock order, the same in every batch: contacts (by workspace, then phone: inbound_batch_prepare locks
        # the known senders together; new ones are created in row order, rows sorted by sender), then messages
        # (statuses, by id), then the workspaces' event counters (events_batched), so concurrent drainers
        # never deadlock.
        batch = receiving.ReceiveBatch()  # phone numbers, contacts, wamids, conversations: read once per batch
        receiving.inbound_batch_prepare(batch=batch, items=[
            item for row in rows for item in items[row.pk] if type(item).__name__ == "InboundMessage"])
        with events_batched():
            for row in sorted(rows, key=lambda r: (_senders_key(payloads[r.pk]), r.pk)):
                summaries[row.pk] = inbound_payload_apply(payload=payloads[row.pk], after_commit=after_commit,
                                                          received_at=row.received_at, statuses_out=statuses,
                                                          numbers=batch.numbers, items=items[row.pk], batch=batch)
            if statuses:
                newest = max(r.received_at for r in rows)
                result = receiving.message_statuses_apply(updates=statuses, received_at=newest,
                                                          numbers=batch.numbers)
                after_commit.extend(result.after_commit)
                if result.ignored:
                    for row in rows:  # which row held which ignored wamid is not tracked in a batch
                        summaries[row.pk].setdefault("ignored_in_batch", len(result.ignored))
        now = timezone.now()
        # Rows with the same summary (nearly all: {"messages": 1}) are marked in one UPDATE; bulk_update's
        # CASE per row and field cost more Python than the batch's whole receive road.
        same: dict[str, list[str]] = {}
        for row in rows:
            same.setdefault(json.dumps(summaries[row.pk], sort_keys=True), []).append(row.pk)
        marked = 0
        for summary_json, ids in same.items():
            marked += InboundWebhook.objects.filter(pk__in=ids, processed_at__isnull=True).update(
                processed_at=now, claimed_until=None, last_error="", summary=json.loads(summary_json))
        if marked != len(rows):  # another finisher got one first: undo the batch, go row by row
            raise _AlreadyDone()
        for callback in after_commit:
            transaction.on_commit(callback)
    return len(rows)


def _senders_key(payload: dict) -> tuple:
    """The customers a payload's messages come from, sorted: the batch's contact lock order."""
    senders = set()
    for entry in payload.get("entry") or ():
        for change in (entry.get("changes") or ()) if isinstance(entry, dict) else ():
            value = change.get("value") if isinstance(change, dict) else None
            for message in (value.get("messages") or ()) if isinstance(value, dict) else ():
                if isinstance(message, dict):
                    senders.add(str(message.get("from") or message.get("from_user_id") or ""))
    return tuple(sorted(senders))


def inbound_payload_apply(*, payload: dict, after_commit: list, received_at=None,
                          statuses_out: list | None = None, numbers: dict | None = None, items: list | None = None,
                          batch=None) -> dict:
    """Route every parsed item to its domain service. Runs inside the caller's transaction. With
    `statuses_out`, statuses are collected there (the batch applies many rows' statuses at once); `items`:
    the payload already parsed; `batch`: the receive road's look-ups for the whole batch
    (receiving.ReceiveBatch)."""
    from apps.conversations.services import receiving
    from apps.providers.meta_cloud import webhooks as meta_webhooks

    if isinstance(payload, dict) and payload.get("object") in SOCIAL_OBJECTS:
        return _social_payload_apply(payload=payload, after_commit=after_commit, received_at=received_at)
    if items is None:
        items = meta_webhooks.parse_webhook(payload)
    summary: dict = {}
    ignored: list[dict] = []

    def bump(key: str, n: int = 1) -> None:
        summary[key] = summary.get(key, 0) + n

    statuses = []
    numbers = numbers if numbers is not None else {}
    for item in items:
        kind = type(item).__name__
        if kind == "InboundMessage":
            result = receiving.message_inbound_receive(item=item, numbers=numbers, batch=batch)
            if result.ignored:
                ignored.append({"kind": "message", "wamid": item.wamid, "reason": result.ignored})
            elif result.duplicate:
                bump("duplicate_messages")
            else:
                bump("messages")
                after_commit.extend(result.after_commit)
        elif kind == "StatusUpdate":
            statuses.append(item)
        elif kind in _ACCOUNT_HANDLERS:
            name, handler = _ACCOUNT_HANDLERS[kind]
            try:
                with transaction.atomic():  # a savepoint: an unknown template/number must not spoil the rest
                    applied = handler(item)
            except NotFound as exc:
                ignored.append({"kind": name, "waba_id": item.waba_id, "reason": exc.message})
            else:
                if applied is None:
                    ignored.append({"kind": name, "waba_id": item.waba_id, "reason": "unknown WABA or template"})
                else:
                    bump(name)
        elif kind == "LinkClick":
            if receiving.link_click_apply(item=item, numbers=numbers):
                bump("link_clicks")
            else:
                ignored.append({"kind": "link_click", "reason": "unknown phone_number_id"})
        elif kind == "UserPreferenceUpdate":
            if receiving.user_preference_apply(item=item):
                bump("user_preferences")
            else:
                ignored.append({"kind": "user_preferences", "reason": "unknown phone_number_id"})
        else:
            bump(f"unhandled:{kind}")
    if statuses and statuses_out is not None:
        statuses_out.extend(statuses)
        bump("statuses_batched", len(statuses))
    elif statuses:
        result = receiving.message_statuses_apply(updates=statuses, received_at=received_at, numbers=numbers)
        bump("statuses", result.applied)
        if result.unchanged:
            bump("statuses_unchanged", result.unchanged)
        ignored.extend(result.ignored)
        after_commit.extend(result.after_commit)
    if ignored:
        summary["ignored"] = ignored[:100]
        summary["ignored_count"] = len(ignored)
    return summary


SOCIAL_OBJECTS = ("page", "instagram")  # Messenger and Instagram share the receiver and its signature check


def _social_payload_apply(*, payload: dict, after_commit: list, received_at=None) -> dict:
    from apps.conversations.services import social

    applied = social.social_payload_apply(payload=payload, received_at=received_at)
    after_commit.extend(applied.after_commit)
    summary = {key: n for key, n in (("messages", applied.inbound), ("duplicate_messages", applied.duplicates),
                                     ("receipts", applied.receipts)) if n}
    if applied.ignored:
        summary["ignored"], summary["ignored_count"] = applied.ignored[:100], len(applied.ignored)
    return summary


def _template_status(item):
    from apps.message_templates import services as template_services

    return template_services.template_status_apply(
        waba_meta_id=item.waba_id, meta_template_id=str(item.meta_template_id), name=item.name,
        language=item.language, event=item.event, reason=item.reason or "", category=item.category,
    )


def _template_category(item):
    from apps.message_templates import services as template_services

    return template_services.template_category_apply(
        waba_meta_id=item.waba_id, meta_template_id=str(item.meta_template_id), name=item.name,
        language=item.language, previous_category=item.previous_category, new_category=item.new_category,
        correct_category=item.correct_category,
    )


def _template_quality(item):
    from apps.message_templates import services as template_services

    return template_services.template_quality_apply(
        waba_meta_id=item.waba_id, meta_template_id=str(item.meta_template_id), name=item.name,
        language=item.language, previous_score=item.previous_score, new_score=item.new_score,
    )


def _phone_quality(item):
    from apps.wabas import services as waba_services

    return waba_services.phone_number_quality_apply(
        waba_meta_id=item.waba_id, display_phone_number=item.display_phone_number, event=item.event,
        current_limit=item.current_limit,
    )


def _business_capability(item):
    from apps.wabas import services as waba_services

    return waba_services.business_capability_apply(
        waba_meta_id=item.waba_id, max_daily_conversations_per_business=item.max_daily_conversations_per_business,
        max_phone_numbers_per_business=item.max_phone_numbers_per_business)


_ACCOUNT_HANDLERS = {
    "BusinessCapabilityUpdate": ("business_capability", _business_capability),
    "TemplateStatusUpdate": ("template_status", _template_status),
    "TemplateCategoryUpdate": ("template_category", _template_category),
    "TemplateQualityUpdate": ("template_quality", _template_quality),
    "PhoneNumberQualityUpdate": ("phone_number_quality", _phone_quality),
}


# --- the sweeper and the admin ----------------------------------------------------------------


def inbound_webhooks_sweep(*, limit: int | None = None) -> int:
    """Process whatever is due and unclaimed (the durable path). Returns how many rows it processed."""
    limit = limit or settings.INBOUND_WEBHOOK_SWEEP_BATCH
    done = 0
    ids = inbound_webhooks_claim_due(limit=limit)
    for start in range(0, len(ids), settings.INBOUND_WEBHOOK_DRAIN_BATCH):
        done += inbound_webhooks_process_claimed(webhook_ids=ids[start:start + settings.INBOUND_WEBHOOK_DRAIN_BATCH])
    return done


def inbound_webhook_reprocess(*, webhook_id: str) -> ProcessOutcome:
    """Admin action: run a row again. A processed row is reopened; processing is idempotent, so a
    repeated wamid or status changes nothing."""
    InboundWebhook.objects.filter(pk=webhook_id).update(
        processed_at=None, claimed_until=None, attempts=0, available_at=timezone.now()
    )
    return inbound_webhook_process(webhook_id=webhook_id)


def inbound_webhooks_purge(*, older_than_days: int | None = None, batch: int = 5000) -> int:
    """Processed rows are only an audit trail once Meta's redelivery window (7 days) is over."""
    days = older_than_days if older_than_days is not None else settings.INBOUND_WEBHOOK_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    ids = list(InboundWebhook.objects.filter(processed_at__isnull=False, processed_at__lt=cutoff)
               .values_list("pk", flat=True)[:batch])
    return InboundWebhook.objects.filter(pk__in=ids).delete()[0] if ids else 0
