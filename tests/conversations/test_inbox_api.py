"""The inbox API: list (filters, search, keyset pagination), detail and PATCH with events, messages,
notes, read marks, the event resume endpoint, canned responses, replies through the send road,
session auth with CSRF and scopes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.conversations.models import CannedResponse, Conversation, ConversationNote, Message
from apps.core.models import Event
from tests.conversations.inbox_support import (
    add_message,
    connect_number,
    make_agent,
    make_conversation,
    session_client,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(workspace):
    return make_agent(workspace)


@pytest.fixture
def client(agent, workspace):
    return session_client(agent, workspace)


def _ids(response):
    return [c["id"] for c in response.json()["data"]]


def test_list_is_newest_activity_first_with_fields(client, workspace):
    now = timezone.now()
    old = make_conversation(workspace, phone="+16505550001", at=now - timedelta(hours=2))
    new = make_conversation(workspace, phone="+16505550002", at=now - timedelta(minutes=1))
    closed = make_conversation(workspace, phone="+16505550003", at=now, last_inbound_ago=timedelta(hours=30))
    response = client.get("/api/v1/conversations")
    assert response.status_code == 200
    assert _ids(response) == [closed.pk, new.pk, old.pk]
    first = response.json()["data"][0]
    assert first["contact"]["phone"] == "+16505550003"
    assert first["window_expires_at"] is None  # the window closed 6 hours ago
    second = response.json()["data"][1]
    assert second["window_expires_at"] is not None
    assert {"state", "channel_kind", "assigned_user_id", "last_message_at", "last_inbound_at", "unread_count"} <= set(first)


def test_list_filters(client, workspace, agent):
    a = make_conversation(workspace, phone="+16505550001", state="open", assigned=agent)
    b = make_conversation(workspace, phone="+16505550002", state="pending")
    c = make_conversation(workspace, phone="+16505550003", state="resolved")
    Conversation.objects.filter(pk=c.pk).update(channel_kind="sms")
    assert _ids(client.get("/api/v1/conversations?state=pending")) == [b.pk]
    assert set(_ids(client.get("/api/v1/conversations?state=open,pending"))) == {a.pk, b.pk}
    assert _ids(client.get("/api/v1/conversations?channel_kind=sms")) == [c.pk]
    assert set(_ids(client.get("/api/v1/conversations?assigned_user_id=none"))) == {b.pk, c.pk}
    assert _ids(client.get(f"/api/v1/conversations?assigned_user_id={agent.pk}")) == [a.pk]
    assert _ids(client.get("/api/v1/conversations?mine=true")) == [a.pk]
    bad = client.get("/api/v1/conversations?state=closed")
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "state"


def test_search_by_name_phone_and_text(client, workspace):
    a = make_conversation(workspace, phone="+16505550001", name="Ada Lovelace")
    b = make_conversation(workspace, phone="+442071234567", name="Bob")
    add_message(b, body="Where is my parcel?")
    assert _ids(client.get("/api/v1/conversations?q=lovelace")) == [a.pk]
    assert _ids(client.get("/api/v1/conversations?q=2071234")) == [b.pk]
    assert _ids(client.get("/api/v1/conversations?q=PARCEL")) == [b.pk]
    assert _ids(client.get("/api/v1/conversations?q=nothing-like-this")) == []


def test_keyset_pagination_has_no_jumps_when_a_conversation_moves_to_the_top(client, workspace):
    now = timezone.now()
    convs = [make_conversation(workspace, phone=f"+1650555{i:04d}", at=now - timedelta(minutes=i)) for i in range(7)]
    page1 = client.get("/api/v1/conversations?limit=3").json()
    assert [c["id"] for c in page1["data"]] == [c.pk for c in convs[:3]]
    # While the agent reads page 1, the oldest conversation gets a new message and jumps to the top.
    Conversation.objects.filter(pk=convs[6].pk).update(last_message_at=now + timedelta(seconds=5))
    page2 = client.get(f"/api/v1/conversations?limit=3&cursor={page1['next_cursor']}").json()
    assert [c["id"] for c in page2["data"]] == [c.pk for c in convs[3:6]]
    assert page2["next_cursor"] is None  # the moved one is on top now, not repeated at the bottom


def test_keyset_pagination_breaks_ties_on_id(client, workspace):
    at = timezone.now()
    convs = [make_conversation(workspace, phone=f"+1650555{i:04d}", at=at) for i in range(5)]
    seen = []
    cursor = ""
    while True:
        page = client.get(f"/api/v1/conversations?limit=2{'&cursor=' + cursor if cursor else ''}").json()
        seen += [c["id"] for c in page["data"]]
        if not page["next_cursor"]:
            break
        cursor = page["next_cursor"]
    assert seen == sorted((c.pk for c in convs), reverse=True)


def test_patch_assign_and_state_append_events_in_the_same_write(client, workspace, agent):
    conv = make_conversation(workspace)
    before = Event.objects.filter(workspace=workspace).count()
    response = client.patch(f"/api/v1/conversations/{conv.pk}", {"assigned_user_id": agent.pk, "state": "pending"},
                            content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["assigned_user_id"] == agent.pk
    assert response.json()["state"] == "pending"
    events = list(Event.objects.filter(workspace=workspace).order_by("sequence")[before:])
    assert [e.type for e in events] == ["conversation.assigned", "conversation.status_changed"]
    assert events[0].data == {"conversation_id": conv.pk, "assigned_user_id": agent.pk,
                              "previous_assigned_user_id": None, "by_user_id": agent.pk}
    assert events[1].data["state"] == "pending" and events[1].data["previous_state"] == "open"
    # Unassign.
    response = client.patch(f"/api/v1/conversations/{conv.pk}", {"assigned_user_id": None},
                            content_type="application/json")
    assert response.json()["assigned_user_id"] is None
    assert Event.objects.filter(workspace=workspace, type="conversation.assigned").count() == 2
    # The same state again changes nothing and appends nothing.
    client.patch(f"/api/v1/conversations/{conv.pk}", {"state": "pending"}, content_type="application/json")
    assert Event.objects.filter(workspace=workspace, type="conversation.status_changed").count() == 1


def test_reopening_a_resolved_conversation_while_another_is_open_is_a_conflict(client, workspace):
    old = make_conversation(workspace, state="resolved")
    current = Conversation.objects.create(workspace=workspace, contact=old.contact, phone_number=old.phone_number)
    before = Event.objects.filter(workspace=workspace).count()
    response = client.patch(f"/api/v1/conversations/{old.pk}", {"state": "open"}, content_type="application/json")
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "CONFLICT"
    assert response.json()["error"]["details"] == {"field": "state", "conversation_id": current.pk}
    assert Conversation.objects.get(pk=old.pk).state == "resolved"
    assert Event.objects.filter(workspace=workspace).count() == before
    # Once the other is resolved, the old one reopens.
    Conversation.objects.filter(pk=current.pk).update(state="resolved")
    response = client.patch(f"/api/v1/conversations/{old.pk}", {"state": "open"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["state"] == "open"


def test_patch_snooze_needs_a_future_time_and_unknown_agent_is_refused(client, workspace, other_workspace):
    conv = make_conversation(workspace)
    stranger = make_agent(other_workspace, username="mallory")
    before = Event.objects.count()
    r = client.patch(f"/api/v1/conversations/{conv.pk}", {"assigned_user_id": stranger.pk},
                     content_type="application/json")
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "assigned_user_id"
    r = client.patch(f"/api/v1/conversations/{conv.pk}", {"state": "snoozed"}, content_type="application/json")
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "snooze_until"
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    r = client.patch(f"/api/v1/conversations/{conv.pk}", {"snooze_until": past}, content_type="application/json")
    assert r.status_code == 400
    assert Event.objects.count() == before
    conv.refresh_from_db()
    assert conv.state == "open" and conv.assigned_user_id is None
    until = timezone.now() + timedelta(hours=2)
    r = client.patch(f"/api/v1/conversations/{conv.pk}", {"snooze_until": until.isoformat()},
                     content_type="application/json")
    assert r.status_code == 200 and r.json()["state"] == "snoozed" and r.json()["snooze_until"]
    r = client.patch(f"/api/v1/conversations/{conv.pk}", {"state": "open"}, content_type="application/json")
    assert r.json()["snooze_until"] is None


def test_snoozed_conversations_wake_up(workspace):
    from apps.conversations.services.inbox import conversations_wake_snoozed

    conv = make_conversation(workspace, state="snoozed")
    Conversation.objects.filter(pk=conv.pk).update(snooze_until=timezone.now() - timedelta(seconds=1))
    later = make_conversation(workspace, phone="+16505550009", state="snoozed")
    Conversation.objects.filter(pk=later.pk).update(snooze_until=timezone.now() + timedelta(hours=1))
    assert conversations_wake_snoozed() == 1
    conv.refresh_from_db()
    later.refresh_from_db()
    assert conv.state == "open" and conv.snooze_until is None and later.state == "snoozed"
    assert Event.objects.get(workspace=workspace, type="conversation.status_changed").data["reason"] == "snooze_elapsed"


def test_foreign_conversation_is_404(client, other_workspace):
    foreign = make_conversation(other_workspace)
    for method, path in (("get", ""), ("get", "/messages"), ("get", "/notes"), ("post", "/read")):
        response = getattr(client, method)(f"/api/v1/conversations/{foreign.pk}{path}")
        assert response.status_code == 404, path
    r = client.patch(f"/api/v1/conversations/{foreign.pk}", {"state": "resolved"}, content_type="application/json")
    assert r.status_code == 404
    foreign.refresh_from_db()
    assert foreign.state == "open"


def test_sandbox_session_sees_only_sandbox_conversations(agent, workspace):
    live = make_conversation(workspace, phone="+16505550001")
    sandbox = make_conversation(workspace.sandbox, phone="+16505550002")
    assert _ids(session_client(agent, workspace).get("/api/v1/conversations")) == [live.pk]
    assert _ids(session_client(agent, workspace, sandbox=True).get("/api/v1/conversations")) == [sandbox.pk]


def test_messages_newest_first_with_before_id_and_limits(client, workspace, agent):
    conv = make_conversation(workspace)
    msgs = [add_message(conv, body=f"m{i}") for i in range(5)]
    reply = add_message(conv, direction="outbound", body="ok", sent_by="user", sent_by_user=agent, status="read")
    auto = add_message(conv, direction="outbound", body="auto", sent_by="auto_reply", status="delivered")
    data = client.get(f"/api/v1/conversations/{conv.pk}/messages?limit=3").json()
    assert [m["id"] for m in data["data"]] == [auto.pk, reply.pk, msgs[4].pk]
    assert data["has_more"] is True
    first = data["data"][1]
    assert first["sent_by"] == agent.pk and first["direction"] == "outbound" and first["status"] == "read"
    assert data["data"][0]["sent_by"] == "auto_reply"
    assert {"id", "direction", "type", "body", "media", "status", "created_at", "sent_by"} <= set(first)
    older = client.get(f"/api/v1/conversations/{conv.pk}/messages?before_id={msgs[4].pk}").json()
    assert [m["id"] for m in older["data"]] == [m.pk for m in reversed(msgs[:4])]
    assert older["has_more"] is False
    assert older["data"][0]["sent_by"] == "customer"
    assert client.get(f"/api/v1/conversations/{conv.pk}/messages?limit=201").status_code == 400
    assert client.get(f"/api/v1/conversations/{conv.pk}/messages?limit=200").status_code == 200


def test_notes_are_private_and_append_an_event_without_the_body(client, workspace, agent):
    conv = make_conversation(workspace)
    r = client.post(f"/api/v1/conversations/{conv.pk}/notes", {"body": "VIP, refund approved"},
                    content_type="application/json")
    assert r.status_code == 201
    note = ConversationNote.objects.get()
    assert note.author == agent and note.body == "VIP, refund approved"
    event = Event.objects.get(workspace=workspace, type="conversation.note_added")
    assert event.data == {"conversation_id": conv.pk, "note_id": note.pk, "author_user_id": agent.pk}
    assert Message.objects.count() == 0  # never sent to the customer
    listed = client.get(f"/api/v1/conversations/{conv.pk}/notes").json()["data"]
    assert [n["body"] for n in listed] == ["VIP, refund approved"]
    empty = client.post(f"/api/v1/conversations/{conv.pk}/notes", {"body": ""}, content_type="application/json")
    assert empty.status_code == 400 and ConversationNote.objects.count() == 1


def test_mark_read_zeroes_unread(client, workspace):
    conv = make_conversation(workspace)
    Conversation.objects.filter(pk=conv.pk).update(unread_count=4)
    r = client.post(f"/api/v1/conversations/{conv.pk}/read")
    assert r.status_code == 200 and r.json()["unread_count"] == 0
    conv.refresh_from_db()
    assert conv.unread_count == 0


def test_detail_expands_the_contact_sidebar(client, workspace):
    from apps.contacts.models import ConsentRecord, ContactTag

    conv = make_conversation(workspace)
    contact = conv.contact
    contact.custom_fields = {"plan": "gold"}
    contact.save()
    ContactTag.objects.create(workspace=workspace, contact=contact, name="vip")
    ConsentRecord.objects.create(workspace=workspace, contact=contact, status="opt_out", source="keyword")
    Conversation.objects.create(workspace=workspace, contact=contact, state="resolved")
    data = client.get(f"/api/v1/conversations/{conv.pk}?expand=contact").json()
    details = data["contact_details"]
    assert details["tags"] == ["vip"] and details["custom_fields"] == {"plan": "gold"}
    assert details["consent"]["history"][0]["status"] == "opt_out"
    assert len(details["previous_conversations"]) == 1


def test_inbox_events_after_and_reset(client, workspace, settings):
    conv = make_conversation(workspace)
    client.patch(f"/api/v1/conversations/{conv.pk}", {"state": "pending"}, content_type="application/json")
    client.patch(f"/api/v1/conversations/{conv.pk}", {"state": "open"}, content_type="application/json")
    data = client.get("/api/v1/inbox/events?after=0").json()
    assert [e["sequence"] for e in data["data"]] == [1, 2] and data["reset"] is False and data["sequence"] == 2
    assert data["data"][0]["type"] == "conversation.status_changed"
    assert client.get("/api/v1/inbox/events?after=1").json()["data"][0]["sequence"] == 2
    assert client.get("/api/v1/inbox/events?after=99").json()["reset"] is True
    settings.INBOX_RESUME_MAX_EVENTS = 1
    assert client.get("/api/v1/inbox/events?after=0").json() == {"data": [], "reset": True, "sequence": 2}
    settings.INBOX_RESUME_MAX_EVENTS = 10
    Event.objects.filter(workspace=workspace, sequence=1).delete()  # pruned log
    assert client.get("/api/v1/inbox/events?after=0").json()["reset"] is True


def test_canned_responses_crud(client, workspace):
    r = client.post("/api/v1/canned-responses", {"shortcut": "/Thanks", "body": "Thank you!", "title": "Thanks"},
                    content_type="application/json")
    assert r.status_code == 201 and r.json()["shortcut"] == "thanks"
    pk = r.json()["id"]
    dup = client.post("/api/v1/canned-responses", {"shortcut": "thanks", "body": "x"}, content_type="application/json")
    assert dup.status_code == 409 and CannedResponse.objects.count() == 1
    r = client.patch(f"/api/v1/canned-responses/{pk}", {"body": "Thanks a lot!"}, content_type="application/json")
    assert r.status_code == 200 and r.json()["body"] == "Thanks a lot!"
    assert [c["shortcut"] for c in client.get("/api/v1/canned-responses").json()["data"]] == ["thanks"]
    assert client.delete(f"/api/v1/canned-responses/{pk}").status_code == 204
    assert CannedResponse.objects.count() == 0


def test_scopes_and_keys(workspace, api_client_for):
    conv = make_conversation(workspace)
    reader = api_client_for(workspace, scopes=["inbox:read"])
    assert reader.get("/api/v1/conversations").status_code == 200
    r = reader.patch(f"/api/v1/conversations/{conv.pk}", {"state": "resolved"}, format="json")
    assert r.status_code == 403 and r.json()["error"]["code"] == "INSUFFICIENT_SCOPE"
    conv.refresh_from_db()
    assert conv.state == "open"
    nobody = api_client_for(workspace, scopes=["messages:read"])
    assert nobody.get("/api/v1/conversations").status_code == 403
    mine = api_client_for(workspace).get("/api/v1/conversations?mine=true")
    assert mine.status_code == 400  # an API key is nobody's "me"


def test_session_writes_need_csrf(agent, workspace):
    conv = make_conversation(workspace)
    client = session_client(agent, workspace, csrf=True)
    assert client.get("/api/v1/conversations").status_code == 200
    r = client.patch(f"/api/v1/conversations/{conv.pk}", {"state": "resolved"}, content_type="application/json")
    assert r.status_code == 403
    conv.refresh_from_db()
    assert conv.state == "open"
    client.get("/inbox/")
    token = client.cookies["csrftoken"].value
    r = client.patch(f"/api/v1/conversations/{conv.pk}", {"state": "resolved"}, content_type="application/json",
                     HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 200


def test_anonymous_and_non_members_are_refused(client, workspace, other_workspace):
    from django.test import Client

    assert Client().get("/api/v1/conversations").status_code == 401
    outsider = make_agent(other_workspace, username="bob")
    make_conversation(workspace)
    assert _ids(session_client(outsider).get("/api/v1/conversations")) == []


# --- replies through the send road ------------------------------------------------------------------


@pytest.fixture
def number(workspace):
    return connect_number(workspace)


def test_reply_inside_the_window_is_queued_once_per_idempotency_key(client, workspace, number, agent):
    conv = make_conversation(workspace, number=number)
    body = {"type": "text", "text": {"body": "On its way!"}}
    r1 = client.post(f"/api/v1/conversations/{conv.pk}/messages", body, content_type="application/json",
                     HTTP_IDEMPOTENCY_KEY="compose-1")
    assert r1.status_code == 202, r1.content
    r2 = client.post(f"/api/v1/conversations/{conv.pk}/messages", body, content_type="application/json",
                     HTTP_IDEMPOTENCY_KEY="compose-1")
    assert r2.status_code == 202 and r2["Idempotent-Replayed"] == "true"
    assert r1.json()["id"] == r2.json()["id"]
    message = Message.objects.get(direction="outbound")
    assert message.sent_by == "user" and message.sent_by_user == agent and message.conversation == conv
    assert message.status == "queued" and message.body == "On its way!"
    assert r1.json()["sent_by"] == agent.pk


def test_reply_outside_the_window_is_refused_and_nothing_is_written(client, workspace, number):
    conv = make_conversation(workspace, number=number, last_inbound_ago=timedelta(hours=25))
    r = client.post(f"/api/v1/conversations/{conv.pk}/messages", {"type": "text", "text": {"body": "hello?"}},
                    content_type="application/json")
    assert r.status_code == 422 and r.json()["error"]["code"] == "OUTSIDE_24H_WINDOW"
    assert Message.objects.count() == 0


def test_inbox_page_requires_login_and_membership(workspace, agent, other_workspace):
    from django.test import Client

    r = Client().get("/inbox/")
    assert r.status_code == 302 and r["Location"].startswith("/login/")
    page = session_client(agent, workspace).get("/inbox/")
    assert page.status_code == 200 and b"inbox-bootstrap" in page.content
    assert b'href="/admin/"' not in page.content  # agents get no admin link
    # The admin spans every workspace: a staff-flagged workspace admin gets no link, a superuser does.
    boss = make_agent(workspace, username="boss", role="admin", staff=True)
    assert b'href="/admin/"' not in session_client(boss, workspace).get("/inbox/").content
    boss.is_superuser = True
    boss.save(update_fields=["is_superuser"])
    assert b'href="/admin/"' in session_client(boss, workspace).get("/inbox/").content
    from apps.core.models import User

    loner = User.objects.create_user(username="loner", password="x")
    assert session_client(loner).get("/inbox/").status_code == 403


def test_login_logout_and_sandbox_toggle(workspace, agent):
    from django.test import Client

    from tests.conversations.inbox_support import PASSWORD

    client = Client(enforce_csrf_checks=True)
    login_page = client.get("/login/")
    token = login_page.cookies["csrftoken"].value
    r = client.post("/login/", {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert r.status_code == 302 and r["Location"] == "/inbox/"
    token = client.cookies["csrftoken"].value
    r = client.post("/workspace/sandbox", {"sandbox": "1", "csrfmiddlewaretoken": token})
    assert r.status_code == 302
    page = client.get("/inbox/")
    assert b"Sandbox" in page.content and page.context["sandbox"] is True
    token = client.cookies["csrftoken"].value
    assert client.post("/logout/", {"csrfmiddlewaretoken": token}).status_code == 302
    assert client.get("/inbox/").status_code == 302
