"""Reports and analytics (API.md "Money"), answered from the rollups, never by scanning messages.
Every function takes `workspace=` (the live workspace or its sandbox twin)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek

from apps.core.models import Workspace
from apps.reports.models import ContactDay, MessageRollup

MESSAGING_GROUPS = ("day", "week", "month", "category", "phone_number", "template", "campaign", "country")
BILLING_GROUPS = ("day", "month", "category", "country", "campaign")
_TIME = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}
_COLUMN = {"category": "category", "phone_number": "phone_number_id", "template": "template_id",
           "campaign": "campaign_id", "country": "country"}
SENT = ("sent", "delivered", "read")
DELIVERED = ("delivered", "read")
FOUR = Decimal("0.0001")


def _bounds(since: date, until: date) -> tuple[datetime, datetime]:
    """[since 00:00, until+1 00:00) UTC: both days included."""
    return (datetime.combine(since, time.min, tzinfo=UTC),
            datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC))


def _key(value) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value or ""


def _group(qs, group_by: str, field: str):
    if group_by in _TIME:
        return qs.annotate(g=_TIME[group_by](field, tzinfo=UTC) if field == "hour" else _TIME[group_by](field))
    return qs.annotate(g=F(_COLUMN[group_by]))


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def messaging_report(*, workspace: Workspace, since: date, until: date, group_by: str) -> list[dict]:
    start, end = _bounds(since, until)
    base = MessageRollup.objects.filter(workspace_id=workspace.pk, hour__gte=start, hour__lt=end)
    rows = _group(base, group_by, "hour").values("g").annotate(
        sent=Sum("messages", filter=Q(direction="outbound", status__in=SENT), default=0),
        delivered=Sum("messages", filter=Q(direction="outbound", status__in=DELIVERED), default=0),
        read=Sum("messages", filter=Q(direction="outbound", status="read"), default=0),
        failed=Sum("messages", filter=Q(direction="outbound", status="failed"), default=0),
        inbound=Sum("messages", filter=Q(direction="inbound"), default=0),
    )
    contacts = _group(ContactDay.objects.filter(workspace_id=workspace.pk, day__gte=since, day__lte=until),
                      group_by, "day").values("g").annotate(n=Count("contact_id", distinct=True))
    unique = {_key(r["g"]): r["n"] for r in contacts}
    out = []
    for r in rows:
        key = _key(r["g"])
        out.append({"group": key, "sent": r["sent"], "delivered": r["delivered"], "read": r["read"],
                    "failed": r["failed"], "delivery_rate": _rate(r["delivered"], r["sent"]),
                    "read_rate": _rate(r["read"], r["delivered"]), "inbound": r["inbound"],
                    "unique_contacts": unique.get(key, 0)})
    return sorted(out, key=lambda row: row["group"])


def billing_report(*, workspace: Workspace, since: date, until: date, group_by: str) -> list[dict]:
    start, end = _bounds(since, until)
    base = MessageRollup.objects.filter(workspace_id=workspace.pk, hour__gte=start, hour__lt=end, direction="outbound")
    rows = _group(base, group_by, "hour").values("g").annotate(
        charged=Sum("charged", default=0), refunded=Sum("refunded", default=0),
        messages=Sum("charged_messages", default=0), free_messages=Sum("free_messages", default=0))
    out = [{"group": _key(r["g"]), "charged": f"{Decimal(r['charged']).quantize(FOUR)}",
            "refunded": f"{Decimal(r['refunded']).quantize(FOUR)}", "messages": r["messages"],
            "free_messages": r["free_messages"]} for r in rows]
    return sorted(out, key=lambda row: row["group"])


def usage_analytics(*, workspace: Workspace, days: int, today: date | None = None) -> dict:
    today = today or datetime.now(UTC).date()
    since = today - timedelta(days=days - 1)
    daily = messaging_report(workspace=workspace, since=since, until=today, group_by="day")
    money = {r["group"]: r for r in billing_report(workspace=workspace, since=since, until=today, group_by="day")}
    totals = {k: sum(r[k] for r in daily) for k in ("sent", "delivered", "read", "failed", "inbound")}
    unique = ContactDay.objects.filter(workspace_id=workspace.pk, day__gte=since, day__lte=today).aggregate(
        n=Count("contact_id", distinct=True))["n"]
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
