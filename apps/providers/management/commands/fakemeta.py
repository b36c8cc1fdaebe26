"""python manage.py fakemeta --port 9100 --webhook-url http://127.0.0.1:8000/webhooks/meta --app-secret S"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.providers.simulator.engine import MemoryState, SimConfig, SimulatorEngine
from apps.providers.simulator.server import FakeMetaServer


class Command(BaseCommand):
    help = "Run the fake Meta Graph API (send, media, templates) that posts signed webhooks back."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9100)
        parser.add_argument("--webhook-url", default=None, help="where statuses/inbound webhooks are POSTed")
        parser.add_argument("--app-secret", default=None, help="signs X-Hub-Signature-256 (default META_APP_SECRET)")
        parser.add_argument("--approve-delay", type=float, default=None, help="template review time, seconds")
        parser.add_argument("--mps", type=float, default=None, help="default per-number throughput (80)")
        parser.add_argument("--number-mps", action="append", default=[], metavar="PNID=MPS",
                            help="throughput for one phone number id (repeatable)")
        parser.add_argument("--burst-seconds", type=float, default=None,
                            help="throughput bucket holds mps x this many tokens (default 1.0)")
        parser.add_argument("--no-pair-limit", action="store_true", help="disable the 1/6 s (burst 45) pair limit")
        parser.add_argument("--no-window-check", action="store_true", help="do not fail free-form sends with 131047")
        parser.add_argument("--lenient-templates", action="store_true",
                            help="accept templates the fake never saw instead of answering 132001")
        parser.add_argument("--status-delays", default=None, metavar="SENT,DELIVERED,READ",
                            help="seconds after the send for each status, e.g. 0.05,0.3,1")
        parser.add_argument("--verify-token", default=None,
                            help="perform Meta's GET hub.challenge handshake against --webhook-url at startup")
        parser.add_argument("--webhook-max-attempts", type=int, default=8,
                            help="POST attempts per webhook batch before it is dropped (backoff 0.25 s doubling)")
        parser.add_argument("--batch-max", type=int, default=1000, help="max updates per webhook POST")

    def handle(self, *args, **opts):
        logging.getLogger("reach.fakemeta").setLevel(logging.INFO)
        overrides: dict = {
            "approve_delay": opts["approve_delay"],
            "default_mps": opts["mps"],
            "throughput_burst_seconds": opts["burst_seconds"],
            "mps_overrides": {k: float(v) for k, v in (p.split("=", 1) for p in opts["number_mps"])} or None,
        }
        if opts["no_pair_limit"]:
            overrides["pair_limit_enabled"] = False
        if opts["no_window_check"]:
            overrides["enforce_window"] = False
        if opts["lenient_templates"]:
            overrides["strict_templates"] = False
        if opts["status_delays"]:
            sent, delivered, read = (float(x) for x in opts["status_delays"].split(","))
            overrides.update(sent_delay=sent, delivered_delay=delivered, read_delay=read)
        config = SimConfig.from_settings(**overrides)
        server = FakeMetaServer(engine=SimulatorEngine(config=config, state=MemoryState()),
                                webhook_url=opts["webhook_url"],
                                app_secret=opts["app_secret"] or settings.META_APP_SECRET,
                                host=opts["host"], port=opts["port"], webhook_batch_max=opts["batch_max"],
                                webhook_max_attempts=opts["webhook_max_attempts"])

        async def main():
            await server.start()
            # Long-lived state (templates, buckets, pending webhooks) makes default GC passes costly at
            # thousands of requests/s; collect young objects less often and keep startup objects out of it.
            gc.collect()
            gc.freeze()
            gc.set_threshold(20000, 20, 50)
            if opts["verify_token"]:
                verified = await server.verify_webhook(opts["verify_token"])
                self.stdout.write(f"webhook verification handshake: {'ok' if verified else 'FAILED'}")
            self.stdout.write(f"fakemeta listening on {server.base_url} (webhooks -> {opts['webhook_url']}, "
                              f"mps {config.default_mps}, pair limit {config.pair_limit_enabled})")
            try:
                await asyncio.Event().wait()
            finally:
                await server.stop()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
