"""Reports: the rollups answer what a brute-force count over messages answers (property test), the
incremental road (event log) equals a rebuild, a rebuild is idempotent, and the API speaks JSON and CSV."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.billing.services import country_for_phone
from apps.contacts.models import Contact
from apps.conversations.models import Message
from apps.conversations.services import sending
from apps.core.tenancy import Tenant
from apps.reports import selectors, services
from apps.reports.models import ContactMonth, MessageDayRollup, MessageRollup
from tests.conversations.send_support import template
from tests.webhooks.inbound_support import connect_number, deliver, status, status_payload

pytestmark = pytest.mark.django_db
BASE = datetime(2026, 2, 24, tzinfo=UTC)  # the ten days cross a month (ContactMonth rows) and weeks
PHONES = ["+16505551234", "+447700900123", "+919812345678", "+5511987654321", "+2348031234567", "+80012345678"]
STATUSES = ["queued", "sent", "delivered", "read", "failed", "canceled"]
SENT, DELIVERED = ("sent", "delivered", "read"), ("delivered", "read")

message_st = st.fixed_dictionaries({
    "inbound": st.booleans(),
    "status": st.sampled_from(STATUSES),
    "category": st.sampled_from(["", "MARKETING", "UTILITY", "AUTHENTICATION"]),
    "contact": st.integers(0, len(PHONES) - 1),
    "minutes": st.integers(0, 60 * 24 * 9),  # ten days, across hour and day (and week) boundaries
    "campaign": st.sampled_from(["", "cmp_A", "cmp_B"]),
    "cost": st.sampled_from([None, "0", "0.0250", "0.0014", "0.1365"]),
})


def _rate(n, d):
    return round(n / d, 4) if d else None


def _brute_messaging(messages, group_by):
    groups: dict[str, dict] = defaultdict(lambda: {"sent": 0, "delivered": 0, "read": 0, "failed": 0, "inbound": 0,
                                                   "contacts": set()})
    for m in messages:
        day = m.created_at.astimezone(UTC).date()
        phone = m.to_phone or m.contact.phone
        key = {"day": day.isoformat(), "week": (day - timedelta(days=day.weekday())).isoformat(),
               "month": day.replace(day=1).isoformat(), "country": country_for_phone(phone),
               "campaign": m.campaign_id,
               "category": "" if m.direction == "inbound" else (m.template_category.lower() or "service")}[group_by]
        g = groups[key]
        g["contacts"].add(m.contact_id)
        if m.direction == "inbound":
            g["inbound"] += 1
            continue
        g["sent"] += m.status in SENT
        g["delivered"] += m.status in DELIVERED
        g["read"] += m.status == "read"
        g["failed"] += m.status == "failed"
    return sorted(({"group": k, **{f: g[f] for f in ("sent", "delivered", "read", "failed")},
                    "delivery_rate": _rate(g["delivered"], g["sent"]), "read_rate": _rate(g["read"], g["delivered"]),
                    "inbound": g["inbound"], "unique_contacts": len(g["contacts"])} for k, g in groups.items()),
                  key=lambda r: r["group"])


def _brute_billing(messages, group_by):
    groups: dict[str, list] = defaultdict(lambda: [Decimal("0"), Decimal("0"), 0, 0])
    for m in messages:
        if m.direction != "outbound":
            continue
        day = m.created_at.astimezone(UTC).date()
        key = {"day": day.isoformat(), "country": country_for_phone(m.to_phone), "campaign": m.campaign_id,
               "category": m.template_category.lower() or "service"}[group_by]
        g = groups[key]
        if m.cost is not None and m.cost > 0:
            g[0] += m.cost
            g[2] += 1
            if m.status == "failed":
                g[1] += m.cost
        elif m.cost == 0 and m.status not in ("failed", "canceled"):
            g[3] += 1
    return sorted(({"group": k, "charged": f"{g[0]:.4f}", "refunded": f"{g[1]:.4f}", "messages": g[2],
                    "free_messages": g[3]} for k, g in groups.items()), key=lambda r: r["group"])


@pytest.fixture
def contacts(workspace):
    return [Contact.objects.create(workspace=workspace, phone=p) for p in PHONES]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(message_st, max_size=30))
def test_reports_equal_a_brute_force_count_over_messages(workspace, contacts, specs):
    Message.objects.filter(workspace=workspace).delete()
    rows = []
    for s in specs:
        c = contacts[s["contact"]]
        inbound = s["inbound"]
        rows.append(Message(workspace=workspace, contact=c, direction="inbound" if inbound else "outbound",
                            type="text" if inbound or not s["category"] else "template",
                            status="received" if inbound else s["status"], to_phone="" if inbound else c.phone,
                            template_category="" if inbound else s["category"],
                            campaign_id="" if inbound else s["campaign"],
                            cost=None if inbound or s["cost"] is None else Decimal(s["cost"])))
    Message.objects.bulk_create(rows)
    for row, s in zip(rows, specs, strict=True):  # auto_now_add ignored the time: set it
        Message.objects.filter(pk=row.pk).update(created_at=BASE + timedelta(minutes=s["minutes"]))
    services.rollups_rebuild(workspace=workspace)
    messages = list(Message.objects.filter(workspace=workspace).select_related("contact"))
    since, until = BASE.date(), (BASE + timedelta(days=10)).date()
    for group_by in ("day", "week", "month", "category", "country", "campaign"):
        got = selectors.messaging_report(workspace=workspace, since=since, until=until, group_by=group_by)
        assert got == _brute_messaging(messages, group_by), group_by
    # A range that cuts weeks and months in the middle: only its own days count.
    cut_since, cut_until = (BASE + timedelta(days=3)).date(), (BASE + timedelta(days=6)).date()
    inside = [m for m in messages if cut_since <= m.created_at.astimezone(UTC).date() <= cut_until]
    for group_by in ("day", "week", "month", "country"):
        got = selectors.messaging_report(workspace=workspace, since=cut_since, until=cut_until, group_by=group_by)
        assert got == _brute_messaging(inside, group_by), group_by
    total = selectors.unique_contacts(workspace_id=workspace.pk, since=cut_since, until=cut_until, group_by=None)
    assert total.get("", 0) == len({m.contact_id for m in inside})
    for group_by in ("day", "week", "month"):  # a time grouping's scan also yields the range's total
        by_period = selectors.unique_contacts(workspace_id=workspace.pk, since=cut_since, until=cut_until,
                                              group_by=group_by)
        assert by_period.get("", 0) == total.get("", 0), group_by
    for group_by in ("day", "category", "country", "campaign"):
        got = selectors.billing_report(workspace=workspace, since=since, until=until, group_by=group_by)
        assert got == _brute_billing(messages, group_by), group_by


def _snapshot(workspace):
    rollups = sorted(MessageRollup.objects.filter(workspace=workspace).values_list(
        "hour", "direction", "status", "phone_number_id", "template_id", "campaign_id", "category", "country",
        "messages", "charged", "charged_messages", "refunded", "free_messages"))
    daily = sorted(MessageDayRollup.objects.filter(workspace=workspace).values_list(
        "day", "direction", "status", "phone_number_id", "template_id", "campaign_id", "category", "country",
        "messages", "charged", "charged_messages", "refunded", "free_messages"))
    days = sorted(ContactMonth.objects.filter(workspace=workspace).values_list(
        "month", "contact_id", "direction", "phone_number_id", "template_id", "campaign_id", "category", "country",
        "days"))
    return rollups, daily, days


def test_the_event_log_keeps_the_rollups_as_a_rebuild_would_and_rebuild_is_idempotent(workspace, api_client_for):
    number = connect_number(workspace)
    template(workspace, number.waba, name="promo", category="MARKETING")
    Contact.objects.create(workspace=workspace, phone="+16505551234", last_inbound_at=datetime.now(UTC), opted_in=True)
    tenant = Tenant(workspace=workspace, scopes=frozenset({"messages:send"}))
    send = {"to": "+16505551234", "type": "template", "template": {"name": "promo", "language": "en",
                                                                    "variables": ["A", "1"]}}
    first = sending.message_send(tenant=tenant, data=send)
    second = sending.message_send(tenant=tenant, data={"to": "+16505551234", "type": "text", "text": {"body": "hi"}})
    assert services.rollups_advance() > 0
    Message.objects.filter(pk=first.pk).update(status="sent", provider_message_id="wamid.R1")
    Message.objects.filter(pk=second.pk).update(status="sent", provider_message_id="wamid.R2")
    pricing = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
    deliver(status_payload([status("wamid.R1", "read", 1750263730, pricing=pricing),
                            status("wamid.R2", "failed", 1750263731, errors=[{"code": 131026, "title": "x"}])]))
    services.rollups_advance()
    incremental = _snapshot(workspace)
    today = datetime.now(UTC).date()
    report = selectors.messaging_report(workspace=workspace, since=today, until=today, group_by="day")
    assert [(r["sent"], r["delivered"], r["read"], r["failed"], r["unique_contacts"]) for r in report] == [(1, 1, 1, 1, 1)]
    money = selectors.billing_report(workspace=workspace, since=today, until=today, group_by="category")
    assert [(r["group"], r["charged"], r["messages"]) for r in money] == [("marketing", "0.0275", 1),
                                                                         ("service", "0.0000", 0)]
    call_command("reports", "rebuild")
    assert _snapshot(workspace) == incremental
    call_command("reports", "rebuild")
    assert _snapshot(workspace) == incremental
    assert services.rollups_advance() == 0  # the cursor is at the counter: nothing to take in


def test_the_report_endpoints_answer_json_and_csv(workspace, contacts, live_api, api_client_for):
    Message.objects.create(workspace=workspace, contact=contacts[0], direction="outbound", type="template",
                           status="delivered", to_phone=PHONES[0], template_category="UTILITY", cost=Decimal("0.0040"))
    services.rollups_rebuild(workspace=workspace)
    today = datetime.now(UTC).date().isoformat()
    r = live_api.get("/api/v1/reports/messaging", {"from": today, "to": today, "group_by": "country"})
    assert r.status_code == 200
    assert r.json()["data"] == [{"group": "US", "sent": 1, "delivered": 1, "read": 0, "failed": 0,
                                 "delivery_rate": 1.0, "read_rate": 0.0, "inbound": 0, "unique_contacts": 1}]
    r = live_api.get("/api/v1/reports/billing", {"from": today, "to": today, "group_by": "category"},
                     HTTP_ACCEPT="text/csv")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    assert r.content.decode() == "group,charged,refunded,messages,free_messages\nutility,0.0040,0.0000,1,0\n"
    r = live_api.get("/api/v1/analytics/usage", {"period": "7d"})
    assert r.json()["totals"] == {"sent": 1, "delivered": 1, "read": 0, "failed": 0, "inbound": 0,
                                  "unique_contacts": 1, "spent": "0.0040"}
    assert len(r.json()["daily"]) == 1
    assert live_api.get("/api/v1/reports/messaging", {"group_by": "hour"}).json()["error"]["details"]["field"] == \
        "group_by"
    assert live_api.get("/api/v1/analytics/usage", {"period": "2d"}).status_code == 400
    narrow = api_client_for(workspace, scopes=["messages:send"])
    assert narrow.get("/api/v1/reports/messaging").status_code == 403
    other = api_client_for(workspace, sandbox=True)
    assert other.get("/api/v1/reports/messaging", {"from": today, "to": today}).json()["data"] == []


def test_a_csv_report_with_no_rows_is_still_a_csv_document_with_its_header(workspace, contacts, live_api):
    """The fuzzer found usage?format=csv over a quiet day answering an empty body with no Content-Type."""
    for path, params, header in (
            ("/api/v1/analytics/usage", {"period": "1d"},
             "sent,delivered,read,failed,inbound,unique_contacts,date,spent\n"),
            ("/api/v1/reports/messaging", {"group_by": "day"},
             "group,sent,delivered,read,failed,delivery_rate,read_rate,inbound,unique_contacts\n"),
            ("/api/v1/reports/billing", {"group_by": "day"}, "group,charged,refunded,messages,free_messages\n")):
        r = live_api.get(path, params, HTTP_ACCEPT="text/csv")
        assert r.status_code == 200 and r["Content-Type"].startswith("text/csv"), path
        assert r.content.decode() == header, path
    # The header is the rows' own keys, in their order, once there are rows.
    Message.objects.create(workspace=workspace, contact=contacts[0], direction="outbound", type="text",
                           status="sent", to_phone=PHONES[0])
    services.rollups_rebuild(workspace=workspace)
    daily = live_api.get("/api/v1/analytics/usage", {"period": "1d"}).json()["daily"]
    lines = live_api.get("/api/v1/analytics/usage", {"period": "1d"}, HTTP_ACCEPT="text/csv").content.decode()
    assert lines.splitlines()[0].split(",") == list(daily[0])
    assert len(lines.splitlines()) == 2


def test_the_reports_page_is_for_admins_and_owners(workspace, client):
    from apps.core.models import User
    from apps.core.services import membership_set

    owner = User.objects.create_user(username="own", password="pw-reports-1")
    agent = User.objects.create_user(username="agt", password="pw-reports-2")
    membership_set(workspace=workspace, user=owner, role="owner")
    membership_set(workspace=workspace, user=agent, role="agent")
    client.force_login(owner)
    r = client.get("/reports/")
    assert r.status_code == 200
    assert b"vendor/chartjs/chart.umd.min.js" in r.content and b'id="c-volume"' in r.content
    client.force_login(agent)
    assert client.get("/reports/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_rebuild_outside_a_transaction_compacts_the_tables_and_keeps_the_numbers(workspace, contacts):
    """`manage.py reports rebuild` runs in autocommit: on PostgreSQL it ends with VACUUM FULL (which refuses to
    run inside a transaction block, so this fails if the guard is wrong); the numbers stay those of a rebuild
    inside one."""
    Message.objects.bulk_create([Message(workspace=workspace, contact=c, direction="outbound", type="text",
                                         status="delivered", to_phone=c.phone) for c in contacts])
    with transaction.atomic():
        services.rollups_rebuild(workspace=workspace)
        inside = _snapshot(workspace)
    call_command("reports", "rebuild")
    assert _snapshot(workspace) == inside
    assert inside[2]  # contacts were counted
