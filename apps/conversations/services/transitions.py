"""The one place that moves `Message.status`.

Every change of an outbound message's status (the dispatcher's claim, sent, failed, retry and lease
recovery, expiry, delivery receipts, cancel, scheduled release) is a statement in this module:
forward only, with its timestamp and error fields, and with its events appended in the caller's
transaction. `sending` is internal (a dispatcher's claim): publicly it is still `queued`, so moving in
and out of it emits nothing.

Two fast forms live here beside their plain form and are pinned to it by tests: the claim (one UPDATE …
RETURNING per campaign on PostgreSQL) and the batch `sent` (one UPDATE from a JSON recordset).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.billing import services as billing
from apps.conversations.events import message_status_events
from apps.conversations.models import Message
from apps.core.models import Workspace
from apps.core.runtime.lease import claim_ids, skip_locked_claim_sql
from apps.core.services import event_append_many

S = Message.Status
# Forward-only ladder; `played` (first play of a voice note) arrives as read.
RANK = {S.SCHEDULED: 0, S.QUEUED: 0, S.SENDING: 0, S.SENT: 1, S.DELIVERED: 2, S.READ: 3}
FINAL = frozenset({S.FAILED, S.CANCELED, S.RECEIVED})
_TIMESTAMP = {S.SENT: "sent_at", S.DELIVERED: "delivered_at", S.READ: "read_at", S.FAILED: "failed_at",
              S.CANCELED: "canceled_at"}
# Every column a status move may write (bulk saves of receipts).
STATUS_FIELDS = ["status", "sent_at", "delivered_at", "read_at", "failed_at", "canceled_at", "error_code",
                 "error_message", "upstream_code", "pricing", "cost", "updated_at"]


def may_move(previous: str, to: str) -> bool:
    """The whole ladder. A final status never moves; failed may follow sent (Meta reports undeliverable
    late) but not delivered or read; queued <-> sending is the dispatcher's claim and its release."""
    if previous in FINAL or previous == to:
        return False
    if to == S.FAILED:
        return previous not in (S.DELIVERED, S.READ)
    if to == S.CANCELED:
        return previous == S.SCHEDULED
    if to == S.QUEUED:
        return previous in (S.SCHEDULED, S.SENDING)
    if to == S.SENDING:
        return previous == S.QUEUED
    if to in (S.SENT, S.DELIVERED, S.READ):
        return RANK[to] > RANK.get(previous, 0)
    return False


def status_events(message: Message, previous: str | None, *, at: datetime | None = None) -> list[tuple[str, dict]]:
    """The events of one move, from their builder (none when the public status did not change)."""
    return message_status_events(message=message, previous_status=previous, timestamp=at)


def _error_values(error) -> dict:
    """error: a dict or an object with code / message / upstream_code (ProviderError-like)."""
    if isinstance(error, dict):
        code, text, upstream = error.get("code"), error.get("message"), error.get("upstream_code")
    else:
        code, text, upstream = getattr(error, "code", None), getattr(error, "message", None), \
            getattr(error, "upstream_code", None)
    return {"error_code": code or "DISPATCH_ERROR", "error_message": str(text or "")[:2000],
            "upstream_code": upstream}


def _move_values(message: Message, to: str, at: datetime, error=None) -> dict:
    """The columns a move to `to` writes, besides status."""
    values: dict = {}
    column = _TIMESTAMP.get(to)
    if column is not None:
        values[column] = at
    if to == S.FAILED:
        values.update(_error_values(error))
    elif to == S.SENT:
        values.update(error_code="", error_message="", upstream_code=None)
    return values


def _append(events_by_workspace: dict[str, list], workspace_id: str, events: list) -> None:
    if events:
        events_by_workspace.setdefault(workspace_id, []).extend(events)


def events_flush(events_by_workspace: dict[str, list]) -> None:
    """Append collected events, one call per workspace (inside the caller's transaction)."""
    for workspace_id, events in events_by_workspace.items():
        if events:
            event_append_many(workspace=Workspace(pk=workspace_id), events=events)


# --- single moves --------------------------------------------------------------------------------


