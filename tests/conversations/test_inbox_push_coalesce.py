"""The inbox pusher sends what queued up meanwhile together: one group_send per group per round, in
sequence order, in messages of at most _PUSH_MAX_EVENTS events; at most one round per INBOX_PUSH_LINGER_MS,
and none held back after a quiet spell."""

from __future__ import annotations

import asyncio
import uuid

from channels.layers import get_channel_layer

from apps.conversations.services.inbox import _PUSH_MAX_EVENTS, _coalesced, _Pusher


def _send(group: str, *sequences: int) -> tuple[str, dict]:
    return group, {"type": "inbox.events", "events": [{"sequence": s, "id": f"evt_{s}"} for s in sequences]}


def test_one_batch_passes_through_unchanged():
    batch = [_send("inbox.ws_a", 1, 2)]
    assert _coalesced([batch]) is batch


def test_batches_merge_per_group_in_sequence_order():
    # Two writers announced their commits out of order; a third workspace is untouched.
    out = _coalesced([[_send("inbox.ws_a", 5)], [_send("inbox.ws_a", 3, 4), _send("inbox.ws_b", 9)],
                      [_send("inbox.ws_a", 6)]])
    assert [(g, [e["sequence"] for e in m["events"]]) for g, m in out] == [
        ("inbox.ws_a", [3, 4, 5, 6]), ("inbox.ws_b", [9])]
    assert all(m["type"] == "inbox.events" for _, m in out)


def test_a_large_round_is_split_and_other_messages_pass_as_they_are():
    many = [[_send("inbox.ws_a", n)] for n in range(1, _PUSH_MAX_EVENTS + 6)]
    other = ("inbox.ws_a", {"type": "inbox.reset"})
    out = _coalesced([*many, [other]])
    assert other in out
    pushed = [m for _, m in out if m["type"] == "inbox.events"]
    assert [len(m["events"]) for m in pushed] == [_PUSH_MAX_EVENTS, 5]
    assert [e["sequence"] for m in pushed for e in m["events"]] == list(range(1, _PUSH_MAX_EVENTS + 6))


def _sequences(message: dict) -> list[int]:
    return [e["sequence"] for e in message["events"]]


def _pushed(rounds: list[list[int]]) -> list[list[int]]:
    """Through a fresh pusher on this loop and the real channel layer: each round's sequences submitted one
    push each, then one message read; the sequences of each message read."""

    async def scenario() -> list[list[int]]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        group = f"inbox.pushtest{uuid.uuid4().hex[:8]}"
        await layer.group_add(group, channel)
        pusher = _Pusher()
        pusher.note_server_loop(asyncio.get_running_loop())
        read = []
        try:
            for sequences in rounds:
                for sequence in sequences:
                    pusher.submit([_send(group, sequence)])
                read.append(_sequences(await asyncio.wait_for(layer.receive(channel), timeout=10)))
        finally:
            await layer.group_discard(group, channel)
        return read

    return asyncio.run(scenario())


def test_after_a_quiet_spell_a_push_leaves_at_once(settings):
    """A round a minute at most: a first push that waited for its round would time this out."""
    settings.INBOX_PUSH_LINGER_MS = 60_000
    assert _pushed([[1]]) == [[1]]


def test_pushes_arriving_before_the_next_round_is_due_leave_together_in_order(settings):
    settings.INBOX_PUSH_LINGER_MS = 300
    # 3 and 2 come before the second round is due: one channel-layer message, in sequence order.
    assert _pushed([[1], [3, 2]]) == [[1], [2, 3]]
