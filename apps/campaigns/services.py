"""Campaigns write layer: audiences, the campaign state machine, launch (expansion into recipients), the
pump that hands recipients to the messaging dispatcher in batches, expiry, auto-pause and completion.

The recipient row is the queue. A batch is one transaction: lock the campaign row, pick pending recipients,
create their messages through the send road's `messages_enqueue_query` (PostgreSQL: one set-based statement that also
renders the variables and writes each message id onto its recipient) or `messages_enqueue_bulk` (SQLite, and
contacts whose values only Python renders exactly), and write each message id onto its recipient. A crash
anywhere rolls the batch back whole, so a restart hands each recipient out exactly once.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.campaigns import selectors, variables
from apps.campaigns.events import campaign_completed
from apps.campaigns.models import Audience, AudienceMember, Campaign, CampaignRecipient
from apps.contacts.models import Contact
from apps.contacts.services import normalize_phone
from apps.conversations.models import Message
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.models import Workspace
from apps.core.services import event_append
from apps.core.tenancy import Tenant
from apps.message_templates.models import MessageTemplate

logger = logging.getLogger("reach.campaigns")
S = Campaign.Status
R = CampaignRecipient.Status

# --- audiences -------------------------------------------------------------------------------------

_FILTER_KEYS = {"tags_any", "tags_all", "custom_fields", "opted_in"}


def _clean_filter(raw: Any) -> dict:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValidationFailed("filter must be an object.", field="filter")
    unknown = set(raw) - _FILTER_KEYS
    if unknown:
        raise ValidationFailed(f"Unknown filter keys: {', '.join(sorted(unknown))}.", field="filter")
    out: dict[str, Any] = {}
    for key in ("tags_any", "tags_all"):
        tags = raw.get(key)
        if tags is None:
            continue
        if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 64 for t in tags):
            raise ValidationFailed(f"{key} must be a list of tag names (1-64 chars).", field=f"filter.{key}")
        if tags:
            out[key] = sorted(set(tags))
    fields = raw.get("custom_fields")
    if fields is not None:
        if not isinstance(fields, dict) or not all(
            isinstance(k, str) and k and isinstance(v, (str, int, float)) and not isinstance(v, bool)
            for k, v in fields.items()
        ):
            raise ValidationFailed("custom_fields must map field names to string values.",
                                   field="filter.custom_fields")
        if fields:
            out["custom_fields"] = {k: str(v) for k, v in fields.items()}
    if raw.get("opted_in") is not None:
        if not isinstance(raw["opted_in"], bool):
            raise ValidationFailed("opted_in must be true or false.", field="filter.opted_in")
        out["opted_in"] = raw["opted_in"]
    return out


def audience_create(*, workspace: Workspace, name: str, filter: Any) -> Audience:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("An audience needs a name.", field="name")
    return Audience.objects.create(workspace=workspace, name=name[:200], kind=Audience.Kind.FILTER,
                                   filter=_clean_filter(filter))


_PHONE_HEADERS = ("phone", "phone_number", "number", "msisdn", "mobile", "wa_id", "to")


def _upsert_contact(*, workspace: Workspace, phone: str, name: str | None) -> Contact:
    from apps.contacts.services import contact_upsert_by_phone

    return contact_upsert_by_phone(workspace=workspace, phone=phone, name=name)


def audience_create_from_csv(*, workspace: Workspace, name: str, data: bytes) -> Audience:
    """A fixed list from a CSV of phones (a header row naming `phone`, optional `name`; or one phone per line).
    Unknown phones become contacts; invalid rows are reported, not fatal; repeated phones count once."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("An audience needs a name.", field="name")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("The CSV must be UTF-8.", field="file")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ValidationFailed("The CSV is empty.", field="file")
    if len(rows) > settings.CAMPAIGN_AUDIENCE_CSV_MAX_ROWS + 1:
        raise ValidationFailed(f"The CSV has more than {settings.CAMPAIGN_AUDIENCE_CSV_MAX_ROWS} rows.", field="file")
    header = [c.strip().lower() for c in rows[0]]
    phone_col = next((header.index(h) for h in _PHONE_HEADERS if h in header), None)
    name_col = header.index("name") if "name" in header else None
    first_line = 2
    if phone_col is None:  # no header: the first column holds phones
        phone_col, name_col, first_line = 0, None, 1
    else:
        rows = rows[1:]
    rejected: list[dict] = []
    phones: dict[str, str | None] = {}
    duplicates = 0
    for offset, row in enumerate(rows):
        line = first_line + offset
        if not any(cell.strip() for cell in row):
            continue
        raw = row[phone_col].strip() if phone_col < len(row) else ""
        try:
            phone = normalize_phone(raw, field="phone")
        except ValidationFailed as exc:
            if len(rejected) < settings.CAMPAIGN_AUDIENCE_CSV_MAX_REJECTED:
                rejected.append({"row": line, "value": raw[:64], "reason": exc.message})
            else:
                rejected.append(None)
            continue
        if phone in phones:
            duplicates += 1
            continue
        phones[phone] = (row[name_col].strip() or None) if name_col is not None and name_col < len(row) else None
    rejected_count = len(rejected)
    rejected = [r for r in rejected if r is not None]
    existing = dict(
        Contact.objects.filter(workspace=workspace, phone__in=list(phones)).values_list("phone", "pk")
    ) if phones else {}
    created = 0
    for phone, contact_name in phones.items():
        if phone not in existing:
            existing[phone] = _upsert_contact(workspace=workspace, phone=phone, name=contact_name).pk
            created += 1
    with transaction.atomic():
        audience = Audience.objects.create(
            workspace=workspace, name=name[:200], kind=Audience.Kind.LIST,
            import_report={"rows": sum(1 for r in rows if any(c.strip() for c in r)), "accepted": len(phones),
                           "created": created, "duplicates": duplicates, "rejected_count": rejected_count,
                           "rejected": rejected},
        )
        AudienceMember.objects.bulk_create(
            [AudienceMember(audience=audience, contact_id=existing[p]) for p in phones], batch_size=2000,
            ignore_conflicts=True,
        )
    return audience


