"""The delivery engine's database side: fan events out into deliveries, claim due deliveries with a
lease, record attempt outcomes and schedule retries. The HTTP side is in sender.py / runner.py.

Exactly once per (event, subscription): the dispatcher locks the subscription rows it works on
(SKIP LOCKED, so parallel dispatchers split the work), creates deliveries for the events after each
subscription's cursor and advances the cursor in the same transaction; the unique constraint on
(subscription, event_id) is the backstop. Event sequences become visible in order (core reserves
them under the workspace row lock held until commit), so a cursor never skips an event.
"""

from __future__ import annotations

import json
import logging
import random
import secrets as pysecrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from apps.core.events import event_type_is_public
from apps.core.ids import new_id
from apps.core.models import Event, Workspace
from apps.core.runtime.lease import claim_ids, skip_locked_claim_sql
from apps.core.scoping import waba_scoped
from apps.core.services import event_envelope
from apps.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from apps.webhooks.services.outbound import ratecap
from apps.webhooks.services.outbound.signing import secret_key_bytes
from apps.webhooks.services.outbound.subscriptions import subscription_signing_secrets

logger = logging.getLogger("reach.webhooks.outbound")
Status = WebhookDelivery.Status


def _locked(qs):
    if connection.vendor == "postgresql":
        return qs.select_for_update(skip_locked=True)
    return qs  # SQLite: the IMMEDIATE transaction already serialises writers


