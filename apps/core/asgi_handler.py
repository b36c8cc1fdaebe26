"""Django's ASGI handler, with the hot API routes served by a pool of threads.

Under ASGI, Django serves each request inside a fresh thread-sensitive context: it starts a thread for
the request's synchronous work (signals, middleware, the view) and joins it at the end, and a request
waiting on PostgreSQL in there holds the GIL-free wait for itself only. For the routes listed in
settings.API_THREADED_PATHS (the send API: several round trips per request), this handler instead runs
the same synchronous handler (the full middleware chain, DRF, audit, idempotency: nothing is skipped) on
a fixed pool of threads, as a threaded WSGI server would: no thread per request, and the database waits
of concurrent requests overlap. Each pool thread hands its database connection back after every request
(request_finished fires in that thread). Off with SQLite (one writer) and when the setting is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.db import connections
from django.urls import set_script_prefix


class ThreadedRoutesASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self.threaded_paths = frozenset(settings.API_THREADED_PATHS) if settings.IS_POSTGRES else frozenset()
        self._sync_handler = None
        self._pool = None
        if self.threaded_paths:
            self._sync_handler = BaseHandler()
            self._sync_handler.load_middleware(is_async=False)
            self._pool = ThreadPoolExecutor(max_workers=settings.API_THREADS, thread_name_prefix="api")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") not in self.threaded_paths:
            return await super().__call__(scope, receive, send)
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return None
        try:
            response = await asyncio.get_running_loop().run_in_executor(self._pool, self._serve, scope, body_file)
            with contextlib.suppress(asyncio.CancelledError):  # the client went away while we answered
                await self.send_response(response, send)
            if response.streaming:
                await sync_to_async(self._close, thread_sensitive=False)(response)
        finally:
            body_file.close()
        return None

    def _serve(self, scope, body_file):
        """One request, start to finish, on a pool thread (what WSGIHandler.__call__ does per request)."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self._sync_handler.get_response(request)
        response._handler_class = self.__class__
        if not response.streaming:
            self._close(response)  # the body is in memory; closing fires request_finished in this thread
        return response

    @staticmethod
    def _close(response) -> None:
        try:
            response.close()
        finally:
            # request_finished closed this thread's connection if it was old; a pooled one goes back now.
            if (connections["default"].settings_dict.get("OPTIONS") or {}).get("pool"):
                connections["default"].close()