# --- campaigns: creation ---------------------------------------------------------------------------


def _template_for_send(*, workspace: Workspace, waba, name: str, language: str) -> MessageTemplate:
    from apps.message_templates.selectors import template_for_send

    return template_for_send(workspace=workspace, waba=waba, name=name, language=language)


def _template_render(*, template: MessageTemplate, variables: list | dict | None) -> str:
    from apps.message_templates.services import template_render

    return template_render(template=template, variables=variables)


def _parse_time(value: Any, *, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        from django.utils.dateparse import parse_datetime

        parsed = parse_datetime(str(value)) if isinstance(value, str) else None
        if parsed is None:
            raise ValidationFailed(f"{field} must be an ISO-8601 time.", field=field)
    if timezone.is_naive(parsed):
        raise ValidationFailed(f"{field} needs a timezone (e.g. a trailing Z).", field=field)
    return parsed


def campaign_create(*, tenant: Tenant, data: dict, now: datetime | None = None) -> Campaign:
    """Validate everything a launch will need (audience, sender, approved template, variables) up front, so a
    campaign that was accepted does not fail at send time for a reason known now."""
    from apps.wabas.selectors import phone_number_for_send

    now = now or timezone.now()
    workspace = tenant.workspace
    name = (data.get("name") or "").strip()
    if not name:
        raise ValidationFailed("A campaign needs a name.", field="name")
    template_spec = data.get("template")
    if not isinstance(template_spec, dict) or not template_spec.get("name") or not template_spec.get("language"):
        raise ValidationFailed('template must be {"name", "language"}.', field="template")
    audience = Audience.objects.filter(workspace=workspace, pk=data.get("audience_id") or "").first()
    if audience is None:
        raise NotFound("No such audience.", details={"field": "audience_id"})
    phone_number = phone_number_for_send(tenant_workspace=workspace, waba_id=tenant.waba_id,
                                         phone_number_id=data.get("phone_number_id") or None)
    template = _template_for_send(workspace=workspace, waba=phone_number.waba, name=str(template_spec["name"]),
                                  language=str(template_spec["language"]))
    compiled = variables.compile_spec(data.get("variables"))
    if compiled and not variables.is_positional(compiled) and any(k.isdigit() for k in compiled):
        raise ValidationFailed("variables keys are either all numbers or all names.", field="variables")
    # Raises TEMPLATE_VARIABLE_COUNT_MISMATCH when the spec does not fit the template's placeholders.
    _template_render(template=template, variables=variables.sample_values(compiled) if compiled else None)
    schedule_at = _parse_time(data.get("schedule_at"), field="schedule_at")
    valid_until = _parse_time(data.get("valid_until"), field="valid_until")
    if schedule_at is not None and schedule_at <= now:
        raise ValidationFailed("schedule_at must be in the future.", field="schedule_at")
    if valid_until is not None and valid_until <= (schedule_at or now):
        raise ValidationFailed("valid_until must be after the start.", field="valid_until")
    raw_vars = data.get("variables") or {}
    if isinstance(raw_vars, list):
        raw_vars = {str(i + 1): v for i, v in enumerate(raw_vars)}
    return Campaign.objects.create(
        workspace=workspace, name=name[:200], audience=audience, phone_number=phone_number, template=template,
        template_name=template.name, template_language=template.language, variables=raw_vars,
        status=S.SCHEDULED if schedule_at else S.DRAFT, schedule_at=schedule_at, valid_until=valid_until,
        created_by=tenant.actor_label,
    )


# --- campaigns: state machine ----------------------------------------------------------------------

_TRANSITIONS = {
    "start": ({S.DRAFT, S.SCHEDULED}, S.RUNNING),
    "pause": ({S.RUNNING}, S.PAUSED),
    "resume": ({S.PAUSED}, S.RUNNING),
    "cancel": ({S.DRAFT, S.SCHEDULED, S.RUNNING, S.PAUSED}, S.CANCELED),
}


def _transition(*, campaign: Campaign, action: str, now: datetime, extra: dict | None = None) -> Campaign:
    allowed, target = _TRANSITIONS[action]
    updated = Campaign.objects.filter(pk=campaign.pk, status__in=allowed).update(
        status=target, updated_at=now, **(extra or {})
    )
    if not updated:
        current = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()
        raise Conflict(
            f"Cannot {action} a campaign that is {current}.",
            details={"status": current, "action": action, "allowed_from": sorted(allowed)},
        )
    campaign.refresh_from_db()
    return campaign


def _kick(campaign_id: str) -> None:
    from apps.campaigns import tasks

    transaction.on_commit(lambda: tasks.campaign_pump.delay(campaign_id))


@transaction.atomic
def campaign_start(*, campaign: Campaign, now: datetime | None = None) -> Campaign:
    now = now or timezone.now()
    if campaign.valid_until and campaign.valid_until <= now:
        raise Conflict("The campaign's validity window has already closed.",
                       details={"valid_until": campaign.valid_until.isoformat()})
    campaign = _transition(campaign=campaign, action="start", now=now, extra={"started_at": now})
    _kick(campaign.pk)
    return campaign


@transaction.atomic
def campaign_pause(*, campaign: Campaign, reason: str = "", now: datetime | None = None) -> Campaign:
    now = now or timezone.now()
    return _transition(campaign=campaign, action="pause", now=now,
                       extra={"paused_at": now, "pause_reason": reason[:300] or "Paused by request.",
                              "auto_paused": False})


@transaction.atomic
def campaign_resume(*, campaign: Campaign, now: datetime | None = None) -> Campaign:
    now = now or timezone.now()
    stats = selectors.campaign_stats(campaign=campaign)
    # Auto-pause judges only what happens after the resume, so it does not trip again at once.
    baseline = {"attempted": stats["sent"] + stats["failed"], "failed": stats["failed"]}
    campaign = _transition(campaign=campaign, action="resume", now=now,
                           extra={"paused_at": None, "pause_reason": "", "auto_paused": False,
                                  "failure_baseline": baseline})
    _kick(campaign.pk)
    return campaign


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, now: datetime | None = None) -> Campaign:
    now = now or timezone.now()
    campaign = _transition(campaign=campaign, action="cancel", now=now, extra={"canceled_at": now})
    CampaignRecipient.objects.filter(campaign=campaign, status__in=(R.PENDING, R.DEFERRED)).update(
        status=R.CANCELED, updated_at=now
    )
    return campaign


