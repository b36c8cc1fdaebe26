"""python manage.py faketwilio --port 9200 --account-sid ACfake --auth-token fake-token"""

from __future__ import annotations

import contextlib
import threading
from decimal import Decimal

from django.core.management.base import BaseCommand

from apps.providers.sms.fake_twilio import FakeTwilio


class Command(BaseCommand):
    help = "Run a fake Twilio Messages API that posts signed status callbacks (point TWILIO_API_URL at it)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9200)
        parser.add_argument("--account-sid", default="ACfake")
        parser.add_argument("--auth-token", default="fake-token")
        parser.add_argument("--price-per-segment", default="0.0079")
        parser.add_argument("--callback-delay", type=float, default=0.2, help="seconds between status callbacks")

    def handle(self, *args, **opts):
        fake = FakeTwilio(account_sid=opts["account_sid"], auth_token=opts["auth_token"], host=opts["host"],
                          port=opts["port"], price_per_segment=Decimal(opts["price_per_segment"]),
                          callback_delay=opts["callback_delay"])
        self.stdout.write(f"faketwilio listening on {fake.base_url} (account {fake.account_sid})")
        self.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            fake.start()
            threading.Event().wait()
        fake.stop()
