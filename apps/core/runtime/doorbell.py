"""The doorbell: wake a drainer for some work at most once at a time.

A Redis key per thing to drain (a number, a queue slot) is set NX by whoever rings; only the ring that
sets it enqueues a drain. The drainer holds the key while it works (so rings meanwhile are absorbed) and
deletes it when idle, then looks once more, so a ring between its last look and the release is never
lost. The key has a TTL: a drainer that dies lets it lapse and the sweeper rings again. Redis down is
never an error for the caller: the database row is the queue, the sweeper finds it.

A drainer that found nothing may idle a moment, holding the key, instead of ending (wait_wake): a ring that
finds the key held (acquire_or_wake) then wakes it at once, where a fresh drain would wait for the broker
to hand a task to a worker.

BackgroundRinger moves the ring off the committing request: one thread per process rings each distinct
name once per round."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from apps.core.redis import get_redis

logger = logging.getLogger("reach.runtime")


class Doorbell:
    def __init__(self, prefix: str, *, ttl_ms: Callable[[], int], enqueue: Callable[[str], None] | None = None):
        self.prefix = prefix
        self._ttl_ms = ttl_ms
        self._enqueue = enqueue

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def acquire(self, name: str) -> bool:
        """Set the key if nobody holds it; True when this caller may enqueue."""
        return bool(get_redis().set(self.key(name), "1", nx=True, px=int(self._ttl_ms())))

    def wake_key(self, name: str) -> str:
        return f"{self.prefix}:wake:{name}"

    def acquire_or_wake(self, name: str) -> bool:
        """acquire(), and when a drainer holds the key, leave it a wake-up (one Redis round trip either way)."""
        ttl = int(self._ttl_ms())
        return bool(_ring_or_wake_script()(keys=[self.key(name), self.wake_key(name)], args=[ttl]))

    def wait_wake(self, name: str, timeout: float) -> bool:
        """The holding drainer, idle: wait up to `timeout` seconds (under the client's socket timeout) for a
        ring. True when rung meanwhile, or since its last wait (a ring during its last pass leaves one too)."""
        try:
            return get_redis().blpop([self.wake_key(name)], timeout=timeout) is not None
        except Exception:  # Redis away: end the drain as if idle; the release path looks once more
            logger.warning("redis unavailable waiting on %s", self.wake_key(name), exc_info=True)
            return False

    def ring(self, name: str) -> None:
        """Enqueue a drain unless one is pending or running."""
        try:
            if self.acquire(name) and self._enqueue is not None:
                self._enqueue(name)
        except Exception:  # broker or Redis down: the row is the queue, the sweeper will find it
            logger.warning("doorbell %s failed for %s", self.prefix, name, exc_info=True)

    def hold(self, name: str) -> None:
        """While a drainer is busy, rings are absorbed; the key lapses after the TTL if the drainer dies."""
        try:
            get_redis().set(self.key(name), "1", px=int(self._ttl_ms()))
        except Exception:
            logger.warning("redis unavailable holding %s", self.key(name), exc_info=True)

    def release(self, name: str) -> None:
        try:
            get_redis().delete(self.key(name))
        except Exception:  # the key expires on its own
            logger.warning("redis unavailable releasing %s", self.key(name), exc_info=True)


# SET NX, else one wake-up token for the holder (the list keeps at most one).
_RING_OR_WAKE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 1 end
redis.call('LPUSH', KEYS[2], '1')
redis.call('LTRIM', KEYS[2], 0, 0)
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 0
"""
_scripts: dict = {}


def _ring_or_wake_script():
    client = get_redis()
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_RING_OR_WAKE)
    return script


class BackgroundRinger:
    """Rings handed to one thread per process, which rings each distinct name once per round.

    A request would otherwise wait on a Redis round trip after its commit, and under load most of those
    SET NX find the key already held. The rule that makes a ring safe still holds: a round's SET NX runs
    after every commit whose ring it carries. A process that dies with rings pending leaves them to the
    sweeper, as a failed ring would."""

    def __init__(self, ring: Callable[[str], None], *, linger_seconds: Callable[[], float], name: str):
        self._ring = ring
        self._linger = linger_seconds
        self._name = name
        self._reset()
        # A forked child (a Celery prefork worker) starts with no thread and a lock no other thread holds.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._changed = threading.Condition()
        self._pending: set[str] = set()
        self._submitted = 0  # rings submitted so far
        self._sent = 0  # rings whose round has run
        self._thread: threading.Thread | None = None

    def submit(self, name: str) -> None:
        with self._changed:
            self._pending.add(name)
            self._submitted += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending)
            linger = float(self._linger())
            if linger > 0:  # under load, the rings of the next few ms share this round
                time.sleep(linger)
            with self._changed:
                names, self._pending, upto = self._pending, set(), self._submitted
            for name in sorted(names):
                try:
                    self._ring(name)
                except Exception:
                    logger.warning("background ring failed for %s", name, exc_info=True)
            with self._changed:
                self._sent = upto
                self._changed.notify_all()

    def wait_sent(self, timeout: float = 5.0) -> bool:
        """Block until every ring submitted before this call has run (tests, shutdown)."""
        with self._changed:
            target = self._submitted
            return self._changed.wait_for(lambda: self._sent >= target, timeout=timeout)