def _relaxed_commit() -> None:
    """Claims, attempt logs and fan-out batches may skip waiting for the WAL flush: a crash can only
    lose the last few milliseconds of them, which means a delivery is claimed again after its lease,
    or sent once more (at least once, same webhook-id), never lost."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


_CLAIM_RETURNING = ("id", "payload", "attempt_count", "cycle_attempts", "event_sequence")


def _claim_rows(*, subscription_id: str, limit: int, now: datetime, until: datetime, token: str,
                delivery_id: str | None = None) -> list[tuple]:
    """Compare-and-set claim of up to `limit` due deliveries of one subscription, in event order.
    Returns (id, payload, attempt_count, cycle_attempts, event_sequence) rows."""
    table = WebhookDelivery._meta.db_table
    if connection.vendor == "postgresql":
        # One autocommit statement (atomic by itself): no BEGIN/SET/COMMIT round trips. The CTE relaxes
        # synchronous_commit for just this statement's transaction (see _relaxed_commit).
        only_one = " AND id = %s" if delivery_id else ""
        params = [until, token, subscription_id, now, now, *([delivery_id] if delivery_id else []), limit]
        with connection.cursor() as cursor:
            cursor.execute(
                skip_locked_claim_sql(
                    table=table, with_sql="relaxed AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', "
                                          "true))", from_sql="relaxed",
                    set_sql="claimed_until = %s, claim_token = %s",
                    where_sql="subscription_id = %s AND status = 'pending' AND next_attempt_at <= %s "
                              f"AND (claimed_until IS NULL OR claimed_until <= %s){only_one}",
                    order_sql="event_sequence, id", returning=", ".join(_CLAIM_RETURNING)),
                params,
            )
            return cursor.fetchall()
    rows = _due(now).filter(subscription_id=subscription_id)
    if delivery_id:
        rows = rows.filter(pk=delivery_id)
    ids = claim_ids(rows.order_by("event_sequence", "id"), limit=limit, recheck=_due(now),
                    update={"claimed_until": until, "claim_token": token})
    if not ids:
        return []
    return list(WebhookDelivery.objects.filter(pk__in=ids, claim_token=token).values_list(*_CLAIM_RETURNING))


def subscription_matches(events: list[str], event_type: str) -> bool:
    if events == ["*"]:
        return event_type_is_public(event_type)
    return event_type in events


def body_for_event(*, event: Event, workspace: Workspace) -> str:
    return json.dumps(event_envelope(event=event, workspace=workspace), cls=DjangoJSONEncoder,
                      separators=(",", ":"), ensure_ascii=False)


# --- fan-out -------------------------------------------------------------------------------------


def events_fan_out(*, workspace_id: str | None = None, batch: int = 1000) -> int:
    """Create the deliveries for every event after each subscription's cursor. Safe to run anywhere,
    any number of times, in parallel. Returns how many deliveries were created."""
    behind = WebhookSubscription.objects.filter(
        deleted_at__isnull=True, event_cursor__lt=F("workspace__event_sequence")
    )
    if workspace_id:
        behind = behind.filter(workspace_id=workspace_id)
    workspace_ids = list(behind.order_by().values_list("workspace_id", flat=True).distinct()[:1000])
    created = 0
    for ws_id in workspace_ids:
        while True:
            count, more = _fan_out_workspace(ws_id, batch)
            created += count
            if not more:
                break
    return created


def _fan_out_workspace(workspace_id: str, batch: int) -> tuple[int, bool]:
    head = Workspace.objects.filter(pk=workspace_id).values_list("event_sequence", flat=True).first()
    if head is None:
        return 0, False
    with transaction.atomic():
        _relaxed_commit()
        subs = list(_locked(
            WebhookSubscription.objects.filter(workspace_id=workspace_id, deleted_at__isnull=True,
                                               event_cursor__lt=head).order_by("id")
        ))
        if not subs:
            return 0, False
        low = min(s.event_cursor for s in subs)
        events = list(Event.objects.filter(workspace_id=workspace_id, sequence__gt=low, sequence__lte=head)
                      .order_by("sequence")[:batch])
        if not events:
            return 0, False
        workspace = Workspace.objects.select_related("sandbox_of").get(pk=workspace_id)
        last = events[-1].sequence
        bodies: dict[str, str] = {}
        rows: list[WebhookDelivery] = []
        # A WABA-bound subscription gets only its WABA's events (the binding's one rule, apps.core.scoping).
        waba_events = {waba_id: set(waba_scoped(Event.objects.filter(pk__in=[e.pk for e in events]),
                                                waba_id=waba_id).values_list("pk", flat=True))
                       for waba_id in {s.waba_id for s in subs if s.waba_id}}
        for sub in subs:
            for event in events:
                if event.sequence <= sub.event_cursor or not sub.enabled:
                    continue
                if not subscription_matches(sub.events, event.type):
                    continue
                if sub.waba_id and event.pk not in waba_events[sub.waba_id]:
                    continue
                if event.id not in bodies:
                    bodies[event.id] = body_for_event(event=event, workspace=workspace)
                rows.append(WebhookDelivery(
                    workspace_id=workspace_id, subscription_id=sub.pk, event_id=event.id, event_type=event.type,
                    event_sequence=event.sequence, event_created_at=event.created_at, payload=bodies[event.id],
                    next_attempt_at=event.created_at,
                ))
        _deliveries_insert(rows)
        for sub in subs:
            if last > sub.event_cursor:
                WebhookSubscription.objects.filter(pk=sub.pk).update(event_cursor=last)
    return len(rows), last < head


_DELIVERY_COLUMNS = (
    ("id", "varchar"), ("workspace_id", "varchar"), ("subscription_id", "varchar"), ("event_id", "varchar"),
    ("event_type", "varchar"), ("event_sequence", "bigint"), ("event_created_at", "timestamptz"),
    ("payload", "text"), ("status", "varchar"), ("attempt_count", "int"), ("cycle_attempts", "int"),
    ("next_attempt_at", "timestamptz"), ("claim_token", "varchar"), ("last_error", "varchar"),
    ("created_at", "timestamptz"),
)


def _deliveries_insert(rows: list[WebhookDelivery]) -> None:
    """Insert, skipping any (subscription, event) that already has its delivery (the unique backstop)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        return
    now = timezone.now()
    values = [
        (new_id("whd"), r.workspace_id, r.subscription_id, r.event_id, r.event_type, r.event_sequence,
         r.event_created_at, r.payload, Status.PENDING, 0, 0, r.next_attempt_at, "", "", now)
        for r in rows
    ]
    arrays = [list(col) for col in zip(*values, strict=True)]
    names = ", ".join(name for name, _ in _DELIVERY_COLUMNS)
    casts = ", ".join(f"%s::{kind}[]" for _, kind in _DELIVERY_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {WebhookDelivery._meta.db_table} ({names}) SELECT * FROM unnest({casts})"  # noqa: S608
            " ON CONFLICT (subscription_id, event_id) DO NOTHING", arrays,
        )


