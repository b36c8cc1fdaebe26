"""The inbox stream: a thin WebSocket consumer (its one write: the presence heartbeat, through the service). Authenticated by the Django session,
scoped to the session's workspace (live or sandbox).

Protocol (JSON frames):
- server → {"type": "hello", "sequence": N, "workspace_id", "sandbox"} on connect;
- client → {"resume_after": N}: the server replays every event after N from the Event table, then
  streams live ones; or {"type": "reset", "sequence": M} when the gap is too old (reload state);
- server → {"type": "events", "events": [envelope, ...]} in strictly increasing sequence, no gaps:
  a live event that arrives ahead of a missing one (another process committed it, or the channel
  layer dropped one) makes the consumer read the missing ones from the log first;
- client → {"type": "ping"} / server → {"type": "pong"}: heartbeats (the client reconnects when a
  pong is late)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from apps.conversations.selectors.conversations import inbox_current_sequence, inbox_events_after
from apps.conversations.services.inbox import inbox_group_name, inbox_server_loop_note
from apps.core.selectors import tenant_for_session

logger = logging.getLogger("reach.inbox.ws")
CHUNK = 200
MAX_BUFFER = 5000
_FRAMES_KEPT = 64
_frames: OrderedDict = OrderedDict()  # (group, first, last, count) -> the frame's JSON text


def _events_frame(group: str, chunk: list[dict]) -> str:
    """The JSON text of an "events" frame, encoded once for every agent of the workspace in this process (a
    group_send reaches each socket with the same events; encoding them per socket was most of the fan-out's
    Python). A run of sequences identifies its events: a workspace's sequence numbers are unique and an
    event never changes."""
    key = (group, chunk[0]["sequence"], chunk[-1]["sequence"], len(chunk))
    text = _frames.get(key)
    if text is None:
        text = _frames[key] = json.dumps({"type": "events", "events": chunk})
        if len(_frames) > _FRAMES_KEPT:
            _frames.popitem(last=False)
    return text


def _tenant(user, session):
    tenant = tenant_for_session(user=user, session=session)
    if tenant is not None:
        _ = tenant.workspace.live.pk  # load the live twin here, not in the event loop
    return tenant


class InboxConsumer(AsyncJsonWebsocketConsumer):
    async def dispatch(self, message):
        # Channels' own dispatch first hops to the one sync thread to close stale database connections
        # (aclose_old_connections), for every message: each of a workspace's agents then queues every push
        # behind that thread and whatever ORM work it is doing. Every handler here reaches the database only
        # through database_sync_to_async, which closes stale connections itself, so the hop is skipped.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self):
        self.group = None
        inbox_server_loop_note(asyncio.get_running_loop())
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        tenant = await database_sync_to_async(_tenant)(user, self.scope["session"])
        # The live group carries the whole workspace's events: a WABA-bound tenant may not listen to it.
        if tenant is None or not tenant.has_scope("inbox:read") or tenant.waba_id:
            await self.close(code=4403)
            return
        self.tenant = tenant
        self.workspace = tenant.workspace
        self.last_sent: int | None = None  # set once the client said where it resumes from
        self.buffer: list[dict] = []
        self.overflowed = False
        self.group = inbox_group_name(self.workspace.pk)
        self.user_id, self.user_name = user.pk, user.display_name or user.username
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._heartbeat()
        current = await database_sync_to_async(inbox_current_sequence)(workspace=self.workspace)
        await self.send_json({"type": "hello", "sequence": current, "workspace_id": self.workspace.live.pk,
                              "sandbox": self.workspace.is_sandbox,
                              "heartbeat_seconds": settings.INBOX_HEARTBEAT_SECONDS})

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            return
        if content.get("type") == "ping":
            await self.send_json({"type": "pong", "t": content.get("t")})
            await self._heartbeat()
            return
        if content.get("type") == "peer":  # "X is looking at / replying to" a thread: ephemeral, not logged
            cid = content.get("conversation_id")
            if cid is None or (isinstance(cid, str) and len(cid) <= 40):
                await self.channel_layer.group_send(self.group, {
                    "type": "inbox.peer", "user_id": self.user_id, "name": self.user_name, "conversation_id": cid,
                    "replying": bool(content.get("replying"))})
            return
        if "resume_after" in content:
            try:
                after = int(content["resume_after"])
            except (TypeError, ValueError):
                await self.send_json({"type": "error", "message": "resume_after must be a number"})
                return
            await self._resume(after)

    async def _resume(self, after: int) -> None:
        events, reset, current = await database_sync_to_async(inbox_events_after)(
            tenant=self.tenant, after_sequence=after)
        if reset:
            self.last_sent = current
            await self.send_json({"type": "reset", "sequence": current})
        else:
            self.last_sent = after
            await self._send_in_order(events)
        buffered, self.buffer = self.buffer, []
        if self.overflowed:
            self.overflowed = False
            await self._catch_up(upto=None)
        await self._send_in_order(buffered)

    async def _send_in_order(self, events: list[dict]) -> None:
        fresh = [e for e in events if e["sequence"] > self.last_sent]
        fresh.sort(key=lambda e: e["sequence"])
        if not fresh:
            return
        if fresh[0]["sequence"] > self.last_sent + 1:
            await self._catch_up(upto=fresh[0]["sequence"] - 1)
            fresh = [e for e in fresh if e["sequence"] > self.last_sent]
        for start in range(0, len(fresh), CHUNK):
            chunk = fresh[start:start + CHUNK]
            await self.send(text_data=_events_frame(self.group, chunk))
            self.last_sent = chunk[-1]["sequence"]

    async def _catch_up(self, *, upto: int | None) -> None:
        """Read what the live path has not brought (yet) from the log, so the client sees no gap."""
        events, reset, current = await database_sync_to_async(inbox_events_after)(
            tenant=self.tenant, after_sequence=self.last_sent)
        if reset:
            self.last_sent = current
            await self.send_json({"type": "reset", "sequence": current})
            return
        if upto is not None:
            events = [e for e in events if e["sequence"] <= upto]
        for start in range(0, len(events), CHUNK):
            chunk = events[start:start + CHUNK]
            await self.send_json({"type": "events", "events": chunk})
            self.last_sent = chunk[-1]["sequence"]

    async def _heartbeat(self) -> None:
        """The agent's inbox is open: they count as online (unless they chose away) for presence and
        round-robin assignment."""
        from apps.conversations.services.organise import presence_set

        try:
            await database_sync_to_async(presence_set)(workspace=self.workspace, user=self.scope["user"])
        except Exception:  # presence is a nicety; the stream must not drop for it
            logger.exception("presence heartbeat failed")

    async def inbox_peer(self, message):
        if message.get("user_id") != self.user_id:
            await self.send_json({"type": "peer", "user_id": message.get("user_id"), "name": message.get("name"),
                                  "conversation_id": message.get("conversation_id"),
                                  "replying": message.get("replying", False)})

    async def inbox_events(self, message):
        """Group message from the after-commit listener."""
        events = message.get("events") or []
        if self.last_sent is None:
            if len(self.buffer) + len(events) > MAX_BUFFER:
                self.buffer, self.overflowed = [], True
            else:
                self.buffer.extend(events)
            return
        await self._send_in_order(events)