def campaigns_start_due(*, now: datetime | None = None) -> list[str]:
    """The beat job's half that fires schedules: every scheduled campaign whose time has come starts now."""
    now = now or timezone.now()
    started = []
    for campaign_id in selectors.campaigns_due(now=now):
        campaign = Campaign.objects.get(pk=campaign_id)
        try:
            campaign_start(campaign=campaign, now=now)
        except Conflict:
            continue  # started, canceled or expired meanwhile
        started.append(campaign_id)
    return started


# --- launch: expansion ----------------------------------------------------------------------------


def _status_expression(*, marketing: bool):
    from django.db.models import Case, CharField, Value, When

    whens = [When(Q(phone__isnull=True) | Q(phone=""), then=Value(R.SKIPPED_INVALID))]
    if marketing:
        whens.append(When(opted_in=False, then=Value(R.SKIPPED_OPTED_OUT)))
    return Case(*whens, default=Value(R.PENDING), output_field=CharField())


def campaign_materialize(*, campaign: Campaign, now: datetime | None = None) -> int:
    """Expand the audience into recipient rows with one INSERT … SELECT … ON CONFLICT DO NOTHING (PostgreSQL
    and SQLite alike): unique per (campaign, contact), so running it again adds nothing. Opted-out contacts
    are written as skipped for MARKETING templates; contacts without a phone as invalid. Returns rows added."""
    from django.db.models import CharField, F, Value

    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        if locked is None or locked.materialized_at is not None:
            return 0
        marketing = locked.template.category == MessageTemplate.Category.MARKETING
        qs = (
            selectors.audience_contacts(workspace=locked.workspace, audience=locked.audience)
            .annotate(_cid=F("pk"), _cmp=Value(locked.pk, output_field=CharField()),
                      _st=_status_expression(marketing=marketing))
            .values_list("_cid", "_cmp", "_st")
            .order_by()
        )
        sql, params = qs.query.sql_with_params()
        table = CampaignRecipient._meta.db_table
        insert = (f"INSERT INTO {table} (campaign_id, contact_id, status) "  # noqa: S608 - our table, ORM SQL
                  f"SELECT s._cmp, s._cid, s._st FROM ({sql}) s WHERE 1 = 1")
        # The rows and materialized_at commit together, so normally there is nothing to collide with and the plain
        # INSERT (no speculative insertion per row) runs; rows left by anything else fall back to DO NOTHING.
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(insert, params)
                added = cursor.rowcount
        except IntegrityError:
            with connection.cursor() as cursor:
                cursor.execute(insert + " ON CONFLICT (campaign_id, contact_id) DO NOTHING", params)
                added = cursor.rowcount
        Campaign.objects.filter(pk=locked.pk).update(materialized_at=now, updated_at=now)
    campaign.materialized_at = now
    return added