def message_transition(*, message: Message, to: str, at: datetime | None = None, error=None,
                       guard: dict | None = None, also: dict | None = None,
                       events: dict[str, list] | None = None) -> bool:
    """Move one message to `to` by compare-and-set on its current status (plus `guard`, e.g. the claim
    token), writing `also` (other columns, F() allowed) in the same UPDATE. The message in memory must
    carry the status read; on success it carries the new one. Events go into `events` (workspace id ->
    list) when the caller batches them, else they are appended now. False: the move was not allowed or
    another writer got there first; nothing was written."""
    previous = message.status
    if not may_move(previous, to):
        return False
    now = timezone.now()
    at = at or now
    values = _move_values(message, to, at, error)
    with transaction.atomic(savepoint=False):
        updated = Message.objects.filter(pk=message.pk, status=previous, **(guard or {})).update(
            status=to, updated_at=now, **values, **(also or {}))
        if not updated:
            return False
        message.status = to
        for column, value in values.items():
            setattr(message, column, value)
        if to in (S.FAILED, S.CANCELED):
            billing_settle_final(message)
        evts = status_events(message, previous, at=at)
        if events is None:
            events_flush({message.workspace_id: evts})
        else:
            _append(events, message.workspace_id, evts)
    return True


def billing_settle_final(message: Message) -> None:
    """A message reached failed or canceled (once: a final status never moves): its reservation goes back
    to the wallet, or its charge is refunded (kept on the message for message.failed's `refund`)."""
    before = message.cost
    message.refund = billing.message_reservation_release(message=message)
    if message.cost != before:
        Message.objects.filter(pk=message.pk).update(cost=message.cost)


def billing_charge(message: Message) -> None:
    """Meta's pricing on a live message: charged once (message.cost marks it; saved with the receipts)."""
    if message.pricing and message.cost is None and message.status not in (S.FAILED, S.CANCELED):
        billing.message_charge_from_pricing(message=message)


# --- the dispatcher's batch forms ------------------------------------------------------------------


_CLAIM_SET = "status = 'sending', claimed_until = %s, claim_token = %s, updated_at = %s"
_CLAIM_WHERE = "phone_number_id = %s AND status = 'queued' AND campaign_id = %s AND next_attempt_at <= %s"


def messages_claim_group(*, phone_number_id: str, campaign_id: str, share: int, now: datetime, until: datetime,
                         token: str, fields: tuple[str, ...]) -> list[Message]:
    """queued -> sending for up to `share` due messages of one campaign (or the API traffic, campaign ''),
    oldest first, with a lease. Each row comes back with `template_status` (its template's status, None
    without one) so the dispatcher re-checks templates without a query per message."""
    if connection.vendor == "postgresql":
        by_attname = {f.attname: f for f in Message._meta.concrete_fields}
        table = Message._meta.db_table
        templates = Message._meta.get_field("template").related_model._meta.db_table
        columns = ", ".join(by_attname[name].column for name in fields)
        sql = skip_locked_claim_sql(
            table=table, set_sql=_CLAIM_SET, where_sql=_CLAIM_WHERE, order_sql="next_attempt_at, id",
            returning=f"{columns}, (SELECT t.status FROM {templates} t "  # noqa: S608 - names from the models
                      f"WHERE t.id = {table}.template_id) AS template_status")
        rows = list(Message.objects.raw(sql, [until, token, now, phone_number_id, campaign_id, now, share]))
        rows.sort(key=lambda m: m.pk)
        return rows
    ids = claim_ids(Message.objects.filter(phone_number_id=phone_number_id, status=S.QUEUED, campaign_id=campaign_id,
                                           next_attempt_at__lte=now).order_by("next_attempt_at", "id"),
                    limit=share, recheck=Message.objects.filter(status=S.QUEUED),
                    update={"status": S.SENDING, "claimed_until": until, "claim_token": token, "updated_at": now})
    if not ids:
        return []
    return list(Message.objects.filter(id__in=ids, claim_token=token, status=S.SENDING)
                .annotate(template_status=F("template__status")).only(*fields).order_by("pk"))


def messages_claim_for_account(*, account_id: str, limit: int, now: datetime, until: datetime,
                               token: str) -> list[Message]:
    """queued -> sending for up to `limit` due messages of one Page / Instagram account, oldest first, with
    a lease (the portable claim: these channels' volumes need no per-campaign fairness)."""
    ids = claim_ids(Message.objects.filter(social_account_id=account_id, status=S.QUEUED, next_attempt_at__lte=now)
                    .order_by("next_attempt_at", "id"),
                    limit=limit, recheck=Message.objects.filter(status=S.QUEUED),
                    update={"status": S.SENDING, "claimed_until": until, "claim_token": token, "updated_at": now})
    if not ids:
        return []
    return list(Message.objects.filter(id__in=ids, claim_token=token, status=S.SENDING).order_by("pk"))


