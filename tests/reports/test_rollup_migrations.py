"""Upgrading the reports' tables carries what was already rolled up, so an upgrade needs no `reports
rebuild`: 0002 turns ContactDay rows into ContactMonth rows (one per contact, month and dimensions, a bit per
day), 0003 sums the hourly rollups into MessageDayRollup."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("reports", "0001_rollups_and_contact_days")]


def test_an_upgrade_carries_the_counted_days_and_sums_the_hours(workspace):
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("reports")
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        ContactDay, MessageRollup = old.get_model("reports", "ContactDay"), old.get_model("reports", "MessageRollup")
        dims = {"workspace_id": workspace.pk, "direction": "outbound", "campaign_id": "cmp_1", "country": "US"}
        for day in (date(2026, 1, 1), date(2026, 1, 31), date(2026, 2, 3)):
            ContactDay.objects.create(day=day, contact_id="ct_a", **dims)
        ContactDay.objects.create(day=date(2026, 1, 5), contact_id="ct_b", **{**dims, "country": "BR"})
        for hour, n in ((0, 2), (23, 3)):  # two hours of 1 January, one of the 2nd
            MessageRollup.objects.create(hour=datetime(2026, 1, 1, hour, tzinfo=UTC), status="sent", messages=n,
                                         charged=Decimal("0.0250") * n, charged_messages=n, **dims)
        MessageRollup.objects.create(hour=datetime(2026, 1, 2, 0, tzinfo=UTC), status="sent", messages=7, **dims)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)
    new = executor.loader.project_state(latest).apps
    ContactMonth, MessageDayRollup = new.get_model("reports", "ContactMonth"), new.get_model("reports", "MessageDayRollup")
    assert sorted(ContactMonth.objects.values_list("contact_id", "month", "country", "days")) == [
        ("ct_a", date(2026, 1, 1), "US", 1 | 1 << 30),
        ("ct_a", date(2026, 2, 1), "US", 1 << 2),
        ("ct_b", date(2026, 1, 1), "BR", 1 << 4),
    ]
    assert sorted(MessageDayRollup.objects.values_list("day", "messages", "charged", "charged_messages")) == [
        (date(2026, 1, 1), 5, Decimal("0.1250"), 5), (date(2026, 1, 2), 7, Decimal("0"), 0)]