# --- launch: handing batches to the dispatcher -------------------------------------------------------


def _enqueue_bulk(*, workspace, phone_number, template, rows: list[dict], campaign_id: str) -> list[str]:
    from apps.conversations.services import sending

    return sending.messages_enqueue_bulk(workspace=workspace, phone_number=phone_number, template=template,
                                         rows=rows, campaign_id=campaign_id)


def _enqueue_query(**kwargs) -> tuple:
    from apps.conversations.services import sending

    return sending.messages_enqueue_query(**kwargs)


def _window(campaign: Campaign) -> int:
    mps = campaign.phone_number.throughput_mps or settings.DEFAULT_THROUGHPUT_MPS
    return max(settings.CAMPAIGN_MIN_IN_FLIGHT, int(mps * settings.CAMPAIGN_IN_FLIGHT_SECONDS))


def _in_flight(campaign: Campaign) -> int:
    """Messages of this campaign still waiting for the dispatcher. One equality per state, so each is an index
    range over that state's rows: `status IN (...)` was a filter over every message the campaign ever had
    (100k heap fetches near the end of a 100k campaign, several times a second)."""
    table = Message._meta.db_table
    count = (f"(SELECT count(*) FROM {table} WHERE workspace_id = %s AND campaign_id = %s "  # noqa: S608
             "AND status = %s)")
    states = selectors.IN_FLIGHT_STATES
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + " + ".join([count] * len(states)),
                       [p for state in states for p in (campaign.workspace_id, campaign.pk, state)])
        return int(cursor.fetchone()[0])


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
    renders exactly, recipient by recipient (`_hand_out_python`). Both give the same rows."""
    now = now or timezone.now()
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
            f"SELECT k.id, k.contact_id, k.status, c.phone, {unsupported_sql} FROM _k k LEFT JOIN LATERAL ("
            f"SELECT c.phone, c.custom_fields FROM {Contact._meta.db_table} c WHERE c.id = k.contact_id) c ON true "
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
    marketing = template.category == MessageTemplate.Category.MARKETING
    headroom, free = _tier_budget(campaign=campaign, contact_ids=[r[1] for r in rows], now=now)
    costs = [cost_estimate(category=template.category, to_phone=r[3]) if r[3] else Decimal("0") for r in rows]
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
         f"r.contact_id = ANY(%s::text[]) AS _free{''.join(value_cols)}, coalesce({missing_sql}, false) AS _missing "
         "FROM unnest(%s::bigint[], %s::text[], %s::numeric[]) WITH ORDINALITY AS v(rid, phone, cost, ord) "
         f"JOIN {table} r ON r.id = v.rid LEFT JOIN {Contact._meta.db_table} c ON c.id = r.contact_id)",
         [list(free), *value_params, *missing_params, [r[0] for r in rows], [r[3] for r in rows], costs]),
        ("_c AS MATERIALIZED (SELECT _b.*, CASE WHEN _invalid THEN %s WHEN %s AND _opted_out THEN %s "
         "WHEN _missing THEN %s END AS _skip FROM _b)",
         [R.SKIPPED_INVALID.value, marketing, R.SKIPPED_OPTED_OUT.value, R.SKIPPED_MISSING_VARIABLE.value]),
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
    marketing = campaign.template.category == MessageTemplate.Category.MARKETING
    rows, handed, changed = [], [], []
    for recipient in batch:
        contact = contacts.get(recipient.contact_id)
        new_status = None
        if contact is None or not contact.phone:
            new_status = R.SKIPPED_INVALID
        elif marketing and not contact.opted_in:
            new_status = R.SKIPPED_OPTED_OUT  # opted out after launch
        else:
            rendered = variables.render(compiled, variables.contact_values(contact)) if compiled else None
            if compiled and rendered is None:
                new_status = R.SKIPPED_MISSING_VARIABLE
            elif headroom is not None and recipient.contact_id not in free and headroom <= 0:
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
        ids = _enqueue_bulk(workspace=campaign.workspace, phone_number=phone_number, template=campaign.template,
                            rows=rows, campaign_id=campaign.pk)
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


def campaign_expire(*, campaign: Campaign, now: datetime | None = None) -> int:
    """Past valid_until: recipients not yet handed out expire instead of going out late."""
    now = now or timezone.now()
    if not campaign.valid_until or campaign.valid_until > now:
        return 0
    return CampaignRecipient.objects.filter(campaign=campaign, status__in=(R.PENDING, R.DEFERRED)).update(
        status=R.EXPIRED, updated_at=now
    )


def campaign_check(*, campaign: Campaign, now: datetime | None = None) -> str:
    """Auto-pause on a high failure rate; complete once nothing is left. Returns the campaign's status."""
    now = now or timezone.now()
    if not _check_may_act(campaign):
        return Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()
    stats = selectors.campaign_stats(campaign=campaign)
    base = campaign.failure_baseline or {}
    attempted = stats["sent"] + stats["failed"] - base.get("attempted", 0)
    failed = stats["failed"] - base.get("failed", 0)
    threshold = settings.CAMPAIGN_AUTO_PAUSE_FAILURE_RATE
    if (threshold and attempted >= settings.CAMPAIGN_AUTO_PAUSE_MIN_ATTEMPTS and failed / attempted >= threshold):
        reason = (f"Auto-paused: {failed} of {attempted} messages failed ({failed / attempted:.0%}), at or over "
                  f"the {threshold:.0%} threshold. Check the template and audience, then resume.")
        updated = Campaign.objects.filter(pk=campaign.pk, status=S.RUNNING).update(
            status=S.PAUSED, paused_at=now, pause_reason=reason, auto_paused=True, updated_at=now
        )
        if updated:
            logger.warning("campaign %s: %s", campaign.pk, reason)
            return S.PAUSED
    if campaign.materialized_at and selectors.campaign_is_drained(stats):
        return campaign_complete(campaign=campaign, stats=stats, now=now)
    return Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()


