"""GET /api/v1/reports/messaging, /reports/billing, /analytics/usage: JSON, or CSV with Accept: text/csv."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from apps.core.api.base import ApiView
from apps.core.errors import ValidationFailed
from apps.reports import selectors

MAX_DAYS = 366


# The CSV form of a report, typed as what it is (a text/csv document).
CSV_SCHEMA = {"type": "string", "contentMediaType": "text/csv"}

class CSVRenderer(BaseRenderer):
    """The rows of a report (`data`, or usage's `daily`) as CSV under a header line of the view's `csv_columns`,
    so a range with no rows is still a CSV document (the header alone). Errors stay JSON-shaped text in the body
    (the envelope), as a client reading CSV still needs to see why."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if not isinstance(data, dict) or "error" in data:
            return JSONRenderer().render(data)
        rows = data.get("data", data.get("daily", []))
        columns = getattr((renderer_context or {}).get("view"), "csv_columns", None) or list(rows[0].keys())
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
        return out.getvalue().encode()


def _day(raw: str | None, field: str, default: date) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(raw[:10]) if len(raw) >= 10 else date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationFailed(f"{field} must be a date, YYYY-MM-DD.", field=field) from exc


class _ReportView(ApiView):
    renderer_classes = [JSONRenderer, CSVRenderer]
    groups: tuple[str, ...] = ()

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if getattr(response, "accepted_media_type", "") == "text/csv" and response.status_code == 200:
            response["Content-Disposition"] = f'attachment; filename="{self.filename}.csv"'
        return response

    def range(self) -> tuple[date, date, str]:
        today = datetime.now(UTC).date()
        q = self.request.query_params
        until = _day(q.get("to"), "to", today)
        since = _day(q.get("from"), "from", until - timedelta(days=29))
        if since > until:
            raise ValidationFailed("from must not be after to.", field="from")
        if (until - since).days >= MAX_DAYS:
            raise ValidationFailed(f"At most {MAX_DAYS} days per report.", field="from")
        group_by = q.get("group_by") or "day"
        if group_by not in self.groups:
            raise ValidationFailed(f"group_by must be one of {', '.join(self.groups)}.", field="group_by")
        return since, until, group_by


_RANGE = [OpenApiParameter("from", str, description="First day, YYYY-MM-DD (default: 30 days before `to`)"),
          OpenApiParameter("to", str, description="Last day, YYYY-MM-DD, included (default: today, UTC)")]


def _report_out(name: str, row: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The answer of a grouped report: {group_by, from, to, data: [row]} (`from` is a keyword in Python)."""
    out = type(name, (serializers.Serializer,), {"group_by": serializers.CharField(), "to": serializers.DateField(),
                                                 "data": row(many=True)})
    out._declared_fields["from"] = serializers.DateField()
    return out


class _GroupedReportView(_ReportView):
    """A report over a date range grouped by `group_by`: `report` is its selector (the one place it is read)."""

    report = staticmethod(lambda **kwargs: [])
    row: type[serializers.Serializer]

    @property
    def csv_columns(self) -> list[str]:
        return list(self.row().fields)

    def get(self, request):
        since, until, group_by = self.range()
        rows = self.report(workspace=self.tenant.workspace, since=since, until=until, group_by=group_by)
        return Response({"group_by": group_by, "from": since.isoformat(), "to": until.isoformat(), "data": rows})


def _grouped_schema(*, operation_id: str, summary: str, description: str, groups: tuple[str, ...],
                    out: type[serializers.Serializer]):
    return extend_schema_view(get=extend_schema(
        operation_id=operation_id, summary=summary, description=f"{description} `Accept: text/csv` answers CSV.",
        parameters=[*_RANGE, OpenApiParameter("group_by", str, enum=list(groups))],
        responses={(200, "application/json"): out, (200, "text/csv"): CSV_SCHEMA}))


class MessagingRow(serializers.Serializer):
    group = serializers.CharField(help_text="The day (YYYY-MM-DD; weeks and months by their first day) or the id/code")
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    read = serializers.IntegerField()
    failed = serializers.IntegerField()
    delivery_rate = serializers.FloatField(allow_null=True)
    read_rate = serializers.FloatField(allow_null=True)
    inbound = serializers.IntegerField()
    unique_contacts = serializers.IntegerField()


MessagingOut = _report_out("MessagingOut", MessagingRow)


@_grouped_schema(operation_id="reports_messaging", summary="Messaging report", groups=selectors.MESSAGING_GROUPS,
                 out=MessagingOut, description="Sent, delivered, read, failed, rates, inbound and unique contacts "
                 "per group, from the hourly rollups.")
class MessagingReportView(_GroupedReportView):
    scopes = {"GET": "reports:read"}
    groups = selectors.MESSAGING_GROUPS
    filename = "messaging"
    report = staticmethod(selectors.messaging_report)
    row = MessagingRow


class BillingRow(serializers.Serializer):
    group = serializers.CharField()
    charged = serializers.CharField()
    refunded = serializers.CharField()
    messages = serializers.IntegerField()
    free_messages = serializers.IntegerField()


BillingOut = _report_out("BillingOut", BillingRow)


@_grouped_schema(operation_id="reports_billing", summary="Billing report", groups=selectors.BILLING_GROUPS,
                 out=BillingOut, description="Charged and refunded amounts (decimal strings), charged and free "
                 "messages per group, from the hourly rollups.")
class BillingReportView(_GroupedReportView):
    scopes = {"GET": "billing:read"}
    groups = selectors.BILLING_GROUPS
    filename = "billing"
    report = staticmethod(selectors.billing_report)
    row = BillingRow


class UsageOut(serializers.Serializer):
    period = serializers.CharField()
    to = serializers.DateField()
    totals = serializers.DictField()
    rates = serializers.DictField()
    daily = serializers.ListField(child=serializers.DictField())


UsageOut._declared_fields["from"] = serializers.DateField()
PERIODS = {"1d": 1, "7d": 7, "30d": 30, "90d": 90}


class UsageAnalyticsView(_ReportView):
    scopes = {"GET": "reports:read"}
    filename = "usage"
    csv_columns = ["sent", "delivered", "read", "failed", "inbound", "unique_contacts", "date", "spent"]

    @extend_schema(operation_id="analytics_usage", summary="Usage analytics",
                   description="Totals, rates, unique contacts, spend and a daily breakdown over the period. "
                   "`Accept: text/csv` answers the daily rows as CSV.",
                   parameters=[OpenApiParameter("period", str, enum=list(PERIODS))], responses={(200, "application/json"): UsageOut, (200, "text/csv"): CSV_SCHEMA})
    def get(self, request):
        period = request.query_params.get("period") or "30d"
        if period not in PERIODS:
            raise ValidationFailed(f"period must be one of {', '.join(PERIODS)}.", field="period")
        return Response(selectors.usage_analytics(workspace=self.tenant.workspace, days=PERIODS[period]))
