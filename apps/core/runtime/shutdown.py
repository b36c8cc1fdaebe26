"""Daphne stops gracefully on SIGTERM/SIGINT.

Daphne's own shutdown (`Server.kill_all_applications`, a "before shutdown" trigger) cancels every
application instance at once and stops the event loop. A Django request served under ASGI runs its
synchronous middleware in a thread that calls back into that loop (`ApiErrorMiddleware` -> `AsyncToSync`
-> the async inner handler): with the loop stopped, the thread waits forever, and the interpreter, which
joins executor threads at exit, never exits. Under load, SIGTERM hung the process.

What this patch makes Daphne do instead:
1. stop accepting: every listening port stops listening at once;
2. let the HTTP requests in flight finish, up to settings.SHUTDOWN_GRACE_SECONDS (WebSockets are closed:
   they never finish by themselves, the browser reconnects elsewhere);
3. only then cancel what is left (Daphne's original trigger). If anything had to be cancelled, its request
   thread may be stuck on the stopped loop: a watchdog, armed only then, ends the process (status 0) a
   moment after the interpreter starts its exit, instead of letting it wait for that thread forever.

Applied from reach/asgi.py, hence under both `manage.py serve` and the `daphne` command."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

from daphne import server as daphne_server
from django.conf import settings
from twisted.internet import defer, reactor

logger = logging.getLogger("reach.serve")
_ORIGINAL_LISTEN_SUCCESS = daphne_server.Server.listen_success
_ORIGINAL_CREATE_APPLICATION = daphne_server.Server.create_application
EXIT_WATCHDOG_SECONDS = 2.0


def _in_flight(server) -> list:
    """HTTP application instances still running (WebSocket ones never finish by themselves)."""
    from daphne.http_protocol import WebRequest

    busy = []
    for protocol, details in list(getattr(server, "connections", {}).items()):
        instance = details.get("application_instance")
        if instance is not None and not instance.done() and isinstance(protocol, WebRequest):
            busy.append(instance)
    return busy


def _close_websockets(server) -> None:
    from daphne.ws_protocol import WebSocketProtocol

    for protocol in list(getattr(server, "connections", {})):
        if isinstance(protocol, WebSocketProtocol):
            try:
                protocol.sendClose(code=1001)  # going away
            except Exception:  # noqa: BLE001 - a half-open socket must not stop the shutdown
                logger.debug("closing a websocket at shutdown failed", exc_info=True)


def _listen_success(self, port):
    self.__dict__.setdefault("_reach_ports", []).append(port)
    return _ORIGINAL_LISTEN_SUCCESS(self, port)


def _no_keep_alive(protocol) -> None:
    channel = getattr(protocol, "channel", None)
    if channel is not None:
        channel.persistent = False  # Twisted closes the connection once this response is written


def _create_application(self, protocol, scope):
    """While draining, a request arriving on a kept-alive connection is refused with 503 and the
    connection closed: the client retries it elsewhere, and the drain ends."""
    from daphne.http_protocol import WebRequest

    if self.__dict__.get("_reach_draining") and isinstance(protocol, WebRequest):
        _no_keep_alive(protocol)
        protocol.responseHeaders.setRawHeaders(b"retry-after", [b"1"])
        protocol.basic_error(503, b"Service Unavailable", "The server is shutting down.")
        return None
    return _ORIGINAL_CREATE_APPLICATION(self, protocol, scope)


def _graceful_kill_all_applications(self):
    """The "before shutdown" trigger: stop accepting, drain, then cancel what is left."""
    self._reach_draining = True
    for protocol in list(getattr(self, "connections", {})):
        _no_keep_alive(protocol)
    for port in self.__dict__.get("_reach_ports", []):
        try:
            port.stopListening()
        except Exception:  # noqa: BLE001
            logger.debug("stopListening failed", exc_info=True)
    _close_websockets(self)
    grace = float(getattr(settings, "SHUTDOWN_GRACE_SECONDS", 10.0))
    deadline = time.monotonic() + grace
    logger.info("shutting down: no new connections; %d request(s) in flight, waiting up to %.0f s",
                len(_in_flight(self)), grace)
    done = defer.Deferred()

    def poll() -> None:
        busy = _in_flight(self)
        if busy and time.monotonic() < deadline:
            reactor.callLater(0.05, poll)
            return
        if busy:
            logger.warning("%d request(s) still running after %.0f s: cancelled", len(busy), grace)
            _arm_exit_watchdog()
        _cancel_all(self).chainDeferred(done)

    poll()
    return done


def _cancel_all(server) -> defer.Deferred:
    """Daphne's own trigger, minus its KeyError on a connection that has no application yet."""
    wait_for = []
    for details in list(server.connections.values()):
        instance = details.get("application_instance")
        if instance is not None and not instance.done():
            instance.cancel()
            wait_for.append(instance)
    killed = defer.Deferred.fromFuture(asyncio.gather(*wait_for))
    killed.addErrback(lambda _: None)
    return killed


def _arm_exit_watchdog() -> None:
    """Once the interpreter begins its exit (threading's own exit hooks run before it joins threads), end
    the process if a request thread stuck on the stopped loop holds it."""

    def watchdog() -> None:
        time.sleep(EXIT_WATCHDOG_SECONDS)
        logging.shutdown()
        os._exit(0)

    def start() -> None:
        threading.Thread(target=watchdog, name="exit-watchdog", daemon=True).start()

    threading._register_atexit(start)  # noqa: SLF001 - the only hook that runs before threads are joined


def daphne_graceful_shutdown() -> bool:
    """Install the graceful trigger on Daphne's Server (idempotent)."""
    if daphne_server.Server.kill_all_applications is _graceful_kill_all_applications:
        return True
    daphne_server.Server.kill_all_applications = _graceful_kill_all_applications
    daphne_server.Server.listen_success = _listen_success
    daphne_server.Server.create_application = _create_application
    return True