def _check_may_act(campaign: Campaign) -> bool:
    """Cheap necessary conditions for `campaign_check` to pause or complete, so a running campaign's pump does
    not aggregate every recipient with its message every few seconds (180 ms at 100k). Auto-pause needs
    failed >= rate * attempted with attempted >= the minimum, so failed >= rate * minimum; completion needs no
    recipient waiting and no message in flight. Either may hold: run the full check, which decides."""
    threshold = settings.CAMPAIGN_AUTO_PAUSE_FAILURE_RATE
    if threshold:
        failed = (Message.objects.filter(workspace_id=campaign.workspace_id, campaign_id=campaign.pk,
                                         status=Message.Status.FAILED)
                  .exclude(error_code=selectors.EXPIRED_CODE).count()
                  - (campaign.failure_baseline or {}).get("failed", 0))
        if failed >= threshold * settings.CAMPAIGN_AUTO_PAUSE_MIN_ATTEMPTS - 1e-9:
            return True
    if campaign.materialized_at is None:
        return False
    waiting = CampaignRecipient.objects.filter(campaign_id=campaign.pk)
    return not (waiting.filter(status=R.PENDING).exists() or waiting.filter(status=R.DEFERRED).exists()
                or _in_flight(campaign))


@transaction.atomic
def campaign_complete(*, campaign: Campaign, stats: dict, now: datetime) -> str:
    """running -> completed by compare-and-set in the same transaction as the event: emitted exactly once."""
    updated = Campaign.objects.filter(pk=campaign.pk, status=S.RUNNING).update(
        status=S.COMPLETED, completed_at=now, updated_at=now
    )
    if updated:
        event_append(workspace=campaign.workspace, type="campaign.completed",
                     data=campaign_completed(campaign=campaign, stats=stats, completed_at=now))
        return S.COMPLETED
    return Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()


