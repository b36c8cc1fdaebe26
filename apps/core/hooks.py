"""Dependency inversion for the layers: core cannot import the apps above it, so they register here
(in AppConfig.ready) to be called by core's write layer. These are explicit calls made by services,
not Django signals.

- workspace provisioners run inside workspace_create's transaction (e.g. the sandbox's simulated WABA);
- event listeners run after the commit of a transaction that appended events: a fast path only (the
  event rows themselves are the durable queue), so a failing listener is logged and ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger("reach.hooks")


@dataclass(frozen=True)
class CommittedEvent:
    id: str
    workspace_id: str
    sequence: int
    type: str
    # The public envelope, built from the write itself, so after-commit pushers need not re-read the row.
    envelope: dict | None = None


_workspace_provisioners: list[Callable] = []
_waba_resolver: list[Callable] = []
_event_listeners: list[Callable[[list[CommittedEvent]], None]] = []


def register_workspace_provisioner(fn: Callable) -> None:
    if fn not in _workspace_provisioners:
        _workspace_provisioners.append(fn)


def workspace_provisioners() -> list[Callable]:
    return list(_workspace_provisioners)


def register_event_listener(fn: Callable[[list[CommittedEvent]], None]) -> None:
    if fn not in _event_listeners:
        _event_listeners.append(fn)


def notify_events_committed(events: list[CommittedEvent]) -> None:
    for listener in list(_event_listeners):
        try:
            listener(events)
        except Exception:  # the sweepers pick up whatever a failed fast path missed
            logger.exception("event listener %r failed", listener)


def register_waba_resolver(fn: Callable) -> None:
    """fn(workspace, waba_id) -> bool: does this WABA exist in this workspace (wabas app registers it)."""
    _waba_resolver[:] = [fn]


def waba_resolver() -> Callable | None:
    return _waba_resolver[0] if _waba_resolver else None


_inbound_sink: list[Callable] = []


def register_inbound_sink(fn: Callable) -> None:
    """fn(*, payload: dict, delay_seconds: float = 0, source: str = "simulator") stores a Meta-shaped webhook
    payload into the receive road (the webhooks app registers it). Lets the in-process sandbox simulator,
    called from lower apps, deliver statuses and inbound messages through the same road as live traffic."""
    _inbound_sink[:] = [fn]


def deliver_inbound(*, payload: dict, delay_seconds: float = 0.0, source: str = "simulator") -> None:
    if not _inbound_sink:
        raise RuntimeError("no inbound sink registered (is apps.webhooks installed?)")
    _inbound_sink[0](payload=payload, delay_seconds=delay_seconds, source=source)



_startup: list[Callable] = []


def register_process_start(fn: Callable[[], None]) -> None:
    """fn() runs once when a server process starts (manage.py serve), before it takes traffic: e.g. the
    conversations app rebuilds the in-process simulator's window records from the database, because the
    embedded default's Redis lives in memory and a restart empties it."""
    if fn not in _startup:
        _startup.append(fn)


def process_started() -> None:
    for fn in list(_startup):
        try:
            fn()
        except Exception:  # a start-up nicety must not keep the server down
            logger.exception("start-up hook %r failed", fn)


_receive_watermark: list[Callable] = []


def register_receive_watermark(fn: Callable) -> None:
    """fn() -> datetime | None: when the oldest stored Meta webhook still waiting to be applied was received
    (None: none waits). Every webhook received before it has been applied. The webhooks app registers it;
    the dispatcher's lease recovery reads it (a report of a send may sit in that backlog)."""
    _receive_watermark[:] = [fn]


def receive_watermark():
    return _receive_watermark[0]() if _receive_watermark else None
