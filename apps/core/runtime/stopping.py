"""The process is stopping (SIGTERM to `celery worker`, or `manage.py serve` stopping its in-process worker):
long loops (a dispatch drain's budget) end at their next step instead of holding the shutdown; the work they
leave is still in the database (queued rows) and is picked up by the next worker."""

from __future__ import annotations

import threading

_STOPPING = threading.Event()


def stop_requested() -> bool:
    return _STOPPING.is_set()


def request_stop() -> None:
    _STOPPING.set()