def messages_release_claims(*, messages: list[Message], token: str, now: datetime, next_attempt_at: datetime,
                            also: dict | None = None) -> list[Message]:
    """sending -> queued for the claimed messages still held under `token` (a deferral or a retry); no
    event, publicly they never left `queued`. Returns the ones released."""
    ids = [m.pk for m in messages]
    if not ids:
        return []
    done = Message.objects.filter(pk__in=ids, status=S.SENDING, claim_token=token).update(
        status=S.QUEUED, claim_token="", claimed_until=None, next_attempt_at=next_attempt_at, updated_at=now,
        **(also or {}))
    if done == len(ids):
        return messages
    if done == 0:
        return []
    still = set(Message.objects.filter(pk__in=ids, status=S.QUEUED, claim_token="").values_list("pk", flat=True))
    return [m for m in messages if m.pk in still]


def messages_claims_lapse(*, messages: list[Message], token: str, now: datetime, also: dict | None = None) -> int:
    """End the claims held under `token` now, leaving the messages `sending`: what a dead worker leaves
    behind, for the reconciliation road (dispatch.sweep.leases_recover); no event."""
    ids = [m.pk for m in messages]
    if not ids:
        return 0
    return Message.objects.filter(pk__in=ids, status=S.SENDING, claim_token=token).update(
        claimed_until=now, updated_at=now, **(also or {}))


def leases_expired_requeue(*, now: datetime, before: datetime | None = None) -> int:
    """Claims whose lease ran out before `before` (default now) go back to the queue, in one CAS update;
    no event. (When: dispatch.sweep.leases_recover.)"""
    return Message.objects.filter(status=S.SENDING, claimed_until__lt=before or now).update(
        status=S.QUEUED, claim_token="", claimed_until=None, next_attempt_at=now, updated_at=now)


@dataclass
class Sent:
    message: Message
    provider_message_id: str
    at: datetime


# The batch travels as one JSON parameter: quoting one string is far cheaper client-side than hundreds of
# placeholders (psycopg's client-side binding walks every one).
_SENT_SQL = (
    "UPDATE {table} AS m SET status = 'sent', provider_message_id = v.wamid, sent_at = v.at, "
    "attempts = m.attempts + 1, claim_token = '', claimed_until = NULL, error_code = '', "
    "error_message = '', upstream_code = NULL, updated_at = %s "
    "FROM json_to_recordset(%s::json) AS v(id text, wamid text, at timestamptz) "
    "WHERE m.id = v.id AND m.status = 'sending' AND m.claim_token = %s RETURNING m.id"
)


def messages_mark_sent(*, items: list[Sent], token: str, now: datetime, events: dict[str, list],
                       fast: bool | None = None) -> set[str]:
    """sending -> sent for a batch the provider accepted, CAS on (sending, claim token), attempts + 1.
    One UPDATE on PostgreSQL (the fast form), else one message_transition per message (the plain form);
    tests pin one to the other. Returns the ids moved; their events go into `events`."""
    if not items:
        return set()
    fast = connection.vendor == "postgresql" if fast is None else fast
    if not fast:
        done = set()
        for item in items:
            item.message.provider_message_id = item.provider_message_id
            if message_transition(message=item.message, to=S.SENT, at=item.at, guard={"claim_token": token},
                                  also={"provider_message_id": item.provider_message_id,
                                        "attempts": F("attempts") + 1, "claim_token": "",
                                        "claimed_until": None}, events=events):
                done.add(item.message.pk)
        return done
    rows = json.dumps([{"id": i.message.pk, "wamid": i.provider_message_id, "at": i.at.isoformat()} for i in items])
    with connection.cursor() as cursor:
        cursor.execute(_SENT_SQL.format(table=Message._meta.db_table), [now, rows, token])
        done = {row[0] for row in cursor.fetchall()}
    for item in items:
        m = item.message
        if m.pk in done:
            previous = m.status
            m.status, m.provider_message_id, m.sent_at = S.SENT, item.provider_message_id, item.at
            m.error_code, m.error_message, m.upstream_code = "", "", None
            _append(events, m.workspace_id, status_events(m, previous, at=item.at))
    return done


def message_send_reconcile(*, message: Message, provider_message_id: str, at: datetime) -> bool:
    """A send whose answer was never recorded (its worker died), settled by a status webhook that carries
    our id: attach Meta's wamid and move it to sent (from its dead claim, or from the queue it went back
    to). Only while no wamid is recorded; its events are appended now. False: nothing written."""
    if message.provider_message_id:
        return False
    none = {"provider_message_id__isnull": True} if message.provider_message_id is None else {"provider_message_id": ""}
    message.provider_message_id = provider_message_id
    return message_transition(message=message, to=S.SENT, at=at, guard=none,
                              also={"provider_message_id": provider_message_id, "attempts": F("attempts") + 1,
                                    "claim_token": "", "claimed_until": None})


