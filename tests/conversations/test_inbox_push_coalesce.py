"""The inbox pusher sends what queued up meanwhile together: one group_send per group per round, in
sequence order, in messages of at most _PUSH_MAX_EVENTS events."""

from __future__ import annotations

from apps.conversations.services.inbox import _PUSH_MAX_EVENTS, _coalesced


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
