"""Labels, teams, assignment (round-robin among online agents, with a cap), bulk actions, saved views, sorts,
the needs-reply view, presence and the typing indicator: each an API operation that appends its event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.conversations.models import AgentPresence, Conversation, Label
from apps.conversations.services import organise
from apps.core.models import Event
from tests.conversations.inbox_support import make_agent, make_conversation, session_client

pytestmark = pytest.mark.django_db


def _events(workspace, type_: str) -> list[dict]:
    return [e.data for e in Event.objects.filter(workspace=workspace, type=type_).order_by("sequence")]


def test_labels_create_add_filter_and_bulk(workspace):
    agent = make_agent(workspace)
    client = session_client(agent, workspace)
    r = client.post("/api/v1/labels", {"name": "VIP", "color": "#B42318"}, content_type="application/json")
    assert r.status_code == 201, r.content
    vip = r.json()
    assert (vip["name"], vip["color"]) == ("VIP", "#b42318")
    assert client.post("/api/v1/labels", {"name": "VIP"}, content_type="application/json").status_code == 409
    bad = client.post("/api/v1/labels", {"name": "x", "color": "red"}, content_type="application/json")
    assert (bad.status_code, bad.json()["error"]["details"]["field"]) == (400, "color")
    assert Label.objects.count() == 1
    a, b, c = (make_conversation(workspace, phone=f"+1650555000{i}", name=n) for i, n in enumerate("ABC"))
    r = client.post(f"/api/v1/conversations/{a.pk}/labels", {"add": [vip["id"]]}, content_type="application/json")
    assert r.json() == {"conversation_id": a.pk, "label_ids": [vip["id"]]}
    listed = client.get(f"/api/v1/conversations?label={vip['id']}").json()["data"]
    assert [x["id"] for x in listed] == [a.pk] and listed[0]["label_ids"] == [vip["id"]]
    r = client.post("/api/v1/conversations/bulk", {"conversation_ids": [a.pk, b.pk, c.pk], "action": "label",
                                                   "label_ids": [vip["id"]]}, content_type="application/json")
    assert r.json() == {"updated": 2}  # a had it already
    assert sorted(x["id"] for x in client.get(f"/api/v1/conversations?label={vip['id']}").json()["data"]) == \
        sorted([a.pk, b.pk, c.pk])
    assert [e["conversation_id"] for e in _events(workspace, "conversation.labels_changed")] == \
        [a.pk, *sorted([b.pk, c.pk])]
    # Another workspace's label (or conversation) is refused and nothing changes.
    other = Label.objects.create(workspace=workspace.sandbox, name="Theirs")
    r = client.post(f"/api/v1/conversations/{a.pk}/labels", {"add": [other.pk]}, content_type="application/json")
    assert (r.status_code, r.json()["error"]["details"]["field"]) == (400, "add")
    assert list(a.labels.values_list("pk", flat=True)) == [vip["id"]]


def test_bulk_assign_and_resolve_are_all_or_nothing(workspace):
    agent = make_agent(workspace)
    client = session_client(agent, workspace)
    a, b = make_conversation(workspace, phone="+16505550001"), make_conversation(workspace, phone="+16505550002")
    r = client.post("/api/v1/conversations/bulk", {"conversation_ids": [a.pk, "cnv_nope"], "action": "resolve"},
                    content_type="application/json")
    assert r.status_code == 404
    assert set(Conversation.objects.values_list("state", flat=True)) == {"open"}
    r = client.post("/api/v1/conversations/bulk", {"conversation_ids": [a.pk, b.pk], "action": "assign",
                                                   "assigned_user_id": agent.pk}, content_type="application/json")
    assert r.json() == {"updated": 2}
    r = client.post("/api/v1/conversations/bulk", {"conversation_ids": [a.pk, b.pk], "action": "resolve"},
                    content_type="application/json")
    assert set(Conversation.objects.values_list("state", "assigned_user_id")) == {("resolved", agent.pk)}
    assert len(_events(workspace, "conversation.status_changed")) == 2


def _online(workspace, *agents):
    for agent in agents:
        organise.presence_set(workspace=workspace, user=agent, status="online")


def test_round_robin_spreads_30_new_conversations_evenly_over_3_online_agents(workspace):
    from apps.conversations.services.receiving import message_inbound_receive
    from apps.providers.meta_cloud.webhooks import InboundMessage
    from tests.conversations.inbox_support import connect_number

    number = connect_number(workspace)
    agents = [make_agent(workspace, username=n) for n in ("ann", "bob", "cid", "dee")]
    team = organise.team_save(workspace=workspace, name="Support", member_ids=[a.pk for a in agents],
                              auto_assign=True, inbound_default=True)
    _online(workspace, *agents[:3])
    organise.presence_set(workspace=workspace, user=agents[3], status="away")  # away: gets none
    for i in range(30):
        with transaction.atomic():
            message_inbound_receive(item=InboundMessage(
                waba_id=number.waba.meta_waba_id, phone_number_id=number.meta_phone_number_id,
                display_phone_number=number.display_phone_number, wamid=f"wamid.rr{i}",
                from_phone=f"+1650555{i:04d}", wa_id=f"1650555{i:04d}", bsuid=None, profile_name=None, username=None,
                timestamp=timezone.now(), type="text", content={"body": "hi"}, context_wamid=None, referral=None))
    counts = {a.username: Conversation.objects.filter(assigned_user=a).count() for a in agents}
    assert counts == {"ann": 10, "bob": 10, "cid": 10, "dee": 0}
    assert Conversation.objects.filter(team=team).count() == 30
    assigned = _events(workspace, "conversation.assigned")
    assert len(assigned) == 30 and {e["reason"] for e in assigned} == {"auto_assignment"}


def test_the_per_agent_cap_and_offline_agents(workspace):
    from apps.conversations.services.organise import conversation_route_inbound

    ann = make_agent(workspace, username="ann")
    team = organise.team_save(workspace=workspace, name="Sales", member_ids=[ann.pk], auto_assign=True,
                              max_open_per_agent=1, inbound_default=True)
    _online(workspace, ann)
    first, second = make_conversation(workspace, phone="+16505550001"), make_conversation(workspace, phone="+16505550002")
    conversation_route_inbound(conversation=first, workspace=workspace)
    conversation_route_inbound(conversation=second, workspace=workspace)
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.assigned_user_id, second.assigned_user_id) == (ann.pk, None)
    assert (first.team_id, second.team_id) == (team.pk, team.pk)  # waits in the team's queue
    AgentPresence.objects.filter(user=ann).update(last_seen_at=timezone.now() - timedelta(minutes=5))
    Conversation.objects.filter(pk=first.pk).update(state="resolved")
    conversation_route_inbound(conversation=second, workspace=workspace)
    second.refresh_from_db()
    assert second.assigned_user_id is None  # ann's inbox stopped heartbeating: offline


def test_teams_api_and_team_assignment(workspace):
    admin = make_agent(workspace, username="root", role="admin")
    ann = make_agent(workspace, username="ann")
    client = session_client(admin, workspace)
    r = client.post("/api/v1/teams", {"name": "Support", "member_ids": [ann.pk], "auto_assign": True},
                    content_type="application/json")
    assert r.status_code == 201, r.content
    team = r.json()
    assert (team["member_ids"], team["auto_assign"], team["max_open_per_agent"]) == ([ann.pk], True, 0)
    r = client.post("/api/v1/teams", {"name": "X", "member_ids": ["usr_nobody"]}, content_type="application/json")
    assert (r.status_code, r.json()["error"]["details"]["field"]) == (400, "member_ids")
    conv = make_conversation(workspace)
    r = client.patch(f"/api/v1/conversations/{conv.pk}", {"team_id": team["id"]}, content_type="application/json")
    assert r.status_code == 200 and r.json()["team_id"] == team["id"]
    assert client.get(f"/api/v1/conversations?team_id={team['id']}").json()["data"][0]["id"] == conv.pk
    assert [e["change"] for e in _events(workspace, "team.changed")] == ["created"]
    assert _events(workspace, "conversation.assigned")[-1]["team_id"] == team["id"]


def test_sorts_and_the_needs_reply_view(workspace):
    agent = make_agent(workspace)
    client = session_client(agent, workspace)
    now = timezone.now()
    old_wait = make_conversation(workspace, phone="+16505550001", last_inbound_ago=timedelta(hours=3),
                                 at=now - timedelta(hours=3))
    new_wait = make_conversation(workspace, phone="+16505550002", last_inbound_ago=timedelta(minutes=2),
                                 at=now - timedelta(minutes=2))
    answered = make_conversation(workspace, phone="+16505550003", last_inbound_ago=timedelta(hours=5), at=now)
    Conversation.objects.filter(pk=answered.pk).update(unread_count=4)
    ids = lambda q: [c["id"] for c in client.get("/api/v1/conversations?" + q).json()["data"]]  # noqa: E731
    assert ids("") == [answered.pk, new_wait.pk, old_wait.pk]
    assert ids("needs_reply=true") == [old_wait.pk, new_wait.pk]
    assert ids("sort=unread") == [answered.pk, new_wait.pk, old_wait.pk]
    assert ids("sort=oldest_waiting") == [answered.pk, old_wait.pk, new_wait.pk]
    data = client.get("/api/v1/conversations?needs_reply=true").json()["data"]
    assert data[0]["waiting_since"] is not None and data[0]["id"] == old_wait.pk
    page = client.get("/api/v1/conversations?sort=unread&limit=2").json()
    assert [c["id"] for c in page["data"]] == [answered.pk, new_wait.pk]
    rest = client.get(f"/api/v1/conversations?sort=unread&limit=2&cursor={page['next_cursor']}").json()
    assert [c["id"] for c in rest["data"]] == [old_wait.pk] and rest["next_cursor"] is None
    bad = client.get("/api/v1/conversations?sort=sideways")
    assert (bad.status_code, bad.json()["error"]["details"]["field"]) == (400, "sort")


def test_saved_views_are_per_user(workspace):
    ann, bob = make_agent(workspace, username="ann"), make_agent(workspace, username="bob")
    a, b = session_client(ann, workspace), session_client(bob, workspace)
    r = a.post("/api/v1/inbox/views", {"name": "My VIPs", "filters": {"label": "lbl_x", "sort": "unread"}},
               content_type="application/json")
    assert r.status_code == 201 and r.json()["filters"] == {"label": "lbl_x", "sort": "unread"}
    assert a.post("/api/v1/inbox/views", {"name": "Bad", "filters": {"colour": "red"}},
                  content_type="application/json").status_code == 400
    assert [v["name"] for v in a.get("/api/v1/inbox/views").json()["data"]] == ["My VIPs"]
    assert b.get("/api/v1/inbox/views").json()["data"] == []
    assert b.delete(f"/api/v1/inbox/views/{r.json()['id']}").status_code == 404
    assert a.delete(f"/api/v1/inbox/views/{r.json()['id']}").status_code == 204


def test_presence_online_away_offline(workspace):
    ann, bob = make_agent(workspace, username="ann"), make_agent(workspace, username="bob")
    client = session_client(ann, workspace)
    r = client.put("/api/v1/inbox/presence", {"status": "away"}, content_type="application/json")
    assert r.status_code == 200
    assert {p["user_id"]: p["status"] for p in r.json()["data"]} == {ann.pk: "away", bob.pk: "offline"}
    client.put("/api/v1/inbox/presence", {"status": "away"}, content_type="application/json")
    assert [e["status"] for e in _events(workspace, "agent.presence_changed")] == ["away"]  # no change, no event


def test_typing_indicator_reaches_the_simulator(workspace, sandbox_api):
    from apps.providers.registry import whatsapp_provider
    from apps.webhooks.services.inbound import inbound_webhooks_sweep
    from tests.conversations.send_support import redis_keys_clear

    redis_keys_clear()
    sandbox = workspace.sandbox
    agent = make_agent(workspace)
    client = session_client(agent, workspace, sandbox=True)
    r = sandbox_api.post("/api/v1/sandbox/inbound", {"from": "+16505551234", "text": {"body": "Hi"}}, format="json")
    wamid = r.json()["wamid"]
    inbound_webhooks_sweep()
    conv = Conversation.objects.get(workspace=sandbox)
    assert client.post(f"/api/v1/conversations/{conv.pk}/typing").json() == {"sent": True}
    assert client.post(f"/api/v1/conversations/{conv.pk}/typing").json() == {"sent": True}  # within 20 s: no call
    number = sandbox.phone_numbers.get()
    engine = whatsapp_provider(simulated=True).engine
    assert engine.typing_shown(phone_number_id=number.meta_phone_number_id, wamid=wamid) == 1
    # Outside the window nothing is sent.
    Conversation.objects.filter(pk=conv.pk).update(last_inbound_at=timezone.now() - timedelta(hours=30))
    conv.contact.__class__.objects.filter(pk=conv.contact_id).update(last_inbound_at=timezone.now() - timedelta(hours=30))
    redis_keys_clear()
    assert client.post(f"/api/v1/conversations/{conv.pk}/typing").json() == {"sent": False}
    assert engine.typing_shown(phone_number_id=number.meta_phone_number_id, wamid=wamid) == 1
