"""The fast path: an on-commit kick wakes one drain task per number (the core runtime doorbell), rung from
a background thread per process so a request never waits on Redis after its commit. The sweeper covers
any kick lost."""

from __future__ import annotations

from apps.conversations.services.dispatch.base import _setting, logger
from apps.core.runtime.doorbell import BackgroundRinger, Doorbell


def _enqueue(phone_number_id: str) -> None:
    from apps.conversations.tasks.dispatch import dispatch_number

    dispatch_number.delay(phone_number_id)


# Looked up at each ring, so tests may replace _enqueue.
doorbell = Doorbell("reach:dispatch:kick", ttl_ms=lambda: _setting("DISPATCH_KICK_TTL_MS", 2000),
                    enqueue=lambda pn: _enqueue(pn))


def _kick_key(phone_number_id: str) -> str:
    return doorbell.key(phone_number_id)


def _hold_kick(phone_number_id: str) -> None:
    """While a drainer is busy, on-commit kicks are absorbed (no pile of drain tasks for one number); if
    the drainer dies the key lapses within DISPATCH_KICK_TTL_MS and the sweeper kicks a new one."""
    doorbell.hold(phone_number_id)


def _release_kick(phone_number_id: str) -> None:
    doorbell.release(phone_number_id)


_background_kicks = BackgroundRinger(doorbell.ring, name="dispatch-kicks",
                                     linger_seconds=lambda: float(_setting("DISPATCH_KICK_LINGER_MS", 0)) / 1000)


def dispatch_kick(*, phone_number_id: str) -> None:
    """On-commit fast path: at most one pending drain task per number; the sweeper covers any loss."""
    try:
        _background_kicks.submit(phone_number_id)
    except Exception:  # the row is the queue, the sweeper will find it
        logger.warning("dispatch kick failed for %s", phone_number_id, exc_info=True)


def dispatch_kicks_wait(timeout: float = 5.0) -> bool:
    """Block until every kick submitted so far has been rung (shutdown, tests that count drain tasks)."""
    return _background_kicks.wait_sent(timeout)