def campaign_step(*, campaign_id: str, now: datetime | None = None, check: bool = True) -> str:
    """One round of the pump: expand if needed, expire, top the in-flight window up, then auto-pause/complete.
    Returns "stopped" (not running), "busy" (window full or quota exhausted), "handed" or the final status."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_related("phone_number", "template", "workspace", "audience").filter(
        pk=campaign_id).first()
    if campaign is None or campaign.status != S.RUNNING:
        return "stopped"
    if campaign.materialized_at is None:
        campaign_materialize(campaign=campaign, now=now)
    campaign_expire(campaign=campaign, now=now)
    room = _window(campaign) - _in_flight(campaign)
    handed = 0
    while room > 0:
        n = campaign_hand_out_batch(campaign_id=campaign_id, limit=min(room, settings.CAMPAIGN_BATCH_SIZE), now=now)
        if n == 0:
            break
        handed += n
        room -= n
    # Nothing handed out with a full window: messages are in flight, so the campaign cannot be drained yet; the
    # periodic check (auto-pause) still runs. Nothing handed out with room to spare may mean the end: check.
    if check or (handed == 0 and room > 0):
        status = campaign_check(campaign=campaign, now=now)
        if status != S.RUNNING:
            return status
    return "handed" if handed else "busy"


def campaign_feed(*, campaign_id: str, max_seconds: float, sleep=time.sleep) -> int:
    """A feeder that only hands out batches (no lease: batches are safe side by side), so a campaign on a fast
    number is fed by several workers. Stops when the campaign stops running or the time is up."""
    deadline = time.monotonic() + max_seconds
    handed = 0
    while time.monotonic() < deadline:
        campaign = Campaign.objects.select_related("phone_number").filter(pk=campaign_id).first()
        if campaign is None or campaign.status != S.RUNNING:
            break
        if campaign.materialized_at is None:
            sleep(settings.CAMPAIGN_PUMP_IDLE_SECONDS)  # the pump expands the audience first
            continue
        room = _window(campaign) - _in_flight(campaign)
        n = campaign_hand_out_batch(campaign_id=campaign_id, limit=min(room, settings.CAMPAIGN_BATCH_SIZE)) \
            if room > 0 else 0
        handed += n
        if n == 0:
            sleep(settings.CAMPAIGN_PUMP_IDLE_SECONDS)
    return handed


def campaign_claim_pump(*, campaign_id: str, now: datetime, lease_seconds: float) -> bool:
    """Compare-and-set lease: one pump per campaign across all workers; a dead worker's lease runs out."""
    return bool(
        Campaign.objects.filter(pk=campaign_id, status=S.RUNNING)
        .filter(Q(pump_claimed_until__isnull=True) | Q(pump_claimed_until__lt=now))
        .update(pump_claimed_until=now + timedelta(seconds=lease_seconds))
    )


