"""The inbox stream: a thin WebSocket consumer (no writes). Authenticated by the Django session,
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
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from apps.conversations.selectors.conversations import inbox_current_sequence, inbox_events_after
from apps.conversations.services.inbox import inbox_group_name, inbox_server_loop_note
from apps.core.selectors import tenant_for_session

logger = logging.getLogger("reach.inbox.ws")
CHUNK = 200
MAX_BUFFER = 5000


def _tenant(user, session):
    tenant = tenant_for_session(user=user, session=session)
    if tenant is not None:
        _ = tenant.workspace.live.pk  # load the live twin here, not in the event loop
    return tenant


class InboxConsumer(AsyncJsonWebsocketConsumer):
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
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
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
            await self.send_json({"type": "events", "events": chunk})
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
