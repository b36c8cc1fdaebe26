"""Writes of the operator inbox: assignment and state changes (each appending its event in the same
transaction), read marks, private notes, canned responses, agent replies; and the after-commit
listener that pushes committed events to the browsers of their workspace."""

from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.conversations import events as conversation_events
from apps.conversations.models import CannedResponse, Conversation, ConversationNote, Message
from apps.core import hooks
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.models import User, Workspace
from apps.core.runtime.loop import LoopThread
from apps.core.services import event_append_many

logger = logging.getLogger("reach.inbox")
UNSET: Any = object()


def inbox_group_name(workspace_id: str) -> str:
    return f"inbox.{workspace_id}"


# --- conversations ---------------------------------------------------------------------------------


def conversation_update(*, conversation: Conversation, actor: User | None, state: str = UNSET,
                        assigned_user_id: str | None = UNSET, snooze_until: datetime | None = UNSET,
                        now: datetime | None = None) -> Conversation:
    """Assign / unassign and change state. `snooze_until` alone snoozes; any other state clears it.
    Appends conversation.assigned and/or conversation.status_changed with the change."""
    from apps.conversations.selectors.conversations import is_workspace_member

    now = now or timezone.now()
    if snooze_until is not UNSET and snooze_until is not None and state is UNSET:
        state = Conversation.State.SNOOZED
    if state is not UNSET and state not in Conversation.State.values:
        raise ValidationFailed(f"Unknown state {state!r}.", field="state")
    if state == Conversation.State.SNOOZED:
        if snooze_until is UNSET or snooze_until is None:
            raise ValidationFailed("Snoozing needs snooze_until.", field="snooze_until")
        if snooze_until <= now:
            raise ValidationFailed("snooze_until must be in the future.", field="snooze_until")
    elif snooze_until not in (UNSET, None):
        raise ValidationFailed("snooze_until only goes with state snoozed.", field="snooze_until")
    if assigned_user_id not in (UNSET, None) and not is_workspace_member(
        workspace=conversation.workspace, user_id=assigned_user_id
    ):
        raise ValidationFailed("No such agent in this workspace.", field="assigned_user_id")

    with transaction.atomic():
        current = Conversation.objects.select_for_update().get(pk=conversation.pk)
        events: list[tuple[str, dict]] = []
        changed: list[str] = []
        by = actor.pk if actor is not None else None
        if assigned_user_id is not UNSET and assigned_user_id != current.assigned_user_id:
            previous_assignee, current.assigned_user_id = current.assigned_user_id, assigned_user_id
            events.append(("conversation.assigned", conversation_events.conversation_assigned(
                conversation=current, previous_assigned_user_id=previous_assignee, by_user_id=by)))
            changed.append("assigned_user")
        if state is not UNSET:
            new_snooze = snooze_until if state == Conversation.State.SNOOZED else None
            if state != current.state or new_snooze != current.snooze_until:
                previous_state = current.state
                current.state, current.snooze_until = state, new_snooze
                events.append(("conversation.status_changed", conversation_events.conversation_status_changed(
                    conversation=current, previous_state=previous_state, by_user_id=by)))
                changed += ["state", "snooze_until"]
        if changed:
            if current.state != Conversation.State.RESOLVED and "state" in changed:
                _refuse_a_second_open(current)
            current.save(update_fields=[*changed, "updated_at"])
            event_append_many(workspace=current.workspace, events=events)
    return Conversation.objects.select_related("contact", "assigned_user").get(pk=current.pk)


def _refuse_a_second_open(conversation: Conversation) -> None:
    """Reopening a resolved conversation while the contact has another open one on the number: one open
    conversation per contact, number and channel is a constraint (cnv_one_open), so say which one."""
    other = (Conversation.objects.filter(contact_id=conversation.contact_id,
                                         phone_number_id=conversation.phone_number_id,
                                         channel_kind=conversation.channel_kind)
             .exclude(state=Conversation.State.RESOLVED).exclude(pk=conversation.pk).values_list("pk", flat=True)
             .first())
    if other is not None:
        raise Conflict("This contact has another open conversation on this number; continue there.",
                       details={"field": "state", "conversation_id": other})


