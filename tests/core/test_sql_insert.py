"""insert_new writes what bulk_create would: every field, defaults and auto_now applied."""

from __future__ import annotations

import pytest

from apps.core.models import AuditLog, Event, Membership
from apps.core.sql import insert_new

pytestmark = pytest.mark.django_db


def test_rows_match_what_the_orm_writes(workspace):
    rows = [Event(workspace=workspace, sequence=900 + i, type="contact.created", data={"i": i, "nested": [1, {}]})
            for i in range(3)]
    insert_new(rows)
    stored = {e.pk: e for e in Event.objects.filter(pk__in=[r.pk for r in rows])}
    assert len(stored) == 3
    for row in rows:
        assert (stored[row.pk].sequence, stored[row.pk].type, stored[row.pk].data) == (row.sequence, row.type, row.data)
        assert stored[row.pk].created_at is not None and not row._state.adding
    record = AuditLog(workspace=workspace, action="x")
    insert_new([record])
    stored = AuditLog.objects.get(pk=record.pk)
    assert stored.created_at is not None and stored.details == {} and stored.status_code is None


def test_auto_increment_models_and_mixed_models_are_refused(workspace):
    with pytest.raises(TypeError):
        insert_new([Membership(workspace=workspace, role="agent")])
    with pytest.raises(TypeError):
        insert_new([Event(workspace=workspace, sequence=1, type="x", data={}), AuditLog(action="x")])
    insert_new([])  # nothing to do
