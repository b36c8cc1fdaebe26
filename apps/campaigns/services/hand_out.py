"""Handing a running campaign's recipients to the dispatcher, a batch per transaction."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.campaigns import selectors, variables
from apps.campaigns.models import Campaign, CampaignRecipient
from apps.campaigns.services.common import R, S, _template_render
from apps.contacts.models import Contact
from apps.contacts.selectors import marketing_requires_opt_in
from apps.contacts.services import contact_address
from apps.conversations import policy
from apps.core.errors import ApplicationError

logger = logging.getLogger("reach.campaigns")

# --- launch: handing batches to the dispatcher -------------------------------------------------------

_SKIP_STATUS = {policy.INVALID_NUMBER: R.SKIPPED_INVALID, policy.OPTED_OUT: R.SKIPPED_OPTED_OUT,
                policy.NOT_OPTED_IN: R.SKIPPED_NOT_OPTED_IN,
                policy.MISSING_VARIABLE: R.SKIPPED_MISSING_VARIABLE}


def _enqueue_bulk(*, workspace, phone_number, template, rows: list[dict], campaign_id: str,
                  now: datetime) -> list[str]:
    from apps.conversations.services import writer

    return writer.messages_enqueue_bulk(workspace=workspace, phone_number=phone_number, template=template,
                                        rows=rows, campaign_id=campaign_id, now=now)


def _enqueue_query(**kwargs) -> tuple:
    from apps.conversations.services import writer

    return writer.messages_enqueue_query(**kwargs)


def _lock_campaign_shared(campaign_id: str) -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite: one writer at a time anyway
    table = Campaign._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT status FROM {table} WHERE id = %s FOR SHARE", [campaign_id])  # noqa: S608
        row = cursor.fetchone()
    return bool(row) and row[0] == S.RUNNING


def campaign_hand_out_batch(*, campaign_id: str, limit: int, now: datetime | None = None) -> int:
    """One batch, one transaction: returns how many recipients got a message or were skipped (0 = nothing to do
    now). On PostgreSQL the batch is handed out set-based (`_hand_out_sql`: one statement renders, creates the
    messages and links the recipients); on SQLite, and for a batch holding a contact whose values only Python
    renders exactly, recipient by recipient (`_hand_out_python`). Both give the same rows.
    A rule of the whole batch refusing (policy.campaign_check: the template no longer approved; the wallet)
    writes nothing and pauses the campaign with the refusal's code as its reason, rather than retrying it."""
    now = now or timezone.now()
    try:
        return _hand_out_batch(campaign_id=campaign_id, limit=limit, now=now)
    except ApplicationError as exc:
        # An empty wallet pauses with a reason a program can test; resume after a top-up.
        reason = Campaign.PAUSE_INSUFFICIENT_BALANCE if exc.code == "INSUFFICIENT_BALANCE" else f"{exc.code}: {exc.message}"[:300]
        if Campaign.objects.filter(pk=campaign_id, status=S.RUNNING).update(
                status=S.PAUSED, paused_at=now, pause_reason=reason, auto_paused=True, updated_at=now):
            logger.warning("campaign %s: paused, %s", campaign_id, reason)
        return 0


def _hand_out_batch(*, campaign_id: str, limit: int, now: datetime) -> int:
    with transaction.atomic():
        # A share lock on the campaign row: batches (several feeders at once) run side by side, while pause and
        # cancel (an UPDATE of the row) wait for the batches in flight, and no batch starts after they commit.
        if not _lock_campaign_shared(campaign_id):
            return 0
        campaign = (
            Campaign.objects.select_related("phone_number", "template", "workspace")
            .filter(pk=campaign_id, status=S.RUNNING).first()
        )
        if campaign is None:
            return 0
        if campaign.valid_until and campaign.valid_until <= now:
            return 0
        # The rules of the whole batch (number, template still approved); a refusal writes nothing.
        policy.campaign_check(campaign=campaign)
        compiled = variables.compile_spec(campaign.variables)
        if connection.vendor == "postgresql":
            plan = _sql_plan(campaign=campaign, compiled=compiled) if settings.CAMPAIGN_HAND_OUT_SQL else None
            rows = _pick_batch(campaign=campaign, limit=limit, plan=plan)
            if not rows:
                return 0
            if plan is not None and not any(row[4] for row in rows):
                return _hand_out_sql(campaign=campaign, plan=plan, rows=rows, now=now)
            batch = [CampaignRecipient(pk=rid, campaign_id=campaign.pk, contact_id=cid, status=st)
                     for rid, cid, st, _, _ in rows]
        else:
            pick = CampaignRecipient.objects.filter(campaign=campaign, status__in=(R.PENDING, R.DEFERRED))
            batch = list(pick.order_by("id")[:limit])
            if not batch:
                return 0
        return _hand_out_python(campaign=campaign, compiled=compiled, batch=batch, now=now)