# --- claims --------------------------------------------------------------------------------------


@dataclass
class ClaimedDelivery:
    id: str
    subscription_id: str
    url: str
    body: bytes
    keys: list[bytes]
    attempt_number: int
    cycle_attempts: int
    claim_token: str


@dataclass
class AttemptOutcome:
    claimed: ClaimedDelivery
    request_id: str
    started_at: datetime
    finished_at: datetime
    status_code: int | None = None
    latency_ms: int = 0
    error: str = ""
    response_excerpt: str = ""
    retry_after: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _due(now: datetime):
    return WebhookDelivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)
    )


def _subscriptions_with_due_work(*, now: datetime, subscription_id: str | None, delivery_id: str | None,
                                 include_disabled: bool, limit: int = 200) -> list[WebhookSubscription]:
    """Subscriptions (whole rows) with at least one claimable delivery: one probe per subscription into
    its own pending rows, in event order (the whd_pending_sub_seq index), stopping at the first claimable
    one, instead of reading every due row of every subscription."""
    if connection.vendor != "postgresql":
        due = _due(now).filter(subscription_id=OuterRef("pk"))
        if delivery_id:
            due = due.filter(pk=delivery_id)
        qs = WebhookSubscription.objects.filter(Exists(due))
        if not include_disabled:
            qs = qs.filter(enabled=True)
        if subscription_id:
            qs = qs.filter(pk=subscription_id)
        return list(qs.order_by()[:limit])
    # LATERAL … LIMIT 1 keeps the planner from turning this into a semi-join over all due rows.
    params: list = [now, now]
    only_delivery = ""
    if delivery_id:
        only_delivery, params = "AND d.id = %s", [*params, delivery_id]
    where = ["TRUE"]
    if not include_disabled:
        where.append("s.enabled")
    if subscription_id:
        where.append("s.id = %s")
        params.append(subscription_id)
    sql = (
        f"SELECT s.* FROM {WebhookSubscription._meta.db_table} s CROSS JOIN LATERAL ("  # noqa: S608
        f" SELECT 1 FROM {WebhookDelivery._meta.db_table} d WHERE d.subscription_id = s.id"
        " AND d.status = 'pending' AND d.next_attempt_at <= %s AND (d.claimed_until IS NULL OR d.claimed_until <= %s)"
        f" {only_delivery} ORDER BY d.event_sequence LIMIT 1) due WHERE {' AND '.join(where)} LIMIT %s"
    )
    return list(WebhookSubscription.objects.raw(sql, [*params, limit]))


