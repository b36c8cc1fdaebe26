"""Shared fixtures. Tests run against whatever DATABASE_URL / REDIS_URL say (PostgreSQL and Redis in
CI), else the embedded default (SQLite + in-process Redis)."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from apps.core import services
from apps.core.events import event_type_register
from apps.core.redis import get_redis

pytest_plugins = ["tests.contract_plugin"]

# The event log's own tests append data of their choosing: an internal type only the tests know.
TEST_EVENT_TYPE = "test.probe"
event_type_register(TEST_EVENT_TYPE, public=False, description="Any data: the event log's own tests.",
                    schema={"type": "object"}, example={})


@pytest.fixture(autouse=True, scope="session")
def _flush_retries_a_lost_deadlock():
    """A transactional test's teardown TRUNCATEs every table while a served process (the browser tests'
    server, with its worker and beat) may still be in a short sweep transaction: PostgreSQL can pick the
    TRUNCATE as a deadlock's victim. The flush is repeated then, as any client retries a deadlock."""
    from django.core.management.base import CommandError
    from django.core.management.commands import flush

    original = flush.Command.handle

    def handle(self, **options):
        for attempt in range(5):
            try:
                return original(self, **options)
            except CommandError as exc:
                if attempt == 4 or "deadlock" not in str(exc.__cause__ or ""):
                    raise
                time.sleep(0.2 * (attempt + 1))
        return None

    flush.Command.handle = handle
    yield
    flush.Command.handle = original


@pytest.fixture(autouse=True, scope="session")
def _flush_by_delete_on_postgresql():
    """A transactional test's teardown empties every table. TRUNCATE of ~150 tables makes and syncs new
    files for each (seconds per test); the tables hold a handful of rows, so DELETE is far cheaper. Triggers
    (deferred foreign keys, the append-only ledgers' guards) are off for that one transaction
    (session_replication_role, as a superuser may), so the order of the tables does not matter."""
    from django.db import connection

    if connection.vendor != "postgresql":
        yield
        return
    ops = type(connection.ops)
    original = ops.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if not tables or reset_sequences:
            return original(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return ["SET LOCAL session_replication_role = replica",
                *(f"DELETE FROM {self.quote_name(t)}" for t in tables)]

    ops.sql_flush = sql_flush
    yield
    ops.sql_flush = original


@pytest.fixture(autouse=True, scope="session")
def _clean_redis():
    # REDIS_URL points at the run's own logical database (tests/settings.py).
    get_redis().flushdb()
    yield


@pytest.fixture(autouse=True)
def _events_match_their_schemas(request):
    """After every test that used the database, every event it wrote validates against its type's
    registered JSON Schema: the whole suite checks the payloads of the paths production runs."""
    if not ("_django_db_helper" in request.fixturenames or request.node.get_closest_marker("django_db")):
        yield
        return
    request.getfixturevalue("_django_db_helper")  # set up first, so this check runs before its teardown
    yield
    from django.db import connection

    from apps.core.events import event_data_errors
    from apps.core.models import Event

    if connection.needs_rollback:  # the test broke its own transaction: nothing it wrote is readable
        return
    bad = []
    for event_id, event_type, data in Event.objects.order_by("workspace_id", "sequence").values_list(
            "id", "type", "data").iterator():
        errors = event_data_errors(event_type, data)
        if errors:
            bad.append(f"{event_type} {event_id}: {'; '.join(errors[:3])}\n    data: {data!r}"[:2000])
    if bad:
        pytest.fail(f"{len(bad)} event(s) do not match their schema:\n" + "\n".join(bad[:10]), pytrace=False)


@pytest.fixture
def workspace(db):
    return services.workspace_create(name="Acme", slug="acme")


@pytest.fixture
def other_workspace(db):
    return services.workspace_create(name="Globex", slug="globex")


@pytest.fixture
def make_key():
    def _make(workspace, *, sandbox: bool = False, scopes=None, waba_id: str = ""):
        _, secret = services.api_key_create(workspace=workspace, name="test", sandbox=sandbox, scopes=scopes,
                                            waba_id=waba_id)
        return secret

    return _make


@pytest.fixture
def api_client_for(make_key):
    """api_client_for(workspace, sandbox=False, scopes=None) -> an APIClient carrying a fresh key."""

    def _client(workspace, **kwargs):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key(workspace, **kwargs)}")
        return client

    return _client


@pytest.fixture
def live_api(workspace, api_client_for):
    return api_client_for(workspace)


@pytest.fixture
def sandbox_api(workspace, api_client_for):
    return api_client_for(workspace, sandbox=True)