def _pick_batch(*, campaign: Campaign, limit: int, plan: dict | None) -> list[tuple]:
    """Lock the next pending/deferred recipients in id order (skip-locked: concurrent batches take disjoint rows),
    as (id, contact_id, status, phone, unsupported): `unsupported` = the SQL renderer would not match Python's.
    One ordered index walk per status ((campaign, status, id) gives each in id order, an IN list would not: that
    sorted all of a campaign's pending rows for every batch); the surplus locked rows are released on commit."""
    unsupported_sql, unsupported_params = plan["render"].unsupported if plan else ("false", [])
    table = CampaignRecipient._meta.db_table
    branch = (f"SELECT id, contact_id, status FROM {table} WHERE campaign_id = %s AND status = %s "  # noqa: S608
              "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED")
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH _p AS ({branch}), _d AS ({branch}), "  # noqa: S608 - our tables
            "_k AS (SELECT * FROM _p UNION ALL SELECT * FROM _d ORDER BY id LIMIT %s) "
            f"SELECT k.id, k.contact_id, k.status, c.address, {unsupported_sql} FROM _k k LEFT JOIN LATERAL ("
            f"SELECT coalesce(c.phone, c.bsuid) AS address, c.phone, c.custom_fields "
            f"FROM {Contact._meta.db_table} c WHERE c.id = k.contact_id) c ON true "
            "ORDER BY k.id",
            [campaign.pk, R.PENDING.value, limit, campaign.pk, R.DEFERRED.value, limit, limit, *unsupported_params],
        )
        return cursor.fetchall()


def _tier_budget(*, campaign: Campaign, contact_ids: list[str], now: datetime) -> tuple[int | None, set[str]]:
    """(headroom, contacts that do not count against it) under the tier's daily limit; (None, ∅) = unlimited.
    Campaigns on one WABA draw on one daily budget: their batches serialise on the number's WABA row."""
    phone_number = campaign.phone_number
    if selectors.tier_limit(phone_number.messaging_tier) is None:
        return None, set()
    from apps.wabas.models import Waba

    Waba.objects.select_for_update().filter(pk=phone_number.waba_id).first()
    headroom = selectors.tier_headroom(phone_number=phone_number, now=now)
    free = selectors.tier_free_contact_ids(phone_number=phone_number, now=now, contact_ids=contact_ids)
    return headroom, free


_BODY_MARK = re.compile("\x00(\\d+)\x00")


def _sql_plan(*, campaign: Campaign, compiled: dict) -> dict | None:
    """What the set-based hand-out needs from Python once per batch: the variables as SQL and the template's
    text split around its placeholders (rendered with marker values, so the text between them is exactly what
    `template_render` keeps). None when the template text could hold a marker (then Python renders)."""
    texts = [str(c.get("text", "")) for c in (campaign.template.components or []) if isinstance(c, dict)]
    if any("\x00" in t for t in texts):
        return None
    from apps.links.services import has_track

    if has_track(campaign.variables):
        return None  # tracked links are made per recipient by the writer's Python form
    render = variables.sql_render(compiled) if compiled else None
    if render is None:
        body_parts: list[str | int] = [_template_render(template=campaign.template, variables=None)]
    else:
        marks = [f"\x00{i}\x00" for i in range(len(render.keys))]
        sample = marks if render.positional else dict(zip(render.keys, marks, strict=True))
        pieces = _BODY_MARK.split(_template_render(template=campaign.template, variables=sample))
        body_parts = [int(p) if i % 2 else p for i, p in enumerate(pieces)]
    return {"render": render, "body": body_parts}