def deliveries_claim_due(*, limit: int, now: datetime | None = None, in_flight: Mapping[str, int] | None = None,
                         per_subscription: int | None = None, lease_seconds: float | None = None,
                         subscription_id: str | None = None, delivery_id: str | None = None,
                         include_disabled: bool = False) -> list[ClaimedDelivery]:
    """Claim up to `limit` due deliveries, shared fairly among the subscriptions that have work, each
    subscription's in event order and at most `per_subscription` in flight (so one slow endpoint can
    hold only its own share of a worker). A claim is a lease: if the worker dies, the delivery is due
    again once `claimed_until` passes; a stale worker's result is ignored (claim_token)."""
    now = now or timezone.now()
    in_flight = in_flight or {}
    per_subscription = per_subscription or settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION
    lease = timedelta(seconds=lease_seconds or settings.WEBHOOK_LEASE_SECONDS)
    if limit <= 0:
        return []
    candidates = _subscriptions_with_due_work(now=now, subscription_id=subscription_id, delivery_id=delivery_id,
                                              include_disabled=include_disabled)
    subs = {s.pk: s for s in candidates if in_flight.get(s.pk, 0) < per_subscription}
    if not subs:
        return []
    sub_ids = list(subs)
    random.shuffle(sub_ids)  # no subscription is always first in line
    share = max(1, limit // len(sub_ids))
    token = pysecrets.token_hex(8)
    out: list[ClaimedDelivery] = []
    remaining = limit
    for sub_id in sub_ids:
        if remaining <= 0:
            break
        sub = subs.get(sub_id)
        if sub is None:
            continue
        want = min(share, remaining, per_subscription - in_flight.get(sub_id, 0))
        granted = ratecap.take(subscription_id=sub_id, rate=sub.rate_limit_per_second, want=want) \
            if sub.rate_limit_per_second else want
        if granted <= 0:
            continue
        rows = _claim_rows(subscription_id=sub_id, limit=granted, now=now, until=now + lease, token=token,
                           delivery_id=delivery_id)
        if sub.rate_limit_per_second and len(rows) < granted:
            ratecap.refund(subscription_id=sub_id, tokens=granted - len(rows))
        if rows:
            keys = [secret_key_bytes(x) for x in subscription_signing_secrets(subscription=sub, now=now)]
            for delivery_pk, payload, attempt_count, cycle_attempts, _seq in sorted(rows, key=lambda r: (r[4], r[0])):
                out.append(ClaimedDelivery(
                    id=delivery_pk, subscription_id=sub_id, url=sub.url, body=payload.encode(), keys=keys,
                    attempt_number=attempt_count + 1, cycle_attempts=cycle_attempts, claim_token=token,
                ))
        remaining -= len(rows)
    return out


# --- outcomes ------------------------------------------------------------------------------------


def retry_delay_seconds(*, cycle_attempts: int, retry_after: float | None = None) -> float | None:
    """Seconds until the next attempt after `cycle_attempts` failed attempts, or None when the schedule
    is exhausted."""
    schedule = list(settings.WEBHOOK_RETRY_SCHEDULE_SECONDS)
    if cycle_attempts > len(schedule):
        return None
    if retry_after is not None:
        return float(min(max(retry_after, 1.0), settings.WEBHOOK_MAX_RETRY_AFTER_SECONDS))
    jitter = float(settings.WEBHOOK_RETRY_JITTER)
    return schedule[cycle_attempts - 1] * random.uniform(1 - jitter, 1 + jitter)


def attempts_record(*, outcomes: list[AttemptOutcome], now: datetime | None = None) -> None:
    """Log every attempt and move each delivery whose claim is still ours. One short transaction."""
    if not outcomes:
        return
    now = now or timezone.now()
    if connection.vendor == "postgresql" and all(o.succeeded for o in outcomes):
        _successes_record(outcomes, now=now)
        return
    with transaction.atomic():
        _relaxed_commit()
        _attempts_insert(outcomes)
        groups: dict[tuple[str, int], list[str]] = {}
        succeeded_subs: set[str] = set()
        failed_subs: set[str] = set()
        gone_subs: set[str] = set()
        for o in outcomes:
            if o.succeeded:
                groups.setdefault((o.claimed.claim_token, o.status_code), []).append(o.claimed.id)
                succeeded_subs.add(o.claimed.subscription_id)
                continue
            failed_subs.add(o.claimed.subscription_id)
            cycle = o.claimed.cycle_attempts + 1
            if o.status_code == 410:
                gone_subs.add(o.claimed.subscription_id)
                delay = None
            else:
                honour = o.retry_after if o.status_code in (429, 503) else None
                delay = retry_delay_seconds(cycle_attempts=cycle, retry_after=honour)
            updates = dict(
                attempt_count=F("attempt_count") + 1, cycle_attempts=cycle, claimed_until=None, claim_token="",
                last_status_code=o.status_code, last_error=o.error[:500],
            )
            if delay is None:
                updates.update(status=Status.FAILED, failed_at=o.finished_at, next_attempt_at=None)
            else:
                updates.update(next_attempt_at=o.finished_at + timedelta(seconds=delay))
            WebhookDelivery.objects.filter(pk=o.claimed.id, claim_token=o.claimed.claim_token,
                                           status=Status.PENDING).update(**updates)
        _successes_update(groups, now=now)
        if succeeded_subs:
            WebhookSubscription.objects.filter(pk__in=succeeded_subs).update(last_success_at=now, failing_since=None)
        still_failing = failed_subs - succeeded_subs
        if still_failing:
            WebhookSubscription.objects.filter(pk__in=still_failing, failing_since__isnull=True).update(
                failing_since=now
            )
        if gone_subs:
            _disable(WebhookSubscription.objects.filter(pk__in=gone_subs), reason="gone", now=now)
    if still_failing:
        subscriptions_disable_failing(now=now, subscription_ids=list(still_failing))


_ATTEMPT_TYPES = ("varchar", "varchar", "int", "varchar", "timestamptz", "int", "int", "varchar", "text", "bool")


def _attempt_rows(outcomes: list[AttemptOutcome]) -> list[tuple]:
    return [
        ("wha_" + o.request_id.removeprefix("req_"), o.claimed.id, o.claimed.attempt_number, o.request_id,
         o.started_at, o.status_code, o.latency_ms, o.error[:500], o.response_excerpt, o.succeeded)
        for o in outcomes
    ]


def _successes_record(outcomes: list[AttemptOutcome], *, now: datetime) -> None:
    """The hot path (PostgreSQL, every attempt a 2xx): log the attempts, mark the deliveries whose claim
    is still ours succeeded and stamp their subscriptions, in ONE autocommit statement (atomic by
    itself; data-modifying CTEs always run), i.e. one round trip instead of BEGIN/SET/3 writes/COMMIT."""
    attempt_arrays = [list(col) for col in zip(*_attempt_rows(outcomes), strict=True)]
    ids = [o.claimed.id for o in outcomes]
    tokens = [o.claimed.claim_token for o in outcomes]
    codes = [o.status_code for o in outcomes]
    sub_ids = sorted({o.claimed.subscription_id for o in outcomes})
    deliveries, attempts = WebhookDelivery._meta.db_table, WebhookAttempt._meta.db_table
    unnest_attempts = ", ".join(f"%s::{t}[]" for t in _ATTEMPT_TYPES)
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH relaxed AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)),"  # noqa: S608
            f" logged AS (INSERT INTO {attempts} ({', '.join(_ATTEMPT_COLUMNS)}) SELECT * FROM unnest("
            f"{unnest_attempts})),"
            f" moved AS (UPDATE {deliveries} d SET status = %s, succeeded_at = %s, next_attempt_at = NULL,"
            " claimed_until = NULL, claim_token = '', attempt_count = d.attempt_count + 1,"
            " cycle_attempts = d.cycle_attempts + 1, last_status_code = v.code, last_error = ''"
            " FROM unnest(%s::varchar[], %s::varchar[], %s::int[]) AS v(id, token, code), relaxed"
            " WHERE d.id = v.id AND d.claim_token = v.token AND d.status = %s)"
            f" UPDATE {WebhookSubscription._meta.db_table} SET last_success_at = %s, failing_since = NULL"
            " WHERE id = ANY(%s::varchar[])",
            [*attempt_arrays, Status.SUCCEEDED, now, ids, tokens, codes, Status.PENDING, now, sub_ids],
        )


