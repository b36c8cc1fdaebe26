"""A dedicated outbound-webhook worker: fans events out and delivers, until stopped (or idle with
--until-idle). Celery's sweep does the same in bounded runs; this is for a busy installation."""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand

from apps.webhooks.services.outbound import DeliveryRunner


class Command(BaseCommand):
    help = "Deliver outbound webhooks (fan-out + delivery) until SIGTERM/SIGINT."

    def add_arguments(self, parser):
        parser.add_argument("--until-idle", action="store_true", help="exit when nothing is due")
        parser.add_argument("--max-seconds", type=float, default=None)
        parser.add_argument("--concurrency", type=int, default=None)

    def handle(self, *args, until_idle, max_seconds, concurrency, **options):
        stopping = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.append(True))
        with DeliveryRunner(concurrency=concurrency) as runner:
            recorded = runner.run(until_idle=until_idle, max_seconds=max_seconds, stop=lambda: bool(stopping))
        self.stderr.write(f"recorded {recorded} attempts, {runner.delivered} delivered")