# --- receipts (the receive road) -----------------------------------------------------------------


def message_receipt_apply(*, message: Message, to: str, at: datetime, error=None, pricing: dict | None = None) -> bool:
    """An upstream status report applied in memory to a locked message (saved by messages_receipts_save).
    Timestamps are facts even when the status cannot move (read before delivered, a late `sent` after a
    failure): the earliest time each step was reported is kept. True when any field changed."""
    before = (message.status, message.sent_at, message.delivered_at, message.read_at, message.failed_at,
              message.error_code, message.pricing)
    if pricing and {**(message.pricing or {}), **pricing} != (message.pricing or {}):
        message.pricing = {**(message.pricing or {}), **pricing}
    if to == S.FAILED:
        if may_move(message.status, S.FAILED):
            message.status = S.FAILED
            for column, value in _move_values(message, S.FAILED, at, error).items():
                setattr(message, column, value)
    elif to in (S.SENT, S.DELIVERED, S.READ) and message.status not in (S.CANCELED, S.RECEIVED):
        if message.sent_at is None:
            message.sent_at = at
        if to in (S.DELIVERED, S.READ) and (
                message.delivered_at is None or (to == S.DELIVERED and at < message.delivered_at)):
            message.delivered_at = at
        if to == S.READ and message.read_at is None:
            message.read_at = at
        if may_move(message.status, to):
            message.status = to
    return before != (message.status, message.sent_at, message.delivered_at, message.read_at, message.failed_at,
                      message.error_code, message.pricing)


def messages_receipts_save(*, messages: list[Message], now: datetime) -> None:
    """One bulk UPDATE for the receipts applied by message_receipt_apply (the rows are locked)."""
    if not messages:
        return
    for message in messages:
        message.updated_at = now
    Message.objects.bulk_update(messages, STATUS_FIELDS)


# --- 131049: held back by Meta, queued again --------------------------------------------------------


def hold_retry_at(*, message: Message, now: datetime) -> datetime | None:
    """When a message Meta held back (131049) goes again: the next step of the growing schedule
    (settings.PER_USER_MARKETING_RETRY_HOURS), if it still falls inside the message's validity
    (`expires_at`: a campaign's window, else the send's age limit). None: it fails instead."""
    from datetime import timedelta

    from django.conf import settings

    schedule = list(settings.PER_USER_MARKETING_RETRY_HOURS)
    if message.holds >= len(schedule) or message.expires_at is None:
        return None
    at = now + timedelta(hours=float(schedule[message.holds]))
    return at if at < message.expires_at else None


def message_hold_requeue(*, message: Message, at: datetime, retry_at: datetime, error) -> list[tuple[str, dict]]:
    """sent -> queued for a message Meta held back (131049) that may go again at `retry_at` (the one move
    back the ladder allows: the old wamid is kept in content.previous_wamids, the hold counted, the reason
    stored so the API shows why it waits). The message must be locked by the caller. Returns its events."""
    previous = message.status
    if previous != S.SENT:
        return []
    content = message.content if isinstance(message.content, dict) else {"items": message.content}
    content = {**content, "previous_wamids": [*content.get("previous_wamids", []), message.provider_message_id]}
    values = {**_error_values(error), "status": S.QUEUED, "provider_message_id": None, "next_attempt_at": retry_at,
              "holds": message.holds + 1, "content": content, "sent_at": None, "claim_token": "",
              "claimed_until": None, "updated_at": timezone.now()}
    Message.objects.filter(pk=message.pk, status=previous).update(**values)
    for column, value in values.items():
        setattr(message, column, value)
    events = status_events(message, previous, at=at)
    for _, data in events:
        data["retry"] = {"reason": "per_user_marketing_limit", "upstream_code": message.upstream_code,
                         "next_attempt_at": retry_at.strftime("%Y-%m-%dT%H:%M:%SZ"), "holds": message.holds}
    return events


# --- scheduled messages --------------------------------------------------------------------------


def messages_release_due(*, messages: list[Message], now: datetime, events: dict[str, list]) -> list[Message]:
    """scheduled -> queued, due now (each a CAS: two beats never release one twice)."""
    released = []
    for message in messages:
        if message_transition(message=message, to=S.QUEUED, at=now, also={"next_attempt_at": now}, events=events):
            released.append(message)
    return released