def conversations_wake_snoozed(*, now: datetime | None = None, batch: int = 500) -> int:
    """Snoozed conversations whose time has come open again (the receive road also wakes them on
    the next inbound)."""
    now = now or timezone.now()
    woken = 0
    due = list(Conversation.objects.filter(state=Conversation.State.SNOOZED, snooze_until__lte=now)
               .values_list("pk", flat=True)[:batch])
    for pk in due:
        with transaction.atomic():
            conversation = (Conversation.objects.select_for_update()
                            .filter(pk=pk, state=Conversation.State.SNOOZED, snooze_until__lte=now).first())
            if conversation is None:
                continue
            conversation.state, conversation.snooze_until = Conversation.State.OPEN, None
            conversation.save(update_fields=["state", "snooze_until", "updated_at"])
            event_append_many(workspace=conversation.workspace, events=[(
                "conversation.status_changed", conversation_events.conversation_status_changed(
                    conversation=conversation, previous_state=Conversation.State.SNOOZED, reason="snooze_elapsed"))])
            woken += 1
    return woken


def conversation_mark_read(*, conversation: Conversation) -> Conversation:
    Conversation.objects.filter(pk=conversation.pk).update(unread_count=0)
    conversation.unread_count = 0
    return conversation


# --- notes -----------------------------------------------------------------------------------------


def note_create(*, conversation: Conversation, author: User | None, body: str) -> ConversationNote:
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("A note needs some text.", field="body")
    if len(body) > 10_000:
        raise ValidationFailed("A note is at most 10000 characters.", field="body")
    with transaction.atomic():
        note = ConversationNote.objects.create(workspace_id=conversation.workspace_id, conversation=conversation,
                                               author=author, body=body)
        # The body stays out of the event: notes are private, and events also feed outbound webhooks.
        event_append_many(workspace=conversation.workspace, events=[
            ("conversation.note_added", conversation_events.conversation_note_added(note=note))])
    return note


# --- canned responses ---------------------------------------------------------------------------------


def _canned_validate(shortcut: str, body: str) -> tuple[str, str]:
    from django.utils.text import slugify

    clean = slugify((shortcut or "").lstrip("/"))[:64]
    if not clean:
        raise ValidationFailed("A shortcut needs letters or digits.", field="shortcut")
    if not (body or "").strip():
        raise ValidationFailed("A canned response needs a body.", field="body")
    if len(body) > 4096:
        raise ValidationFailed("body is at most 4096 characters.", field="body")
    return clean, body


def canned_response_create(*, workspace: Workspace, shortcut: str, body: str, title: str = "",
                           created_by: User | None = None) -> CannedResponse:
    shortcut, body = _canned_validate(shortcut, body)
    try:
        with transaction.atomic():
            return CannedResponse.objects.create(workspace=workspace, shortcut=shortcut, body=body,
                                                 title=title[:200], created_by=created_by)
    except IntegrityError:
        raise Conflict(f"The shortcut /{shortcut} exists already.", details={"field": "shortcut"})


def canned_response_update(*, item: CannedResponse, shortcut: str | None = None, body: str | None = None,
                           title: str | None = None) -> CannedResponse:
    new_shortcut, new_body = _canned_validate(shortcut if shortcut is not None else item.shortcut,
                                              body if body is not None else item.body)
    item.shortcut, item.body = new_shortcut, new_body
    if title is not None:
        item.title = title[:200]
    try:
        with transaction.atomic():
            item.save()
    except IntegrityError:
        raise Conflict(f"The shortcut /{new_shortcut} exists already.", details={"field": "shortcut"})
    return item


def canned_response_delete(*, item: CannedResponse) -> None:
    item.delete()


# --- replies -------------------------------------------------------------------------------------------


def conversation_reply(*, conversation: Conversation, user: User | None, message_type: str,
                       content: dict, tag: str = "") -> Message:
    """An agent's reply on the conversation's own channel (its number, or its Page / Instagram account),
    through the send road's policy chain (window and tags, templates, consent, wallet)."""
    from django.utils import timezone

    from apps.conversations import policy
    from apps.conversations.services import sending

    if not tag and conversation.channel_kind in policy.SOCIAL_CHANNELS:
        tag = policy.agent_reply_tag(channel=conversation.channel_kind, last_inbound_at=conversation.last_inbound_at,
                                     now=timezone.now())
    return sending.message_send_internal(
        workspace=conversation.workspace, phone_number=conversation.phone_number, contact=conversation.contact,
        message_type=message_type, content=content, sent_by="user", sent_by_user=user,
        channel=conversation.channel_kind, account=conversation.social_account, tag=tag,
    )


# --- pushing committed events to browsers -------------------------------------------------------------------


