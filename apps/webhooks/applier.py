"""The web process applies the Meta webhooks it has just stored, on one background thread, instead of
waiting for a Celery worker to be rung, take the task and claim the row (that hop was most of the time
from POST /webhooks/meta to the inbox's WebSocket frame).

Nothing about the guarantees changes: the row is committed before the 200 and stays the queue. The
thread claims rows through the drain's own claim and lease (services.inbound.inbound_webhooks_apply_stored),
so a row is applied once whoever gets it first; what this process never got to (it died, its queue was
full, the database hiccuped) is left to the worker: a full queue or a failed claim rings the drain's
doorbell at once, anything else the periodic sweeper finds, and a claim whose process died comes back when
its lease runs out, as a worker's does.

One thread, taking whatever queued up meanwhile as one batch: one transaction and one commit for a burst,
rows in the order they arrived, and the GIL left to the event loop between batches. Only a served process
(the ASGI fast path, apps/webhooks/asgi_inbound.py) hands rows over; settings.INBOUND_APPLY_IN_WEB turns it off.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading

from django.conf import settings
from django.db import connection

logger = logging.getLogger("reach.webhooks.inbound")


class InboundApplier:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()  # None: stop
        self._lock = threading.Lock()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._exit_hooked = False

    def offer(self, webhook_id: str) -> bool:
        """Take a stored row to apply here; False (the caller rings a worker) when turned off or too far
        behind."""
        if not settings.INBOUND_APPLY_IN_WEB:
            return False
        with self._lock:
            if self._pending >= settings.INBOUND_APPLY_IN_WEB_MAX_PENDING:
                return False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="inbound-applier", daemon=True)
                self._thread.start()
                if not self._exit_hooked:
                    self._exit_hooked = True
                    # A stopping server (SIGTERM: the interpreter's exit) applies what it took first, rather
                    # than leaving it to the sweeper, or a claim to its lease. The hook runs before threads
                    # are joined (apps/core/runtime/shutdown.py arms the same one for its exit watchdog, which
                    # bounds this too).
                    with contextlib.suppress(RuntimeError):  # already exiting: the thread just dies with it
                        threading._register_atexit(self._close_at_exit)  # noqa: SLF001
            self._pending += 1
        self._queue.put(webhook_id)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread after what is queued (it hands its connection back); the next offer starts a new
        one. Rows still queued when a process simply dies are the sweeper's."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)

    def _close_at_exit(self) -> None:
        try:
            self.close(timeout=settings.SHUTDOWN_GRACE_SECONDS)
        except Exception:  # exiting anyway: what is left is the sweeper's
            logger.exception("the inbound applier did not stop cleanly")

    def _run(self) -> None:
        try:
            while True:
                ids = [self._queue.get()]
                while len(ids) < settings.INBOUND_WEBHOOK_DRAIN_BATCH:
                    try:
                        ids.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = None in ids
                ids = [i for i in ids if i is not None]
                try:
                    failed = apply_batch(ids) is None
                finally:
                    with self._lock:
                        self._pending -= len(ids)
                if failed or (connection.settings_dict.get("OPTIONS") or {}).get("pool"):
                    connection.close()  # broken: replaced on next use; pooled: handed back between batches
                if stop:
                    return
        finally:
            connection.close()


def apply_batch(webhook_ids: list[str]) -> int | None:
    """Apply these stored rows here; how many were processed. On any failure (None) ring the worker's
    drain, which claims whatever of them is still due (a row that failed inside processing was already
    given its retry time there)."""
    from apps.webhooks.services import inbound

    try:
        return inbound.inbound_webhooks_apply_stored(webhook_ids=webhook_ids)
    except Exception:
        logger.exception("applying %d stored webhooks in the web process failed; ringing the worker",
                         len(webhook_ids))
        inbound.inbound_webhook_ring_worker()
        return None


applier = InboundApplier()