def _successes_update(groups: dict[tuple[str, int], list[str]], *, now: datetime) -> None:
    """Mark succeeded every delivery whose claim (token) is still ours."""
    if not groups:
        return
    if connection.vendor != "postgresql":
        for (token, code), ids in groups.items():
            WebhookDelivery.objects.filter(pk__in=ids, claim_token=token, status=Status.PENDING).update(
                status=Status.SUCCEEDED, succeeded_at=now, next_attempt_at=None, claimed_until=None, claim_token="",
                attempt_count=F("attempt_count") + 1, cycle_attempts=F("cycle_attempts") + 1,
                last_status_code=code, last_error="",
            )
        return
    # One statement, three array parameters, whatever the batch size (an IN list costs a bound
    # parameter per row to build and parse).
    rows = [(pk, token, code) for (token, code), ids in groups.items() for pk in ids]
    ids, tokens, codes = (list(col) for col in zip(*rows, strict=True))
    table = WebhookDelivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} d SET status = %s, succeeded_at = %s, next_attempt_at = NULL,"  # noqa: S608
            " claimed_until = NULL, claim_token = '', attempt_count = d.attempt_count + 1,"
            " cycle_attempts = d.cycle_attempts + 1, last_status_code = v.code, last_error = ''"
            " FROM unnest(%s::varchar[], %s::varchar[], %s::int[]) AS v(id, token, code)"
            " WHERE d.id = v.id AND d.claim_token = v.token AND d.status = %s",
            [Status.SUCCEEDED, now, ids, tokens, codes, Status.PENDING],
        )


