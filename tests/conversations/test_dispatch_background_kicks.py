"""On-commit kicks sent from a background thread keep the kick's rule: each SET NX runs after the
commits it carries, so a kick that finds a drainer's key held enqueues nothing, and the first kick after
the drainer lets go enqueues a drain."""

from __future__ import annotations

import pytest

from apps.conversations.services import dispatch
from apps.core.redis import get_redis


@pytest.fixture
def enqueued(settings, monkeypatch):
    settings.DISPATCH_KICK_LINGER_MS = 5
    calls: list[str] = []
    monkeypatch.setattr(dispatch.kicks, "_enqueue", calls.append)
    yield calls
    get_redis().delete(dispatch._kick_key("pn_kicktest"))


def test_held_key_absorbs_kicks_and_a_released_one_lets_the_next_through(enqueued):
    key = dispatch._kick_key("pn_kicktest")
    get_redis().set(key, "1", px=60_000)  # a drainer is busy with this number
    for _ in range(20):
        dispatch.dispatch_kick(phone_number_id="pn_kicktest")
    assert dispatch._background_kicks.wait_sent(5)
    assert enqueued == []
    get_redis().delete(key)  # the drainer went idle and let go
    dispatch.dispatch_kick(phone_number_id="pn_kicktest")
    assert dispatch._background_kicks.wait_sent(5)
    assert enqueued == ["pn_kicktest"]


def test_a_failing_redis_leaves_the_kick_to_the_sweeper(enqueued, monkeypatch):
    class Down:
        def set(self, *args, **kwargs):
            raise ConnectionError("redis is down")

    monkeypatch.setattr("apps.core.runtime.doorbell.get_redis", lambda: Down())
    dispatch.dispatch_kick(phone_number_id="pn_kicktest")
    assert dispatch._background_kicks.wait_sent(5)  # the thread survives the error
    assert enqueued == []
    monkeypatch.undo()


def test_a_forked_child_starts_with_a_fresh_kicker(enqueued):
    import os

    dispatch.dispatch_kick(phone_number_id="pn_kicktest")
    assert dispatch._background_kicks.wait_sent(5)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no thread yet, nothing pending, the lock free
        kicks = dispatch._background_kicks
        ok = kicks._thread is None and not kicks._pending and kicks._changed.acquire(timeout=1)
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    os.close(read)
