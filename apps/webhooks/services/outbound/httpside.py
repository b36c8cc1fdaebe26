"""The runner's HTTP process: a forked child that only signs and sends (sender.send_one on its own
event loop, so the HTTP work has a GIL of its own) while the parent claims and records in PostgreSQL.

Wire: a socketpair, frames of a 4-byte big-endian length and a pickle. Parent -> child: a list of
(delivery id, url, body, keys) to send now. Child -> parent: a list of finished attempts,
(delivery id, request id, started and finished in epoch seconds, status, latency ms, error, excerpt, retry_after).
The parent keeps each ClaimedDelivery until its attempt comes back.

Nothing is lost when either side dies. The database is the truth: every delivery the child holds is
leased in PostgreSQL, so a SIGKILLed child's deliveries are claimed again once their lease passes (the
same row, so the same webhook-id) after the parent has noticed (EOF) and forked a new child. A dead
parent closes the socket: the child sees EOF, drops what it holds (leased, so redelivered) and exits.
The child ignores SIGINT/SIGTERM: the parent finishes what is in flight, then closes the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import pickle
import signal
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from apps.webhooks.services.outbound.engine import AttemptOutcome, ClaimedDelivery
from apps.webhooks.services.outbound.sender import attempt, make_session, request_id

logger = logging.getLogger("reach.webhooks.outbound")
_HEADER = struct.Struct("!I")
Outcome = tuple  # (id, request_id, started ts, finished ts, status_code, latency_ms, error, excerpt, retry_after)


def available() -> bool:
    return hasattr(os, "fork")


# --- child ---------------------------------------------------------------------------------------

def _drop_inherited_sockets(*, keep: int) -> None:
    """Point every inherited socket (the parent's PostgreSQL and Redis connections, listeners) at
    /dev/null: the child never uses them, and a parent that dies must take its database sessions with
    it at once, not when this process exits. dup2, not close: the descriptor numbers stay taken, so a
    stale Python object of the parent's can never close one of this process's own sockets."""
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: nothing dropped (the sockets close when this process exits)
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in fds:
            if fd in (0, 1, 2, keep, null):  # stdout may be a socket (a journal): keep the logs
                continue
            try:
                if stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.dup2(null, fd)
            except OSError:  # the listing's own descriptor, already gone
                continue
    finally:
        os.close(null)


def _child_main(sock: socket.socket, *, concurrency: int, timeout: float, excerpt_bytes: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve(sock, concurrency=concurrency, timeout=timeout, excerpt_bytes=excerpt_bytes))
    finally:
        loop.close()


async def _serve(sock: socket.socket, *, concurrency: int, timeout: float, excerpt_bytes: int) -> None:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=1 << 22)
    session = make_session(concurrency=concurrency)
    finished: list[Outcome] = []
    tasks: set[asyncio.Task] = set()

    def flush() -> None:
        # Everything that finished in this turn of the loop goes back as one frame.
        payload = pickle.dumps(finished, protocol=pickle.HIGHEST_PROTOCOL)
        finished.clear()
        writer.write(_HEADER.pack(len(payload)) + payload)

    async def one(item: tuple) -> None:
        delivery_id, url, body, keys = item
        try:
            row = (delivery_id, *await attempt(session, webhook_id=delivery_id, url=url, body=body, keys=keys,
                                               timeout=timeout, cap=excerpt_bytes))
        except Exception as exc:  # a bug must not strand the claim until its lease runs out
            logger.exception("webhook send crashed for %s", delivery_id)
            now = time.time()
            row = (delivery_id, request_id(), now, now, None, 0, f"internal error: {type(exc).__name__}", "", None)
        if not finished:
            loop.call_soon(flush)
        finished.append(row)

    try:
        while True:
            try:
                size = _HEADER.unpack(await reader.readexactly(_HEADER.size))[0]
                items = pickle.loads(await reader.readexactly(size))  # noqa: S301 - our own parent, over a socketpair
            except (asyncio.IncompleteReadError, ConnectionError):
                return  # the parent closed the socket (done, or dead): what is in flight stays leased
            for item in items:
                task = loop.create_task(one(item))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    finally:
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await session.close()
        writer.close()


# --- parent --------------------------------------------------------------------------------------

class HttpProcess:
    """The parent's handle on one forked HTTP child. `on_outcomes(list)` is called on a reader thread
    with finished AttemptOutcomes; `on_exit()` once, on that thread, when the child is gone."""

    def __init__(self, *, concurrency: int, timeout: float, excerpt_bytes: int,
                 on_outcomes: Callable[[list[AttemptOutcome]], None], on_exit: Callable[[], None]):
        self.claimed: dict[str, ClaimedDelivery] = {}  # sent, no outcome yet
        self._on_outcomes = on_outcomes
        self._on_exit = on_exit
        parent_sock, child_sock = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child (coverage does not follow a fork)
            code = 0
            try:
                gc.freeze()  # inherited garbage is never finalized here (a psycopg connection would say goodbye)
                parent_sock.close()
                _drop_inherited_sockets(keep=child_sock.fileno())
                _child_main(child_sock, concurrency=concurrency, timeout=timeout, excerpt_bytes=excerpt_bytes)
            except BaseException:
                logger.exception("webhook HTTP process failed")
                code = 1
            finally:
                # Never run the parent's atexit hooks or finalizers here (its database connections are
                # inherited descriptors: closing them politely would end the parent's sessions).
                os._exit(code)
        child_sock.close()
        self.pid = pid
        self.returncode: int | None = None
        self._sock = parent_sock
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_loop, name="webhook-http-reader", daemon=True)
        self._reader.start()

    def send(self, items: list[ClaimedDelivery]) -> None:
        """Hand deliveries to the child. A dead child raises nothing here: its EOF reaches on_exit, and
        every delivery in self.claimed is then given up (leased in the database, so not lost)."""
        for item in items:
            self.claimed[item.id] = item
        payload = pickle.dumps([(c.id, c.url, c.body, c.keys) for c in items], protocol=pickle.HIGHEST_PROTOCOL)
        try:
            with self._send_lock:
                self._sock.sendall(_HEADER.pack(len(payload)) + payload)
        except OSError:
            logger.warning("webhook HTTP process %s is gone; %s deliveries wait for their lease", self.pid,
                           len(items))

    def _read_loop(self) -> None:
        stream = self._sock.makefile("rb", buffering=1 << 16)
        fromtimestamp = datetime.fromtimestamp
        try:
            while True:
                header = stream.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    return
                (size,) = _HEADER.unpack(header)
                payload = stream.read(size)
                if len(payload) < size:
                    return
                outcomes = []
                for (delivery_id, req_id, started, finished, code, latency, error, excerpt,
                     retry_after) in pickle.loads(payload):  # noqa: S301 - our own child
                    claimed = self.claimed.pop(delivery_id, None)
                    if claimed is None:  # pragma: no cover - never sent by this parent
                        continue
                    outcomes.append(AttemptOutcome(
                        claimed=claimed, request_id=req_id, started_at=fromtimestamp(started, UTC),
                        finished_at=fromtimestamp(finished, UTC),
                        status_code=code, latency_ms=latency, error=error, response_excerpt=excerpt,
                        retry_after=retry_after,
                    ))
                if outcomes:
                    self._on_outcomes(outcomes)
        except (OSError, ValueError, pickle.UnpicklingError):
            logger.exception("webhook HTTP process %s: reading its results failed", self.pid)
        finally:
            stream.close()
            self._reap(block=False)
            self._on_exit()

    def _reap(self, *, block: bool) -> bool:
        """True once the child has exited (and is reaped)."""
        if self.returncode is not None:
            return True
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped by the other thread
            return True
        if pid:
            self.returncode = os.waitstatus_to_exitcode(status)
            return True
        return False

    def close(self, *, timeout: float = 10.0) -> None:
        """Close the socket (the child drops anything still in flight, leased, and exits) and wait."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._reader.join(timeout=timeout)
        self._sock.close()
        deadline = time.monotonic() + timeout
        while not self._reap(block=False):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self._reap(block=True)
                break
            time.sleep(0.005)

    def kill(self) -> None:
        """Tests: SIGKILL the child, as a crash would."""
        os.kill(self.pid, signal.SIGKILL)