_ATTEMPT_COLUMNS = ("id", "delivery_id", "number", "request_id", "started_at", "status_code", "latency_ms", "error",
                    "response_excerpt", "succeeded")


def _attempts_insert(outcomes: list[AttemptOutcome]) -> None:
    """Raw inserts: the ORM's bulk_create costs more CPU per row than the HTTP request itself."""
    table = WebhookAttempt._meta.db_table
    rows = _attempt_rows(outcomes)
    columns = ", ".join(_ATTEMPT_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # one statement, ten array parameters, any batch size
            arrays = [list(col) for col in zip(*rows, strict=True)]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT * FROM unnest("  # noqa: S608
                + ", ".join(f"%s::{t}[]" for t in _ATTEMPT_TYPES) + ")", arrays,
            )
            return
        ops = connection.ops
        row_sql = "(" + ", ".join(["%s"] * len(_ATTEMPT_COLUMNS)) + ")"
        for start in range(0, len(rows), 90):
            chunk = rows[start:start + 90]
            params = [v for r in chunk for v in (*r[:4], ops.adapt_datetimefield_value(r[4]), *r[5:])]
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608
                           + ", ".join([row_sql] * len(chunk)), params)


def _disable(qs, *, reason: str, now: datetime) -> int:
    count = qs.filter(enabled=True).update(enabled=False, disabled_reason=reason, disabled_at=now, flagged=True,
                                           updated_at=now)
    if count:
        logger.warning("disabled %s webhook subscription(s): %s", count, reason)
    return count


def subscriptions_disable_failing(*, now: datetime | None = None, subscription_ids: list[str] | None = None) -> int:
    """An endpoint with no success for WEBHOOK_DISABLE_AFTER_FAILING_DAYS is disabled and flagged."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.WEBHOOK_DISABLE_AFTER_FAILING_DAYS)
    qs = WebhookSubscription.objects.filter(failing_since__lte=cutoff, deleted_at__isnull=True)
    if subscription_ids is not None:
        qs = qs.filter(pk__in=subscription_ids)
    return _disable(qs, reason="failing", now=now)


def payloads_purge(*, now: datetime | None = None, batch: int = 5000) -> int:
    """Drop bodies of finished deliveries older than the retention period (rows and attempts stay)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.WEBHOOK_PAYLOAD_RETENTION_DAYS)
    total = 0
    while True:
        ids = list(WebhookDelivery.objects.filter(created_at__lt=cutoff, payload_purged_at__isnull=True)
                   .exclude(status=Status.PENDING).values_list("id", flat=True)[:batch])
        if not ids:
            return total
        total += WebhookDelivery.objects.filter(pk__in=ids).update(payload="", payload_purged_at=now)

