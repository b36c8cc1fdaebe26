"""Reports and analytics (API.md "Money"), answered from the rollups, never by scanning messages.
Every function takes `workspace=` (the live workspace or its sandbox twin)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import F, Q, Sum
from django.db.models.functions import TruncMonth, TruncWeek

from apps.core.models import Workspace
from apps.reports.models import ContactMonth, MessageDayRollup

MESSAGING_GROUPS = ("day", "week", "month", "category", "phone_number", "template", "campaign", "country")
BILLING_GROUPS = ("day", "month", "category", "country", "campaign")
_TIME = {"day": None, "week": TruncWeek, "month": TruncMonth}
_COLUMN = {"category": "category", "phone_number": "phone_number_id", "template": "template_id",
           "campaign": "campaign_id", "country": "country"}
SENT = ("sent", "delivered", "read")
DELIVERED = ("delivered", "read")
FOUR = Decimal("0.0001")


def _key(value) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value or ""


def _group(qs, group_by: str):
    if group_by == "day":
        return qs.annotate(g=F("day"))
    if group_by in _TIME:
        return qs.annotate(g=_TIME[group_by]("day"))
    return qs.annotate(g=F(_COLUMN[group_by]))


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def messaging_report(*, workspace: Workspace, since: date, until: date, group_by: str) -> list[dict]:
    unique = unique_contacts(workspace_id=workspace.pk, since=since, until=until, group_by=group_by)
    return _messaging_rows(workspace=workspace, since=since, until=until, group_by=group_by, unique=unique)


def _messaging_rows(*, workspace: Workspace, since: date, until: date, group_by: str,
                    unique: dict[str, int]) -> list[dict]:
    base = MessageDayRollup.objects.filter(workspace_id=workspace.pk, day__gte=since, day__lte=until)
    rows = _group(base, group_by).values("g").annotate(
        sent=Sum("messages", filter=Q(direction="outbound", status__in=SENT), default=0),
        delivered=Sum("messages", filter=Q(direction="outbound", status__in=DELIVERED), default=0),
        read=Sum("messages", filter=Q(direction="outbound", status="read"), default=0),
        failed=Sum("messages", filter=Q(direction="outbound", status="failed"), default=0),
        inbound=Sum("messages", filter=Q(direction="inbound"), default=0),
    )
    out = []
    for r in rows:
        key = _key(r["g"])
        out.append({"group": key, "sent": r["sent"], "delivered": r["delivered"], "read": r["read"],
                    "failed": r["failed"], "delivery_rate": _rate(r["delivered"], r["sent"]),
                    "read_rate": _rate(r["read"], r["delivered"]), "inbound": r["inbound"],
                    "unique_contacts": unique.get(key, 0)})
    return sorted(out, key=lambda row: row["group"])


def _months(since: date, until: date) -> list[date]:
    month, out = since.replace(day=1), []
    while month <= until:
        out.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return out


def _masks(days: list[date]) -> dict[date, int]:
    """The ContactMonth.days bits of `days`, per month."""
    masks: dict[date, int] = {}
    for day in days:
        month = day.replace(day=1)
        masks[month] = masks.get(month, 0) | (1 << (day.day - 1))
    return masks


def _period_days(since: date, until: date, group_by: str) -> dict[str, list[date]]:
    """Each period of the range (by its key, as the rollups name it) and its days inside the range."""
    out: dict[str, list[date]] = {}
    day = since
    while day <= until:
        start = {"day": day, "week": day - timedelta(days=day.weekday()), "month": day.replace(day=1)}[group_by]
        out.setdefault(start.isoformat(), []).append(day)
        day += timedelta(days=1)
    return out


def unique_contacts(*, workspace_id: str, since: date, until: date, group_by: str | None) -> dict[str, int]:
    """Distinct contacts reached or heard from in [since, until], per group, and the whole range's total under
    the key "" (only that for `group_by` None; with a time grouping, from the same scan). From ContactMonth: a
    row counts when its days meet the period's (or the range's) days."""
    months = _months(since, until)
    as_date = connection.ops.adapt_datefield_value
    table = ContactMonth._meta.db_table
    where = "workspace_id = %s AND month >= %s AND month <= %s"
    params: list = [workspace_id, as_date(months[0]), as_date(months[-1])]
    with connection.cursor() as cursor:
        if group_by in _TIME:
            # One row per contact with its days per month (b0, b1 …); each period counts the contacts whose
            # days meet the period's. The masks are integers we computed, written into the SQL as such.
            periods = _period_days(since, until, group_by)
            columns = ", ".join(f"bit_or(CASE WHEN month = %s THEN days ELSE 0 END) AS b{i}"
                                for i in range(len(months)))
            index = {m: i for i, m in enumerate(months)}
            sums = []
            for days in [*periods.values(), _range_days(since, until)]:  # the last: the whole range's total
                if len(days) == 1:  # a day: its bit, summed
                    sums.append(f"sum((b{index[days[0].replace(day=1)]} >> {days[0].day - 1}) & 1)")
                    continue
                meets = " OR ".join(f"(b{index[m]} & {int(mask)}) <> 0" for m, mask in _masks(days).items())
                sums.append(f"sum(CASE WHEN {meets} THEN 1 ELSE 0 END)")
            cursor.execute(f"SELECT {', '.join(sums)} FROM (SELECT {columns} FROM {table} "  # noqa: S608
                           f"WHERE {where} GROUP BY contact_id) x", [*map(as_date, months), *params])
            counts = cursor.fetchone() or ()
            out = {key: int(n or 0) for key, n in zip([*periods, ""], counts, strict=False) if n}
            return out
        masks = _masks(_range_days(since, until))
        meets = " ".join(f"WHEN %s THEN {int(mask)}" for mask in masks.values())
        column = _COLUMN[group_by] if group_by else "''"
        cursor.execute(f"SELECT g, count(*) FROM (SELECT DISTINCT {column} AS g, contact_id FROM {table} "  # noqa: S608
                       f"WHERE {where} AND (days & CASE month {meets} ELSE 0 END) <> 0) x GROUP BY g",
                       [*params, *map(as_date, masks)])
        return {g or "": n for g, n in cursor.fetchall()}


def _range_days(since: date, until: date) -> list[date]:
    return [since + timedelta(days=i) for i in range((until - since).days + 1)]


def billing_report(*, workspace: Workspace, since: date, until: date, group_by: str) -> list[dict]:
    base = MessageDayRollup.objects.filter(workspace_id=workspace.pk, day__gte=since, day__lte=until,
                                          direction="outbound")
    rows = _group(base, group_by).values("g").annotate(
        charged=Sum("charged", default=0), refunded=Sum("refunded", default=0),
        messages=Sum("charged_messages", default=0), free_messages=Sum("free_messages", default=0))
    out = [{"group": _key(r["g"]), "charged": f"{Decimal(r['charged']).quantize(FOUR)}",
            "refunded": f"{Decimal(r['refunded']).quantize(FOUR)}", "messages": r["messages"],
            "free_messages": r["free_messages"]} for r in rows]
    return sorted(out, key=lambda row: row["group"])


def usage_analytics(*, workspace: Workspace, days: int, today: date | None = None) -> dict:
    today = today or datetime.now(UTC).date()
    since = today - timedelta(days=days - 1)
    unique_by_day = unique_contacts(workspace_id=workspace.pk, since=since, until=today, group_by="day")
    daily = _messaging_rows(workspace=workspace, since=since, until=today, group_by="day", unique=unique_by_day)
    money = {r["group"]: r for r in billing_report(workspace=workspace, since=since, until=today, group_by="day")}
    totals = {k: sum(r[k] for r in daily) for k in ("sent", "delivered", "read", "failed", "inbound")}
    unique = unique_by_day.get("", 0)
    charged = sum((Decimal(r["charged"]) - Decimal(r["refunded"]) for r in money.values()), Decimal("0"))
    return {
        "period": f"{days}d", "from": since.isoformat(), "to": today.isoformat(),
        "totals": {**totals, "unique_contacts": unique, "spent": f"{charged.quantize(FOUR)}"},
        "rates": {"delivery_rate": _rate(totals["delivered"], totals["sent"]),
                  "read_rate": _rate(totals["read"], totals["delivered"])},
        "daily": [{**{k: r[k] for k in ("sent", "delivered", "read", "failed", "inbound", "unique_contacts")},
                   "date": r["group"],
                   "spent": f"{(Decimal(money.get(r['group'], {}).get('charged', '0')) - Decimal(money.get(r['group'], {}).get('refunded', '0'))).quantize(FOUR)}"}
                  for r in daily],
    }
