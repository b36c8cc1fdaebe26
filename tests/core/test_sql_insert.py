"""insert_new writes what bulk_create would: every field, defaults and auto_now applied."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.core.models import AuditLog, Event, Membership
from apps.core.sql import insert_new
from tests.conftest import TEST_EVENT_TYPE

pytestmark = pytest.mark.django_db


def test_rows_match_what_the_orm_writes(workspace):
    rows = [Event(workspace=workspace, sequence=900 + i, type=TEST_EVENT_TYPE, data={"i": i, "nested": [1, {}]})
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


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="server-side binding is psycopg's")
def test_execute_server_bound_is_logged_and_joins_the_transaction():
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    from apps.core.sql import execute_server_bound

    with CaptureQueriesContext(connection) as queries:
        assert execute_server_bound("SELECT %s::int + %s::int, %s::text", [1, 2, "it's"]) == [(3, "it's")]
    assert len(queries.captured_queries) == 1
    connection.cursor().execute("CREATE TEMP TABLE sb_probe (n int)")
    try:
        with transaction.atomic():
            sid = transaction.savepoint()
            execute_server_bound("INSERT INTO sb_probe VALUES (%s) RETURNING n", [7])
            transaction.savepoint_rollback(sid)
        assert execute_server_bound("SELECT count(*) FROM sb_probe", []) == [(0,)]
    finally:
        connection.cursor().execute("DROP TABLE sb_probe")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's statement cache")
def test_psycopg_caches_the_parse_of_large_statements():
    from psycopg import _queries

    assert _queries.MAX_CACHED_STATEMENT_PARAMS >= 256
    assert _queries.MAX_CACHED_STATEMENT_LENGTH >= 16384


def test_skip_conflicts_leaves_a_taken_unique_key_to_its_row_as_bulk_create_ignore_conflicts_does(workspace):
    from apps.contacts.models import Contact
    from apps.core.sql import insert_run, insert_statement

    existing = Contact.objects.create(workspace=workspace, phone="+16505550001", name="First")
    rows = [Contact(workspace=workspace, phone="+16505550001", name="Second"),
            Contact(workspace=workspace, phone="+16505550002", name="Third")]
    insert_run(rows, insert_statement(rows, skip_conflicts=True))
    assert sorted(Contact.objects.filter(workspace=workspace).values_list("pk", "name")) == sorted(
        [(existing.pk, "First"), (rows[1].pk, "Third")])
