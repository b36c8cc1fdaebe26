"""`python manage.py serve`: Daphne for HTTP and WebSockets, plus (embedded default, or --with-worker) a
Celery worker and beat running as threads in this same process.

Embedded default (no REDIS_URL): the broker is kombu's in-memory transport, which only exists inside this
process, so the worker and beat always run here. External mode (REDIS_URL set): only the web server runs
unless --with-worker is given (`make run` gives it); production runs `celery worker` and `celery beat`
as their own processes (docker/compose.yaml).
"""

from __future__ import annotations

import logging
import socket
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

logger = logging.getLogger("reach.serve")
BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


class BackgroundWork:
    """A real Celery worker (thread pool) and beat, each on its own thread. Not eager mode: tasks go
    through the broker exactly as they do between separate processes."""

    def __init__(self, *, concurrency: int):
        from celery import current_app as app
        from celery.beat import EmbeddedService

        self.app = app
        self.worker = app.WorkController(
            hostname=f"serve@{socket.gethostname()}",
            pool_cls="threads",
            concurrency=concurrency,
            # One node: nothing to synchronise with, and the memory transport has no fanout exchange.
            without_mingle=True,
            without_gossip=True,
            without_heartbeat=True,
            loglevel=logging.WARNING,
        )
        self.beat = EmbeddedService(app, thread=True, scheduler_cls=BEAT_SCHEDULER)
        self._worker_thread = threading.Thread(target=self._run_worker, name="celery-worker", daemon=True)

    def _run_worker(self) -> None:
        try:
            self.worker.start()
        except Exception:  # the web keeps serving; the operator sees why background work stopped
            logger.exception("the in-process Celery worker stopped")

    def start(self) -> None:
        self._worker_thread.start()
        self.beat.start()

    def stop(self) -> None:
        """Beat first (no new jobs), then a warm worker shutdown: running tasks get up to
        SHUTDOWN_GRACE_SECONDS to finish; long loops end early (request_stop); messages the worker took
        but did not finish are unacked (acks_late) and go back to the broker when its channel closes."""
        from apps.core.runtime.stopping import request_stop

        request_stop()
        try:
            self.beat.stop()
        except Exception:
            logger.exception("stopping beat failed")
        try:
            self.worker.stop(in_sighandler=False)
        except Exception:
            logger.exception("stopping the worker failed")
        self._worker_thread.join(timeout=float(settings.SHUTDOWN_GRACE_SECONDS))
        if self._worker_thread.is_alive():
            logger.warning("the in-process worker did not stop within %s s", settings.SHUTDOWN_GRACE_SECONDS)


class Command(BaseCommand):
    help = "Serve Reach with Daphne; in the embedded default also run a Celery worker and beat in-process."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--with-worker", action="store_true",
                            help="also run a Celery worker and beat in this process (always on when embedded)")
        parser.add_argument("--web-only", action="store_true",
                            help="serve HTTP only, even in the embedded default (background work will not run)")
        parser.add_argument("--concurrency", type=int, default=4, help="worker threads")

    def handle(self, *args, host, port, with_worker, web_only, concurrency, **options):
        from channels.routing import get_default_application
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        application = get_default_application()

        if with_worker and web_only:
            raise CommandError("--with-worker and --web-only contradict each other")
        run_background = not web_only and (settings.EMBEDDED or with_worker)
        mode = "embedded (SQLite/in-memory broker)" if settings.EMBEDDED else "external (PostgreSQL/Redis)"
        if settings.EMBEDDED and not settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
            mode = "embedded broker with DATABASE_URL"
        background = None
        if run_background:
            background = BackgroundWork(concurrency=concurrency)
            background.start()
        elif settings.EMBEDDED:
            self.stderr.write("Warning: --web-only in the embedded default: queued background work will not run.")
        self.stdout.write(
            f"Reach is serving at http://{host}:{port}/ (API /api/v1/, admin /admin/, docs /api/docs) — mode: {mode}; "
            f"background worker and beat: {'in this process' if background else 'not in this process'}."
        )
        self.stdout.flush()
        try:
            Server(
                application=application,
                endpoints=build_endpoint_description_strings(host=host, port=port),
                signal_handlers=True,
                application_close_timeout=10,
                server_name="reach",
            ).run()
        finally:
            if background is not None:
                background.stop()