def _start_feeders(*, campaign_id: str, max_seconds: float) -> None:
    feeders = settings.CAMPAIGN_PUMP_FEEDERS
    if feeders <= 0 or max_seconds <= 0:
        return
    campaign = Campaign.objects.select_related("phone_number").filter(pk=campaign_id).first()
    # Only worth it when one worker cannot keep the in-flight window full (fast numbers).
    if campaign is None or _window(campaign) <= settings.CAMPAIGN_BATCH_SIZE:
        return
    from apps.campaigns import tasks

    for _ in range(feeders):
        tasks.campaign_feed.delay(campaign_id, max_seconds)


def campaign_pump(*, campaign_id: str, max_seconds: float | None = None, sleep=time.sleep) -> str:
    """Drive one campaign for up to `max_seconds` under a lease (the Celery task and the bench call this)."""
    max_seconds = settings.CAMPAIGN_PUMP_SECONDS if max_seconds is None else max_seconds
    lease = max_seconds + 30
    if not campaign_claim_pump(campaign_id=campaign_id, now=timezone.now(), lease_seconds=lease):
        return "claimed"
    started = time.monotonic()
    last_check = 0.0
    result = "busy"
    _start_feeders(campaign_id=campaign_id, max_seconds=max_seconds)
    try:
        while True:
            elapsed = time.monotonic() - started
            do_check = elapsed - last_check >= settings.CAMPAIGN_CHECK_SECONDS
            if do_check:
                last_check = elapsed
            result = campaign_step(campaign_id=campaign_id, check=do_check)
            if result not in ("busy", "handed") or elapsed >= max_seconds:
                return result
            if result == "busy":
                sleep(settings.CAMPAIGN_PUMP_IDLE_SECONDS)
    finally:
        Campaign.objects.filter(pk=campaign_id).update(pump_claimed_until=None)


# --- preflight ------------------------------------------------------------------------------------


