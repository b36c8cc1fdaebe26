"""The inbox WebSocket through the real ASGI application (session cookie, origin check, channel
layer): authentication, tenant isolation (another workspace's or the sandbox's events never
arrive), resume after a sequence, reset on a too-old gap, gap filling and heartbeats."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import transaction

from apps.conversations.services.inbox import conversation_update, inbox_group_name
from apps.core.events import event_type_get
from apps.core.models import Event
from apps.core.services import event_append, event_envelope
from reach.asgi import application
from tests.conversations.inbox_support import make_agent, make_conversation, session_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture(autouse=True)
def _channel_layer_per_test():
    # Each test runs on its own event loop. channels_redis keeps one receive lock per layer instance,
    # bound to the loop that created it; a receive left pending by an earlier test (a timeout, a
    # failure) would make the next test's receive fail on that lock. A fresh layer per test isolates them.
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


# A deadline for what must arrive, not a pace: generous, because a loaded CI machine can take
# seconds to run the session lookup, the commit and the channel-layer hop.
TIMEOUT = 20


def _cookie_for(user, workspace, sandbox=False) -> bytes:
    client = session_client(user, workspace, sandbox=sandbox)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _connect(cookie: bytes | None):
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)
    connected, code = await communicator.connect(timeout=TIMEOUT)
    return communicator, connected, code


def _emit(workspace, type_="conversation.status_changed", n=1):
    with transaction.atomic():
        for i in range(n):
            event_append(workspace=workspace, type=type_,
                         data={**event_type_get(type_).example, "conversation_id": "cnv_x"})


emit = sync_to_async(_emit)


@pytest.fixture
def setup(workspace, other_workspace):
    alice = make_agent(workspace, username="alice")
    bob = make_agent(other_workspace, username="bob")
    return alice, bob


async def _hello_and_resume(communicator, after):
    hello = await communicator.receive_json_from(timeout=TIMEOUT)
    assert hello["type"] == "hello"
    await communicator.send_json_to({"resume_after": after})
    return hello


async def _next_is_marker(communicator, workspace, sequence: int) -> None:
    """Proves nothing unexpected is queued for this browser, without betting on a quiet period: one more
    event of its own workspace must be the very next frame. The pusher sends in commit order and a
    channel is FIFO, so anything stray (committed earlier) would arrive before the marker."""
    await emit(workspace)
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "events", frame
    assert [(e["sequence"], e["workspace_id"], e["sandbox"]) for e in frame["events"]] == [
        (sequence, workspace.sandbox_of_id or workspace.pk, workspace.is_sandbox)]


async def _collect(communicator, count: int) -> list[dict]:
    """Events in arrival order across frames (one commit may become one frame or several)."""
    events: list[dict] = []
    while len(events) < count:
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        assert frame["type"] == "events", frame
        events += frame["events"]
    return events


async def test_anonymous_is_refused():
    communicator, connected, code = await _connect(None)
    assert connected is False and code == 4401


async def test_member_without_cookie_of_this_site_origin_is_refused(setup, workspace):
    alice, _ = setup
    cookie = await sync_to_async(_cookie_for)(alice, workspace)
    communicator = WebsocketCommunicator(application, "/ws/inbox/",
                                         headers=[(b"origin", b"http://evil.example"), (b"cookie", cookie)])
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected is False


async def test_user_without_workspace_is_refused(db):
    from apps.core.models import User

    loner = await sync_to_async(User.objects.create_user)(username="loner", password="x")
    cookie = await sync_to_async(_cookie_for)(loner, None)
    communicator, connected, code = await _connect(cookie)
    assert connected is False and code == 4403


async def test_live_event_arrives_with_its_sequence(setup, workspace):
    alice, _ = setup
    conv = await sync_to_async(make_conversation)(workspace)
    communicator, connected, _ = await _connect(await sync_to_async(_cookie_for)(alice, workspace))
    assert connected
    hello = await _hello_and_resume(communicator, 0)
    assert hello["sequence"] == 0 and hello["sandbox"] is False and hello["workspace_id"] == workspace.pk
    await sync_to_async(conversation_update)(conversation=conv, actor=alice, state="resolved")
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "events"
    [event] = frame["events"]
    assert event["sequence"] == 1 and event["type"] == "conversation.status_changed"
    assert event["data"]["conversation_id"] == conv.pk and event["data"]["state"] == "resolved"
    await communicator.disconnect()


async def test_tenant_isolation_other_workspace_and_sandbox(setup, workspace, other_workspace):
    alice, bob = setup
    a, _, _ = await _connect(await sync_to_async(_cookie_for)(alice, workspace))
    b, _, _ = await _connect(await sync_to_async(_cookie_for)(bob, other_workspace))
    a_sandbox, _, _ = await _connect(await sync_to_async(_cookie_for)(alice, workspace, True))
    for c in (a, b, a_sandbox):
        await _hello_and_resume(c, 0)
    await emit(other_workspace, n=2)
    events = await _collect(b, 2)
    assert [e["sequence"] for e in events] == [1, 2]
    assert all(e["workspace_id"] == other_workspace.pk for e in events)
    sandbox = await sync_to_async(lambda: workspace.sandbox)()
    await emit(sandbox)
    frame = await a_sandbox.receive_json_from(timeout=TIMEOUT)
    assert frame["events"][0]["sandbox"] is True
    await emit(workspace)
    frame = await a.receive_json_from(timeout=TIMEOUT)
    assert frame["events"][0]["sandbox"] is False and frame["events"][0]["workspace_id"] == workspace.pk
    # Nobody received anybody else's events: each one's next frame is its own marker.
    await _next_is_marker(a, workspace, 2)
    await _next_is_marker(b, other_workspace, 3)
    await _next_is_marker(a_sandbox, sandbox, 2)
    for c in (a, b, a_sandbox):
        await c.disconnect()


async def test_resume_replays_everything_after_the_sequence_then_live(setup, workspace):
    alice, _ = setup
    await emit(workspace, n=5)  # happened while the browser was away
    communicator, _, _ = await _connect(await sync_to_async(_cookie_for)(alice, workspace))
    hello = await _hello_and_resume(communicator, 2)
    assert hello["sequence"] == 5
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert [e["sequence"] for e in frame["events"]] == [3, 4, 5]
    await emit(workspace)
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert [e["sequence"] for e in frame["events"]] == [6]
    await _next_is_marker(communicator, workspace, 7)
    await communicator.disconnect()


async def test_events_committed_before_resume_are_sent_once_in_order(setup, workspace):
    alice, _ = setup
    await emit(workspace, n=2)
    communicator, _, _ = await _connect(await sync_to_async(_cookie_for)(alice, workspace))
    await communicator.receive_json_from(timeout=TIMEOUT)  # hello
    await emit(workspace, n=2)  # live, but the client has not said where it resumes yet
    await communicator.send_json_to({"resume_after": 0})
    sequences = []
    while len(sequences) < 4:
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        sequences += [e["sequence"] for e in frame["events"]]
    assert sequences == [1, 2, 3, 4]
    await _next_is_marker(communicator, workspace, 5)  # and none of them twice
    await communicator.disconnect()


async def test_too_old_gap_asks_for_a_reload(setup, workspace, settings):
    alice, _ = setup
    settings.INBOX_RESUME_MAX_EVENTS = 3
    await emit(workspace, n=5)
    communicator, _, _ = await _connect(await sync_to_async(_cookie_for)(alice, workspace))
    await _hello_and_resume(communicator, 0)
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "reset", "sequence": 5}
    await emit(workspace)
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert [e["sequence"] for e in frame["events"]] == [6]
    await communicator.disconnect()


async def test_a_live_event_ahead_of_a_missing_one_is_preceded_by_it(setup, workspace):
    """Another process's group_send can be late (or dropped past capacity): the consumer fills the gap
    from the log so the browser still sees 1, 2, 3 in order and never the late one twice."""
    alice, _ = setup
    communicator, _, _ = await _connect(await sync_to_async(_cookie_for)(alice, workspace))
    await _hello_and_resume(communicator, 0)
    assert await communicator.receive_nothing(timeout=0.1)

    def _write_silently():
        from apps.core import hooks

        saved = list(hooks._event_listeners)
        hooks._event_listeners.clear()  # the fast path for these two is "lost"
        try:
            _emit(workspace, n=2)
        finally:
            hooks._event_listeners[:] = saved
        return [event_envelope(event=e) for e in Event.objects.filter(workspace=workspace).order_by("sequence")]

    envelopes = await sync_to_async(_write_silently)()
    await emit(workspace)  # sequence 3 arrives live
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert [e["sequence"] for e in frame["events"]] == [1, 2]
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert [e["sequence"] for e in frame["events"]] == [3]
    # The late fast-path message for 1 and 2 shows up now: dropped, not sent twice.
    await get_channel_layer().group_send(inbox_group_name(workspace.pk), {"type": "inbox.events", "events": envelopes})
    await _next_is_marker(communicator, workspace, 4)
    await communicator.disconnect()


async def test_heartbeat(setup, workspace):
    alice, _ = setup
    communicator, _, _ = await _connect(await sync_to_async(_cookie_for)(alice, workspace))
    await communicator.receive_json_from(timeout=TIMEOUT)
    await communicator.send_json_to({"type": "ping", "t": 123})
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "t": 123}
    await communicator.disconnect()


async def test_peers_see_who_is_replying_and_connecting_counts_as_online(setup, workspace):
    from apps.conversations.models import AgentPresence

    alice, _ = setup
    carol = await sync_to_async(make_agent)(workspace, username="carol")
    a, connected, _ = await _connect(await sync_to_async(_cookie_for)(alice, workspace))
    c, connected_c, _ = await _connect(await sync_to_async(_cookie_for)(carol, workspace))
    assert connected and connected_c
    await _hello_and_resume(a, 0)
    await _hello_and_resume(c, 0)
    statuses = await sync_to_async(lambda: sorted(AgentPresence.objects.values_list("status", flat=True)))()
    assert statuses == ["online", "online"]
    assert await sync_to_async(Event.objects.filter(type="agent.presence_changed").count)() == 0  # soft state
    await c.send_json_to({"type": "peer", "conversation_id": "cnv_1", "replying": True})
    frame = await a.receive_json_from(timeout=TIMEOUT)
    assert frame == {"type": "peer", "user_id": carol.pk, "name": "Carol", "conversation_id": "cnv_1",
                     "replying": True}
    assert await c.receive_nothing(timeout=0.3)  # not echoed to the sender
    await a.disconnect()
    await c.disconnect()


async def test_agents_of_one_workspace_get_one_frame_encoded_once(setup, workspace):
    """The fan-out encodes a group message's events once per process, not once per socket: two agents get the
    very same text, cached under the run of sequences it carries (another run is another frame)."""
    import json

    from apps.conversations import consumers

    alice, _ = setup
    carol = await sync_to_async(make_agent)(workspace, username="carol")
    first, ok_first, _ = await _connect(await sync_to_async(_cookie_for)(alice, workspace))
    second, ok_second, _ = await _connect(await sync_to_async(_cookie_for)(carol, workspace))
    assert ok_first and ok_second
    await _hello_and_resume(first, 0)
    await _hello_and_resume(second, 0)
    await emit(workspace)
    text_first, text_second = await first.receive_from(timeout=TIMEOUT), await second.receive_from(timeout=TIMEOUT)
    assert text_first == text_second
    assert [e["sequence"] for e in json.loads(text_first)["events"]] == [1]
    assert consumers._frames[(inbox_group_name(workspace.pk), 1, 1, 1)] == text_first
    frame = consumers._events_frame(inbox_group_name(workspace.pk), [{"sequence": 2, "id": "evt_x"}])
    assert json.loads(frame) == {"type": "events", "events": [{"sequence": 2, "id": "evt_x"}]}
    await first.disconnect()
    await second.disconnect()


async def test_a_push_does_not_wait_for_the_sync_thread(setup, workspace):
    """Channels' dispatch hops to the one sync thread before every handler (to close stale connections): a
    workspace's pushes then queue behind whatever ORM work that thread is doing, once per agent. The inbox
    consumer skips that hop; its database work closes stale connections itself (database_sync_to_async).
    Here the sync thread is held busy and a pushed event must still reach the browser."""
    import asyncio
    import threading

    alice, _ = setup
    communicator, connected, _ = await _connect(await sync_to_async(_cookie_for)(alice, workspace))
    assert connected
    await _hello_and_resume(communicator, 0)
    await emit(workspace)  # its frame proves the resume is done and the consumer idle
    assert [e["sequence"] for e in (await communicator.receive_json_from(timeout=TIMEOUT))["events"]] == [1]

    started, gate = threading.Event(), threading.Event()

    def hold_the_sync_thread():
        started.set()
        gate.wait(30)

    holder = asyncio.ensure_future(sync_to_async(hold_the_sync_thread)())
    try:
        assert await asyncio.to_thread(started.wait, TIMEOUT)
        probe = {"sequence": 2, "id": "evt_probe", "type": "conversation.status_changed", "data": {}}
        await get_channel_layer().group_send(inbox_group_name(workspace.pk), {"type": "inbox.events",
                                                                               "events": [probe]})
        frame = await communicator.receive_json_from(timeout=5)
        assert frame == {"type": "events", "events": [probe]}
    finally:
        gate.set()
        await holder
    await communicator.disconnect()