def _hand_out_sql(*, campaign: Campaign, plan: dict, rows: list[tuple], now: datetime) -> int:
    """The batch in one statement: classify each locked recipient exactly as `_hand_out_python` does (invalid,
    opted out, missing variable, deferred by the tier limit, else queued), render its variables and body, create
    the messages (`messages_enqueue_query`) and write each message id onto its recipient. Python does O(1) work
    per batch besides the cost estimate (the rate card's country comes from phonenumbers)."""
    from apps.billing.services import cost_estimate

    template = campaign.template
    # policy.consent_refuses over the row: opted out (False), or no row (NULL) where an opt-in is required.
    marketing = policy.consent_applies(template.category)
    requires_opt_in = marketing and marketing_requires_opt_in(workspace=campaign.workspace)
    headroom, free = _tier_budget(campaign=campaign, contact_ids=[r[1] for r in rows], now=now)
    # Each contact's address (phone, else BSUID), or None when this template cannot go to it (policy).
    addresses = [policy.recipient_sendable_address(address=r[3], category=template.category) for r in rows]
    costs = [cost_estimate(category=template.category, to_phone=a, workspace=campaign.workspace) if a else Decimal("0") for a in addresses]
    render: variables.SqlRender | None = plan["render"]
    value_cols, value_params = [], []
    for i, (sql, params) in enumerate(render.values if render else []):
        value_cols.append(f", {sql} AS _v{i}")
        value_params += params
    missing_sql, missing_params = render.missing if render else ("false", [])
    if render is None:
        vars_sql, vars_params = "NULL::jsonb", []
    elif render.positional:
        vars_sql = "jsonb_build_array(" + ", ".join(f"_v{i}" for i in range(len(render.keys))) + ")"
        vars_params = []
    else:
        vars_sql = "jsonb_build_object(" + ", ".join(f"%s::text, _v{i}" for i in range(len(render.keys))) + ")"
        vars_params = list(render.keys)
    body_sql = " || ".join("%s::text" if isinstance(p, str) else f"_v{p}" for p in plan["body"]) or "''::text"
    body_params = [p for p in plan["body"] if isinstance(p, str)]
    table = CampaignRecipient._meta.db_table
    ctes = [
        (f"_b AS MATERIALIZED (SELECT v.ord, v.rid, v.phone AS to_phone, v.cost, r.contact_id, "  # noqa: S608
         "r.status AS old_status, "
         f"c.id IS NULL OR coalesce(v.phone, '') = '' AS _invalid, coalesce(NOT c.opted_in, false) AS _opted_out, "
         "c.opted_in IS NULL AS _no_opt_in, "
         f"r.contact_id = ANY(%s::text[]) AS _free{''.join(value_cols)}, coalesce({missing_sql}, false) AS _missing "
         "FROM unnest(%s::bigint[], %s::text[], %s::numeric[]) WITH ORDINALITY AS v(rid, phone, cost, ord) "
         f"JOIN {table} r ON r.id = v.rid LEFT JOIN {Contact._meta.db_table} c ON c.id = r.contact_id)",
         [list(free), *value_params, *missing_params, [r[0] for r in rows], addresses, costs]),
        # policy.recipient_classify as SQL (pinned to it by tests/campaigns/test_hand_out_sql.py).
        ("_c AS MATERIALIZED (SELECT _b.*, CASE WHEN _invalid THEN %s WHEN %s AND _opted_out THEN %s "
         "WHEN %s AND _no_opt_in THEN %s WHEN _missing THEN %s END AS _skip FROM _b)",
         [R.SKIPPED_INVALID.value, marketing, R.SKIPPED_OPTED_OUT.value, requires_opt_in,
          R.SKIPPED_NOT_OPTED_IN.value, R.SKIPPED_MISSING_VARIABLE.value]),
        # Quota in recipient order: only rows that would go out and are not free use it, as in Python.
        ("_q AS MATERIALIZED (SELECT _c.*, CASE WHEN _skip IS NOT NULL THEN _skip "
         "WHEN %s::int IS NULL OR _free THEN %s "
         "WHEN sum(CASE WHEN _skip IS NULL AND NOT _free THEN 1 ELSE 0 END) OVER (ORDER BY ord ROWS UNBOUNDED "
         "PRECEDING) <= %s::int THEN %s ELSE %s END AS new_status FROM _c)",
         [headroom, R.QUEUED.value, headroom, R.QUEUED.value, R.DEFERRED.value]),
        (f"_src AS (SELECT ord, rid, contact_id, to_phone, {vars_sql} AS variables, {body_sql} AS body, "  # noqa: S608
         "cost AS cost_estimate, %s::timestamptz AS expires_at FROM _q WHERE new_status = %s)",
         [*vars_params, *body_params, campaign.valid_until, R.QUEUED.value]),
    ]
    after = [
        (f"_linked AS (UPDATE {table} r SET status = %s, message_id = e.message_id, updated_at = %s "  # noqa: S608
         "FROM enqueued e WHERE r.id = e.rid)", [R.QUEUED.value, now]),
        (f"_changed AS (UPDATE {table} r SET status = q.new_status, updated_at = %s FROM _q q "  # noqa: S608
         "WHERE r.id = q.rid AND q.new_status <> %s AND q.new_status <> q.old_status)", [now, R.QUEUED.value]),
    ]
    # A batch that only deferred recipients made no progress: 0, so the pump waits for quota.
    select = ("SELECT (SELECT count(*) FROM enqueued) + (SELECT count(*) FROM _q WHERE new_status NOT IN (%s, %s) "
              "AND new_status <> old_status)", [R.QUEUED.value, R.DEFERRED.value])
    (progress,) = _enqueue_query(
        workspace=campaign.workspace, phone_number=campaign.phone_number, template=template, campaign_id=campaign.pk,
        ctes=ctes, source="_src", after=after, select=select, now=now,
    )
    # The messages' expires_at (valid_until) caps their age: the dispatcher fails queued messages past it
    # (MESSAGE_EXPIRED, evented), so nothing goes out after the campaign's validity window.
    return int(progress)


