"""reports 0002 turns ContactDay rows into ContactMonth rows: the days already counted are carried over (one
row per contact, month and dimensions, a bit per day), so an upgrade needs no `reports rebuild`."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE, AFTER = [("reports", "0001_rollups_and_contact_days")], [("reports", "0002_contact_months")]


def test_the_days_already_counted_are_carried_into_months(workspace):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        ContactDay = executor.loader.project_state(BEFORE).apps.get_model("reports", "ContactDay")
        dims = {"workspace_id": workspace.pk, "direction": "outbound", "campaign_id": "cmp_1", "country": "US"}
        for day in (date(2026, 1, 1), date(2026, 1, 31), date(2026, 2, 3)):
            ContactDay.objects.create(day=day, contact_id="ct_a", **dims)
        ContactDay.objects.create(day=date(2026, 1, 5), contact_id="ct_b", **{**dims, "country": "BR"})
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(AFTER)
    ContactMonth = executor.loader.project_state(AFTER).apps.get_model("reports", "ContactMonth")
    assert sorted(ContactMonth.objects.values_list("contact_id", "month", "country", "days")) == [
        ("ct_a", date(2026, 1, 1), "US", 1 | 1 << 30),
        ("ct_a", date(2026, 2, 1), "US", 1 << 2),
        ("ct_b", date(2026, 1, 1), "BR", 1 << 4),
    ]
