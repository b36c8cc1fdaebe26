"""One asyncio event loop per process in a daemon thread, for code that runs coroutines from sync code
(the dispatcher's concurrent HTTP client)."""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Callable
from concurrent.futures import Future


class LoopThread:
    """`submit(coro)` runs the coroutine on the loop, started on first use (and again in a forked child,
    whose copy of the thread is gone). `at_exit(loop)` runs at interpreter exit while the loop still runs
    (close pooled connections on their own loop)."""

    def __init__(self, name: str, *, at_exit: Callable[[asyncio.AbstractEventLoop], None] | None = None):
        self.name = name
        self._at_exit = at_exit
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def submit(self, coro) -> Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop())

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or not self._loop.is_running():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run():
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                threading.Thread(target=run, name=self.name, daemon=True).start()
                ready.wait(5)
                self._loop = loop
                if self._at_exit is not None:
                    atexit.register(self._exit, loop)
            return self._loop

    def _exit(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop.is_running() and self._at_exit is not None:
            self._at_exit(loop)
