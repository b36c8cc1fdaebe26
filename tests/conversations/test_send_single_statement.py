"""The send API's common case (a known contact's open conversation, on PostgreSQL) writes the message,
the conversation's activity, the audit record and the event in ONE statement, outside any explicit
transaction: one round trip, and the workspace counter's lock is never held while Python runs.

These tests use real commits (transactional_db), as the server does."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, connections
from django.test.utils import CaptureQueriesContext

from apps.conversations.models import Conversation, Message
from apps.conversations.services import dispatch
from apps.core import hooks
from apps.core.models import AuditLog, Event, Workspace
from apps.core.services import api_key_create, workspace_create
from tests.conversations.send_support import TO, contact, live_number

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the single-statement send is PostgreSQL's"),
]
URL = "/api/v1/messages"


@pytest.fixture
def sender():
    from rest_framework.test import APIClient

    ws = workspace_create(name="Acme", slug="acme")
    number = live_number(ws)
    known = contact(ws, inbound_hours_ago=1)
    conversation = Conversation.objects.create(workspace=ws, contact=known, phone_number=number,
                                               state=Conversation.State.OPEN)
    _, secret = api_key_create(workspace=ws, name="k", sandbox=False, scopes=["messages:send", "messages:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return ws, number, conversation, client


def test_one_statement_commits_message_conversation_audit_and_event(sender):
    ws, number, conversation, client = sender
    # A first send records the key's first use (its own write, once per interval).
    assert client.post(URL, {"to": TO, "type": "text", "text": {"body": "warm"}}, format="json").status_code == 202
    heard = []
    hooks.register_event_listener(heard.extend)
    try:
        with CaptureQueriesContext(connection) as queries:
            r = client.post(URL, {"to": TO, "type": "text", "text": {"body": "hello"}}, format="json",
                            HTTP_X_REQUEST_ID="req-single-1")
    finally:
        hooks._event_listeners.remove(heard.extend)
    assert r.status_code == 202, r.content
    mid = r.json()["id"]
    writes = [q["sql"] for q in queries.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert len(writes) == 1 and writes[0].startswith("WITH w0 AS (INSERT INTO")
    assert not any(q["sql"].upper() in ("BEGIN", "COMMIT") for q in queries.captured_queries)

    # Committed, as another connection sees it.
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT status, conversation_id FROM conversations_message WHERE id = %s", [mid])
            assert cursor.fetchone() == ("queued", conversation.pk)
    finally:
        other.close()
    conversation.refresh_from_db()
    assert conversation.last_message_preview == "hello" and conversation.last_message_at is not None
    audit = AuditLog.objects.get(request_id="req-single-1")
    assert (audit.target_type, audit.target_id, audit.status_code) == ("message", mid, 202)
    event = Event.objects.get(workspace=ws, type="message.status_changed", data__message_id=mid)
    assert event.data["message_id"] == mid and event.data["status"] == "queued"
    assert event.sequence == Workspace.objects.get(pk=ws.pk).event_sequence
    # Listeners hear it after the commit, with its envelope and sequence.
    assert [(e.id, e.sequence) for e in heard] == [(event.id, event.sequence)]
    assert heard[0].envelope["data"]["message_id"] == mid


def test_sequences_stay_contiguous_under_concurrent_sends(sender):
    ws, number, conversation, client = sender
    before = Workspace.objects.get(pk=ws.pk).event_sequence
    secrets_ = [api_key_create(workspace=ws, name=f"k{i}", sandbox=False, scopes=["messages:send"])[1]
                for i in range(4)]
    codes: list[int] = []

    def sends(secret: str) -> None:
        from rest_framework.test import APIClient

        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        try:
            for i in range(10):
                codes.append(api.post(URL, {"to": TO, "text": {"body": f"n{i}"}}, format="json").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sends, args=(s,)) for s in secrets_]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert codes == [202] * 40
    sequences = sorted(Event.objects.filter(workspace=ws, type="message.status_changed")
                       .values_list("sequence", flat=True))
    assert sequences == list(range(before + 1, before + 41))
    assert Message.objects.filter(workspace=ws, conversation=conversation).count() == 40


def test_a_failing_write_leaves_nothing_behind(sender):
    from apps.core.services import audit_record_statement, event_append_with_writes

    ws, number, conversation, client = sender
    before = Workspace.objects.get(pk=ws.pk).event_sequence
    # The second write breaks a (deferred) foreign key: the whole statement, event included, is refused.
    with pytest.raises(IntegrityError):
        event_append_with_writes(workspace=ws, type="contact.updated", data={}, writes=[
            ("UPDATE conversations_conversation SET last_message_preview = %s WHERE id = %s", ["x", conversation.pk]),
            audit_record_statement(action="test", workspace=Workspace(pk="ws_missing")),
        ])
    conversation.refresh_from_db()
    assert conversation.last_message_preview != "x"
    assert Workspace.objects.get(pk=ws.pk).event_sequence == before
    assert not Event.objects.filter(workspace=ws, type="contact.updated").exists()


def test_a_missing_workspace_refuses_the_writes_too(sender):
    from apps.core.services import event_append_with_writes

    ws, number, conversation, client = sender
    with pytest.raises(IntegrityError):
        event_append_with_writes(workspace=Workspace(pk="ws_missing"), type="contact.updated", data={}, writes=[
            ("UPDATE conversations_conversation SET last_message_preview = %s WHERE id = %s", ["y", conversation.pk]),
        ])
    conversation.refresh_from_db()
    assert conversation.last_message_preview != "y"


def test_the_on_commit_kick_reaches_redis_from_the_background_thread(sender, settings):
    from apps.core.redis import get_redis

    ws, number, conversation, client = sender
    settings.DISPATCH_KICK_BACKGROUND = True
    key = dispatch._kick_key(number.pk)
    get_redis().delete(key)
    enqueued = []
    original = dispatch._enqueue
    dispatch._enqueue = enqueued.append
    try:
        for i in range(5):
            assert client.post(URL, {"to": TO, "text": {"body": f"k{i}"}}, format="json").status_code == 202
        assert dispatch._background_kicks.wait_sent(10)
    finally:
        dispatch._enqueue = original
    # One drain task for the number, however many sends; the key now says one is pending.
    assert enqueued == [number.pk]
    assert get_redis().get(key) == b"1"
    get_redis().delete(key)