def inbox_events_broadcast(events: list[hooks.CommittedEvent]) -> None:
    """After-commit fast path: one group_send per workspace with the full envelopes (sequence
    included). A browser that misses one catches up by sequence from the Event table: the consumer
    fills any gap it sees, and a reconnecting browser resumes after its last sequence."""
    if not events:
        return
    from apps.conversations.selectors.conversations import events_envelopes_by_id

    grouped: dict[str, list[dict]] = {}
    for event in events:
        if event.envelope is not None:
            grouped.setdefault(event.workspace_id, []).append(event.envelope)
    missing = [e.id for e in events if e.envelope is None]
    if missing:  # events announced without their envelope: read them back
        for ws_id, envelopes in events_envelopes_by_id(event_ids=missing).items():
            grouped.setdefault(ws_id, []).extend(envelopes)
    for envelopes in grouped.values():
        envelopes.sort(key=lambda env: env["sequence"])
    sends = [(inbox_group_name(ws_id), {"type": "inbox.events", "events": envelopes})
             for ws_id, envelopes in grouped.items()]
    if sends:
        _pusher.submit(sends)


class _Pusher:
    """Hands group_sends to one long-lived event loop and returns at once, so the writer (a request or
    a worker thread) never waits on the channel layer, the channel layer's connection pool lives as
    long as the process, and sends leave in commit order (one drain task per loop).

    The loop is the ASGI server's when this process serves the inbox (needed by the in-memory layer of
    the embedded default, which only works inside its own loop), else a private background loop."""

    def __init__(self) -> None:
        self._own = LoopThread("inbox-push")
        self._queues: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # loop -> its queue
        self.server_loop: asyncio.AbstractEventLoop | None = None

    def note_server_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self.server_loop = loop

    def _loop(self) -> asyncio.AbstractEventLoop:
        loop = self.server_loop
        if loop is not None and loop.is_running() and not loop.is_closed():
            return loop
        return self._own.loop()

    def submit(self, sends: list[tuple[str, dict]]) -> None:
        loop = self._loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._enqueue(loop, sends)
        else:
            loop.call_soon_threadsafe(self._enqueue, loop, sends)

    def _enqueue(self, loop: asyncio.AbstractEventLoop, sends) -> None:
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = asyncio.Queue()
            task = loop.create_task(self._drain(queue))
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)
        queue.put_nowait(sends)

    async def _drain(self, queue: asyncio.Queue) -> None:
        from channels.layers import get_channel_layer

        linger = max(0.0, getattr(settings, "INBOX_PUSH_LINGER_MS", 0) / 1000)
        loop = asyncio.get_running_loop()
        last_round = float("-inf")
        while True:
            batches = [await queue.get()]
            # At most one round per `linger`: a push after a quiet spell leaves at once, and under load what
            # arrives until the next round is due leaves with it (one group_send per workspace per round).
            wait = last_round + linger - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            last_round = loop.time()
            while not queue.empty():  # what queued up meanwhile leaves together: one group_send per group
                batches.append(queue.get_nowait())
            layer = get_channel_layer()
            for group, message in _coalesced(batches):
                try:
                    await layer.group_send(group, message)
                except Exception:  # the log is the truth; browsers catch up by sequence
                    logger.exception("inbox push to %s failed", group)


_PUSH_MAX_EVENTS = 100  # per group_send: keeps a channel-layer message small


def _coalesced(batches: list[list[tuple[str, dict]]]) -> list[tuple[str, dict]]:
    """Several submitted batches as one list of sends: each group's events merged in sequence order (two
    writers' commits may have been announced out of order) and split into messages of at most
    _PUSH_MAX_EVENTS. Under load this turns one channel-layer round trip per send into a few per tick."""
    if len(batches) == 1 and all(len(m.get("events", ())) <= _PUSH_MAX_EVENTS for _, m in batches[0]):
        return batches[0]
    merged: dict[str, list[dict]] = {}
    out = []
    for sends in batches:
        for group, message in sends:
            if message.get("type") == "inbox.events":
                merged.setdefault(group, []).extend(message["events"])
            else:
                out.append((group, message))
    for group, events in merged.items():
        events.sort(key=lambda env: env["sequence"])
        for start in range(0, len(events), _PUSH_MAX_EVENTS):
            out.append((group, {"type": "inbox.events", "events": events[start:start + _PUSH_MAX_EVENTS]}))
    return out


_tasks: set = set()
_pusher = _Pusher()


def inbox_server_loop_note(loop: asyncio.AbstractEventLoop) -> None:
    _pusher.note_server_loop(loop)


def inbox_listener_register() -> None:
    hooks.register_event_listener(inbox_events_broadcast)


def conversation_for_tenant_or_404(*, tenant, conversation_id: str) -> Conversation:
    from apps.conversations.selectors.conversations import conversation_get

    conversation = conversation_get(tenant=tenant, conversation_id=conversation_id)
    if conversation is None:
        raise NotFound("No such conversation.")
    return conversation
