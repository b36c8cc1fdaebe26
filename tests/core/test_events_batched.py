"""events_batched(): a batch writer takes the workspace counter's row lock last, so concurrent batches
that lock contacts in any order cannot deadlock on it; sequences stay contiguous and commit-ordered."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from apps.core import hooks
from apps.core.models import Event, Workspace
from apps.core.services import event_append, event_append_many, events_batched, workspace_create
from tests.conftest import TEST_EVENT_TYPE

pytestmark = pytest.mark.django_db(transaction=True)


def _counter_locked_elsewhere(workspace_id: str) -> bool:
    """Ask from another connection whether the workspace row is locked (NOWAIT: never blocks)."""
    result = {}

    def probe():
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                try:
                    cursor.execute("SELECT 1 FROM core_workspace WHERE id = %s FOR UPDATE NOWAIT", [workspace_id])
                    result["locked"] = False
                except Exception:
                    result["locked"] = True
                cursor.execute("ROLLBACK")
        finally:
            other.close()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(10)
    return result["locked"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
def test_the_counter_is_locked_only_when_the_batch_ends():
    ws = workspace_create(name="Acme", slug="acme")
    with transaction.atomic():
        with events_batched():
            event_append(workspace=ws, type=TEST_EVENT_TYPE, data={"n": 1})
            assert not _counter_locked_elsewhere(ws.pk)
        assert _counter_locked_elsewhere(ws.pk)
    assert not _counter_locked_elsewhere(ws.pk)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
def test_without_a_batch_the_counter_is_locked_at_the_append():
    ws = workspace_create(name="Acme", slug="acme")
    with transaction.atomic():
        event_append(workspace=ws, type=TEST_EVENT_TYPE, data={"n": 1})
        assert _counter_locked_elsewhere(ws.pk)


def test_a_batch_numbers_each_workspace_contiguously_and_announces_envelopes_after_commit():
    a = workspace_create(name="Acme", slug="acme")
    b = workspace_create(name="Globex", slug="globex")
    heard: list[hooks.CommittedEvent] = []
    hooks.register_event_listener(heard.extend)
    try:
        before_a = Workspace.objects.get(pk=a.pk).event_sequence
        with transaction.atomic():
            with events_batched():
                first = event_append(workspace=a, type=TEST_EVENT_TYPE, data={"n": 1})
                event_append_many(workspace=b, events=[(TEST_EVENT_TYPE, {"n": 2})])
                with events_batched():  # nested: joins the outer batch
                    event_append(workspace=a, type=TEST_EVENT_TYPE, data={"n": 3})
                assert first.sequence is None and not Event.objects.filter(pk=first.pk).exists()
            assert first.sequence == before_a + 1
            assert heard == []  # nothing is announced before the commit
    finally:
        hooks._event_listeners.remove(heard.extend)
    rows = list(Event.objects.filter(workspace=a).order_by("sequence").values_list("sequence", "data"))
    assert rows[-2:] == [(before_a + 1, {"n": 1}), (before_a + 2, {"n": 3})]
    mine = [e for e in heard if e.workspace_id in (a.pk, b.pk)]
    assert [(e.workspace_id, e.envelope["data"]) for e in mine] == [(a.pk, {"n": 1}), (a.pk, {"n": 3}),
                                                                     (b.pk, {"n": 2})]
    assert all(e.envelope["sequence"] == e.sequence and e.envelope["workspace_id"] == e.workspace_id
               for e in mine)


def test_a_failed_batch_writes_no_event():
    ws = workspace_create(name="Acme", slug="acme")
    count = Event.objects.filter(workspace=ws).count()
    with pytest.raises(RuntimeError), transaction.atomic(), events_batched():
        event_append(workspace=ws, type=TEST_EVENT_TYPE, data={"n": 1})
        raise RuntimeError("boom")
    assert Event.objects.filter(workspace=ws).count() == count
    with transaction.atomic():  # the context is clean again: appends outside a batch write at once
        row = event_append(workspace=ws, type=TEST_EVENT_TYPE, data={"n": 2})
        assert row.sequence is not None


def test_a_sandbox_envelope_names_the_live_workspace():
    live = workspace_create(name="Acme", slug="acme")
    sandbox = Workspace.objects.get(sandbox_of=live)
    heard: list[hooks.CommittedEvent] = []
    hooks.register_event_listener(heard.extend)
    try:
        with transaction.atomic():
            event_append(workspace=sandbox, type=TEST_EVENT_TYPE, data={})
            event_append(workspace=Workspace(pk=sandbox.pk), type=TEST_EVENT_TYPE, data={})
    finally:
        hooks._event_listeners.remove(heard.extend)
    loaded, bare = [e for e in heard if e.workspace_id == sandbox.pk]
    assert loaded.envelope["workspace_id"] == live.pk and loaded.envelope["sandbox"] is True
    assert bare.envelope is None  # a bare Workspace(pk=…) cannot tell: listeners read the row back


def test_events_of_a_rolled_back_savepoint_are_dropped_from_the_batch():
    ws = workspace_create(name="Acme", slug="acme")
    with transaction.atomic(), events_batched():
        event_append(workspace=ws, type=TEST_EVENT_TYPE, data={"n": "kept"})
        try:
            with transaction.atomic():  # a savepoint, like an account handler that hits NotFound
                event_append(workspace=ws, type=TEST_EVENT_TYPE, data={"n": "rolled back"})
                raise LookupError("no such template")
        except LookupError:
            pass
        with transaction.atomic():  # a released savepoint keeps its events
            event_append(workspace=ws, type=TEST_EVENT_TYPE, data={"n": "released"})
    datas = list(Event.objects.filter(workspace=ws, type=TEST_EVENT_TYPE).order_by("sequence")
                 .values_list("data", flat=True))
    assert datas == [{"n": "kept"}, {"n": "released"}]
    sequences = list(Event.objects.filter(workspace=ws).order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))