def campaign_preflight(*, campaign: Campaign, now: datetime | None = None) -> dict:
    """A dry run over the audience as it is now: who would get a message, who would be skipped and why, the
    estimated cost and time. Writes nothing."""
    from apps.billing.services import cost_estimate

    now = now or timezone.now()
    workspace = campaign.workspace
    template = campaign.template
    marketing = template.category == MessageTemplate.Category.MARKETING
    compiled = variables.compile_spec(campaign.variables)
    audience_qs = selectors.audience_contacts(workspace=workspace, audience=campaign.audience)
    already = set()
    if campaign.materialized_at:
        already = set(CampaignRecipient.objects.filter(campaign=campaign).exclude(
            status__in=(R.PENDING, R.DEFERRED)).values_list("contact_id", flat=True))
    counts = {"opted_out": 0, "invalid_number": 0, "missing_variable": 0, "already_handled": 0,
              "duplicate": int((campaign.audience.import_report or {}).get("duplicates", 0)),
              "rejected_in_upload": int((campaign.audience.import_report or {}).get("rejected_count", 0))}
    eligible: list[tuple[str, str]] = []
    for contact in audience_qs.values(*variables.CONTACT_VALUE_FIELDS, "opted_in").iterator(chunk_size=5000):
        if contact["id"] in already:
            counts["already_handled"] += 1
        elif not contact["phone"]:
            counts["invalid_number"] += 1
        elif marketing and not contact["opted_in"]:
            counts["opted_out"] += 1
        elif compiled and variables.render(compiled, contact) is None:
            counts["missing_variable"] += 1
        else:
            eligible.append((contact["id"], contact["phone"]))
    phone_number = campaign.phone_number
    limit = selectors.tier_limit(phone_number.messaging_tier)
    over_tier = 0
    headroom = None
    if limit is not None:
        headroom = selectors.tier_headroom(phone_number=phone_number, now=now)
        free: set[str] = set()
        ids = [cid for cid, _ in eligible]
        for i in range(0, len(ids), 5000):
            free |= selectors.tier_free_contact_ids(phone_number=phone_number, now=now, contact_ids=ids[i:i + 5000])
        needs_quota = sum(1 for cid in ids if cid not in free)
        over_tier = max(needs_quota - headroom, 0)
    sendable = len(eligible) - over_tier
    cost = Decimal("0")
    cache: dict[str, Decimal] = {}
    for _, phone in eligible:
        key = phone[:6]  # country and, for +1, the area code: enough to tell the region's rate
        if key not in cache:
            cache[key] = cost_estimate(category=template.category, to_phone=phone)
        cost += cache[key]
    if over_tier and eligible:
        cost = (cost * sendable / len(eligible)).quantize(Decimal("0.0001"))
    mps = phone_number.throughput_mps or settings.DEFAULT_THROUGHPUT_MPS
    seconds = round(sendable / mps, 1) if mps else None
    skipped = {**counts, "over_tier_limit": over_tier}
    return {
        "campaign_id": campaign.pk,
        "audience_size": len(eligible) + sum(v for k, v in counts.items() if k not in ("duplicate",
                                                                                       "rejected_in_upload")),
        "recipients": sendable,
        "skipped": skipped,
        "skipped_total": sum(v for k, v in skipped.items() if k not in ("duplicate", "rejected_in_upload",
                                                                         "already_handled")),
        "template": {"name": template.name, "language": template.language, "category": template.category,
                     "status": template.status},
        "messaging_tier": phone_number.messaging_tier,
        "tier_limit": limit,
        "tier_headroom": headroom,
        "estimated_cost": str(cost.quantize(Decimal("0.0001"))),
        "currency": "USD",
        "throughput_mps": mps,
        "estimated_seconds": seconds,
        "estimated_finish_at": (now + timedelta(seconds=seconds)) if seconds is not None else None,
        "notes": ([f"{over_tier} recipients are over today's {phone_number.messaging_tier} limit; they wait for "
                   "quota (deferred) and expire if the validity window closes first."] if over_tier else []),
    }