def _hand_out_python(*, campaign: Campaign, compiled: dict, batch: list[CampaignRecipient], now: datetime) -> int:
    """The batch recipient by recipient (SQLite, or a contact value only Python renders exactly)."""
    contacts = {c.pk: c for c in Contact.objects.filter(pk__in=[r.contact_id for r in batch])}
    phone_number = campaign.phone_number
    headroom, free = _tier_budget(campaign=campaign, contact_ids=list(contacts), now=now)
    category = campaign.template.category
    requires_opt_in = marketing_requires_opt_in(workspace=campaign.workspace)
    rows, handed, changed = [], [], []
    for recipient in batch:
        contact = contacts.get(recipient.contact_id)
        rendered = None
        address = contact_address(contact)
        if address and compiled:
            rendered = variables.render(compiled, variables.contact_values(contact))
        skip = policy.recipient_classify(phone=address or None,
                                         opted_in=policy.contact_opted_in(contact), requires_opt_in=requires_opt_in,
                                         category=category,
                                         missing_variable=bool(compiled) and rendered is None)
        new_status = _SKIP_STATUS.get(skip)
        if new_status is None:
            if headroom is not None and recipient.contact_id not in free and headroom <= 0:
                new_status = R.DEFERRED
            else:
                if headroom is not None and recipient.contact_id not in free:
                    headroom -= 1
                rows.append({
                    "contact": contact,
                    "variables": rendered,
                    "body": _template_render(template=campaign.template, variables=rendered),
                    "expires_at": campaign.valid_until,
                })
                handed.append(recipient)
                continue
        if new_status != recipient.status:
            recipient.status = new_status
            recipient.updated_at = now
            changed.append(recipient)
    if rows:
        # The batch's `now`, as the SQL form passes it: both forms stamp next_attempt_at, the default expiry
        # and the conversations' activity alike.
        ids = _enqueue_bulk(workspace=campaign.workspace, phone_number=phone_number, template=campaign.template,
                            rows=rows, campaign_id=campaign.pk, now=now)
        if len(ids) != len(handed):
            raise RuntimeError(f"messages_enqueue_bulk returned {len(ids)} ids for {len(handed)} rows")
        _link_messages(recipient_ids=[r.pk for r in handed], message_ids=ids, now=now)
        # The rows' "expires_at" (valid_until) caps the messages' age: the dispatcher fails queued messages
        # past it (MESSAGE_EXPIRED, evented), so nothing goes out after the campaign's validity window.
    if changed:
        CampaignRecipient.objects.bulk_update(changed, ["status", "updated_at"], batch_size=1000)
    # A batch that only deferred recipients made no progress: report 0 so the pump waits for quota.
    return len(handed) + sum(1 for r in changed if r.status != R.DEFERRED)


def _link_messages(*, recipient_ids: list[int], message_ids: list[str], now: datetime) -> None:
    """recipient -> queued + its message id, in the batch's transaction. One statement on PostgreSQL (bulk_update's
    CASE chains cost more than the rest of the batch)."""
    table = CampaignRecipient._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} r SET status = %s, message_id = v.mid, updated_at = %s "  # noqa: S608
                "FROM (SELECT unnest(%s::bigint[]) AS rid, unnest(%s::text[]) AS mid) v WHERE r.id = v.rid",
                [R.QUEUED.value, now, recipient_ids, message_ids],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET status = %s, message_id = %s, updated_at = %s WHERE id = %s",  # noqa: S608
                [(R.QUEUED.value, mid, now, rid) for rid, mid in zip(recipient_ids, message_ids, strict=True)],
            )
