"""The rollups' writes. One function computes an hour's rows from messages (hour_recompute); the event log
says which hours moved (rollups_advance, incremental), and rollups_rebuild runs the same function over every
hour, so both give identical numbers by construction (tests/reports pins it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import F

from apps.conversations.models import Message
from apps.core.models import Event, Workspace
from apps.reports.models import ContactMonth, MessageDayRollup, MessageRollup, RollupCursor

HOUR = timedelta(hours=1)
BATCH = 5000
_M = Message._meta.db_table


_dial_sql: str | None = None


def _dial_codes_sql() -> str:
    """E.164 calling code -> its main country (phonenumbers' table) as an inline VALUES list: the reports'
    SQL names a number's country exactly as billing.services.country_for_phone does (codes are prefix-free,
    so at most one of the 1-, 2- and 3-digit prefixes matches)."""
    global _dial_sql
    if _dial_sql is None:
        import phonenumbers

        pairs = []
        for code in range(1, 1000):
            region = phonenumbers.region_code_for_country_code(code)
            if region and region not in ("ZZ", "001"):
                pairs.append(f"('{code}', '{region}')")
        _dial_sql = f"(SELECT column1 AS code, column2 AS country FROM (VALUES {', '.join(pairs)}) v)"  # noqa: S608
    return _dial_sql


def _source_sql() -> str:
    """Per message of one workspace and hour: its dimensions and money, as the rollups store them."""
    from apps.contacts.models import Contact

    dial, contacts = _dial_codes_sql(), Contact._meta.db_table
    return f"""
        SELECT x.*, COALESCE(d1.country, d2.country, d3.country, '') AS country FROM (
            SELECT m.id, m.contact_id, m.direction, m.status, m.cost,
                   COALESCE(m.phone_number_id, '') AS phone_number_id, COALESCE(m.template_id, '') AS template_id,
                   m.campaign_id,
                   CASE WHEN m.direction = 'inbound' THEN ''
                        WHEN m.template_category = '' THEN 'service' ELSE lower(m.template_category) END AS category,
                   CASE WHEN m.to_phone <> '' THEN m.to_phone ELSE COALESCE(c.phone, '') END AS phone
            FROM {_M} m LEFT JOIN {contacts} c ON c.id = m.contact_id
            WHERE m.workspace_id = %s AND m.created_at >= %s AND m.created_at < %s) x
        LEFT JOIN {dial} d1 ON d1.code = substr(x.phone, 2, 1)
        LEFT JOIN {dial} d2 ON d2.code = substr(x.phone, 2, 2)
        LEFT JOIN {dial} d3 ON d3.code = substr(x.phone, 2, 3)"""  # noqa: S608 - table names and codes are ours


_DIMS = "phone_number_id, template_id, campaign_id, category, country"


_MONTH_KEY = ("workspace_id", "month", "contact_id", "direction", "phone_number_id", "template_id", "campaign_id",
              "category", "country")


def day_bit(day) -> int:
    """The bit of a day in ContactMonth.days: bit d-1 for day d of the month."""
    return 1 << (day.day - 1)


def hour_recompute(*, workspace_id: str, hour: datetime) -> None:
    """Replace the rollup rows of one workspace-hour with what its messages say now, and mark the contacts
    it reached on their ContactMonth rows (inside the caller's transaction)."""
    hour = hour.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    rollup, months = MessageRollup._meta.db_table, ContactMonth._meta.db_table
    at = connection.ops.adapt_datetimefield_value
    params = [workspace_id, at(hour), at(hour + HOUR)]
    MessageRollup.objects.filter(workspace_id=workspace_id, hour=hour).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {rollup} (workspace_id, hour, direction, status, {_DIMS}, messages, charged, "  # noqa: S608
            "charged_messages, refunded, free_messages) "
            f"SELECT %s, %s, direction, status, {_DIMS}, count(*), "
            "COALESCE(sum(CASE WHEN cost > 0 THEN cost ELSE 0 END), 0), "
            "sum(CASE WHEN cost > 0 THEN 1 ELSE 0 END), "
            "COALESCE(sum(CASE WHEN cost > 0 AND status = 'failed' THEN cost ELSE 0 END), 0), "
            "sum(CASE WHEN cost = 0 AND direction = 'outbound' AND status NOT IN ('failed', 'canceled') "
            "THEN 1 ELSE 0 END) "
            f"FROM ({_source_sql()}) s GROUP BY direction, status, {_DIMS}",
            [workspace_id, at(hour), *params])
        _day_resum(cursor, workspace_id=workspace_id, day=hour.date())
        # An existing row gains the day's bit; the WHERE spares a row that has it already a dead tuple.
        cursor.execute(
            f"INSERT INTO {months} ({', '.join(_MONTH_KEY)}, days) "  # noqa: S608
            f"SELECT DISTINCT %s, %s, contact_id, direction, {_DIMS}, %s FROM ({_source_sql()}) s "
            f"WHERE contact_id IS NOT NULL ON CONFLICT ({', '.join(_MONTH_KEY)}) "
            f"DO UPDATE SET days = {months}.days | excluded.days "
            f"WHERE ({months}.days & excluded.days) <> excluded.days",
            [workspace_id, connection.ops.adapt_datefield_value(hour.date().replace(day=1)), day_bit(hour),
             *params])


_COUNTS = "messages, charged, charged_messages, refunded, free_messages"


def _day_resum(cursor, *, workspace_id: str, day) -> None:
    """The day's MessageDayRollup rows become the sum of its hours' MessageRollup rows."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    MessageDayRollup.objects.filter(workspace_id=workspace_id, day=day).delete()
    cursor.execute(
        f"INSERT INTO {MessageDayRollup._meta.db_table} (workspace_id, day, direction, status, {_DIMS}, "  # noqa: S608
        f"{_COUNTS}) SELECT workspace_id, %s, direction, status, {_DIMS}, "
        + ", ".join(f"sum({c})" for c in _COUNTS.split(", "))
        + f" FROM {MessageRollup._meta.db_table} WHERE workspace_id = %s AND hour >= %s AND hour < %s "
        f"GROUP BY workspace_id, direction, status, {_DIMS}",
        [connection.ops.adapt_datefield_value(day), workspace_id,
         connection.ops.adapt_datetimefield_value(start),
         connection.ops.adapt_datetimefield_value(start + timedelta(days=1))])


def _message_hours(workspace_id: str, message_ids: set[str]) -> set[datetime]:
    hours: set[datetime] = set()
    ids = list(message_ids)
    for i in range(0, len(ids), 1000):
        for created in Message.objects.filter(workspace_id=workspace_id, pk__in=ids[i:i + 1000]).values_list(
                "created_at", flat=True):
            hours.add(created.astimezone(UTC).replace(minute=0, second=0, microsecond=0))
    return hours


def rollups_advance_workspace(*, workspace: Workspace, limit: int = BATCH) -> int:
    """Take in the workspace's events after its cursor (up to `limit`): the hours of the messages they name
    are recomputed and the cursor moves, in one transaction (a crash repeats the batch, harmlessly).
    Returns the number of events taken in."""
    with transaction.atomic():
        cursor, _ = RollupCursor.objects.select_for_update().get_or_create(workspace_id=workspace.pk)
        rows = list(Event.objects.filter(workspace_id=workspace.pk, sequence__gt=cursor.sequence)
                    .order_by("sequence").values_list("sequence", "type", "data")[:limit])
        if not rows:
            return 0
        ids = {data.get("message_id") for _, etype, data in rows
               if etype.startswith("message.") and isinstance(data, dict) and data.get("message_id")}
        for hour in sorted(_message_hours(workspace.pk, ids)):
            hour_recompute(workspace_id=workspace.pk, hour=hour)
        RollupCursor.objects.filter(pk=cursor.pk).update(sequence=rows[-1][0])
    return len(rows)


def rollups_advance() -> int:
    """Every workspace whose event counter is ahead of its rollup cursor catches up (the periodic job)."""
    behind = Workspace.objects.raw(
        f"SELECT w.id FROM {Workspace._meta.db_table} w LEFT JOIN {RollupCursor._meta.db_table} r "  # noqa: S608
        "ON r.workspace_id = w.id WHERE w.event_sequence > COALESCE(r.sequence, 0)")
    total = 0
    for workspace in list(behind):
        while True:
            taken = rollups_advance_workspace(workspace=workspace)
            total += taken
            if taken < BATCH:
                break
    return total


def rollups_rebuild(*, workspace: Workspace | None = None) -> int:
    """Recompute every hour of every message (of one workspace, or all) from scratch; the cursor moves to
    the event counter. Idempotent. Returns the number of hours recomputed."""
    workspaces = [workspace] if workspace is not None else list(Workspace.objects.all())
    count = 0
    for ws in workspaces:
        ws.refresh_from_db(fields=["event_sequence"])
        with transaction.atomic():
            MessageRollup.objects.filter(workspace_id=ws.pk).delete()
            MessageDayRollup.objects.filter(workspace_id=ws.pk).delete()
            ContactMonth.objects.filter(workspace_id=ws.pk).delete()
            hours = _all_hours(ws.pk)
            for hour in hours:
                hour_recompute(workspace_id=ws.pk, hour=hour)
            RollupCursor.objects.update_or_create(workspace_id=ws.pk, defaults={"sequence": ws.event_sequence})
        count += len(hours)
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # A rebuild rewrote every row, ContactMonth's about once per contact and day: a plain VACUUM would
        # leave the tables (and so every report's scan) that large. FULL rewrites them compactly (a short
        # exclusive lock: they hold only the live rows by then) and the planner gets fresh numbers.
        with connection.cursor() as cursor:
            for model in (MessageRollup, MessageDayRollup, ContactMonth):
                cursor.execute(f"VACUUM FULL ANALYZE {model._meta.db_table}")
    return count


def _all_hours(workspace_id: str) -> list[datetime]:
    if connection.vendor == "postgresql":
        sql = f"SELECT DISTINCT date_trunc('hour', created_at) FROM {_M} WHERE workspace_id = %s"  # noqa: S608
    else:
        sql = f"SELECT DISTINCT strftime('%%Y-%%m-%%d %%H:00:00', created_at) FROM {_M} WHERE workspace_id = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace_id])
        values = [row[0] for row in cursor.fetchall()]
    out = []
    for value in values:
        if isinstance(value, str):
            value = datetime.fromisoformat(value).replace(tzinfo=UTC)
        out.append(value.astimezone(UTC))
    return sorted(out)


def contact_months_merge(*, workspace_id: str, survivor_id: str, absorbed_id: str) -> dict[str, int]:
    """A contact merge (core.hooks contact merger): the absorbed contact's days count as the survivor's, so
    unique_contacts counts the person once; where both have a row for the same month and dimensions
    (contact_month_unique), the survivor's row takes the absorbed one's days."""
    moved = dropped = 0
    dims = ("month", "direction", "phone_number_id", "template_id", "campaign_id", "category", "country")
    for row in ContactMonth.objects.filter(workspace_id=workspace_id, contact_id=absorbed_id).order_by("pk"):
        same = {d: getattr(row, d) for d in dims}
        if ContactMonth.objects.filter(workspace_id=workspace_id, contact_id=survivor_id, **same).update(
                days=F("days").bitor(row.days)):
            row.delete()
            dropped += 1
        else:
            ContactMonth.objects.filter(pk=row.pk).update(contact_id=survivor_id)
            moved += 1
    return {"moved": moved, "dropped": dropped}
