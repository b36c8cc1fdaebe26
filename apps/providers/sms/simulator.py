"""The simulated SMS gateway: records every send in Redis (shared by all workers) so the sandbox and tests
can see what went out. Magic numbers: +15550002001 always fails (terminal), +15550002002 fails once with a
retryable error and then succeeds."""

from __future__ import annotations

import json
import re
import time

from ulid import ULID

from apps.core.redis import get_redis
from apps.providers.base import ProviderError
from apps.providers.sms.base import SmsPrice, SmsResult
from apps.providers.sms.segments import sms_segments

MAGIC_SMS_UNDELIVERABLE = "+15550002001"
MAGIC_SMS_TRANSIENT_ONCE = "+15550002002"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAX_SEGMENTS_TEXT = 1600


class SimulatorSmsGateway:
    name = "simulator"

    def __init__(self, *, redis=None, key: str = "sim:sms:sent", keep: int = 10000):
        self._redis = redis
        self.key = key
        self.keep = keep

    @property
    def redis(self):
        return self._redis or get_redis()

    def send_sms(self, *, to: str, text: str, sender: str = "") -> SmsResult:
        if not E164.match(to or ""):
            raise ProviderError(code="INVALID_REQUEST", message="`to` must be an E.164 number", retryable=False)
        if not text or len(text) > MAX_SEGMENTS_TEXT:
            raise ProviderError(code="INVALID_REQUEST", message=f"text must be 1-{MAX_SEGMENTS_TEXT} characters",
                                retryable=False)
        if to == MAGIC_SMS_UNDELIVERABLE:
            raise ProviderError(code="SMS_UNDELIVERABLE", message="The carrier rejected the number.",
                                retryable=False, http_status=400)
        if to == MAGIC_SMS_TRANSIENT_ONCE and self.redis.incr(f"{self.key}:transient:{to}") == 1:
            raise ProviderError(code="UPSTREAM_UNAVAILABLE", message="SMS gateway busy, try again.",
                                retryable=True, retry_after=1.0, http_status=503)
        sms_id = f"sms_{ULID()}"
        segments = sms_segments(text).segments
        record = {"id": sms_id, "to": to, "text": text, "sender": sender, "at": time.time(), "segments": segments}
        pipe = self.redis.pipeline()
        pipe.lpush(self.key, json.dumps(record))
        pipe.ltrim(self.key, 0, self.keep - 1)
        pipe.execute()
        price = self._price(segments)
        return SmsResult(provider_message_id=sms_id, segments=segments, price=price.total, price_unit=price.currency)

    @staticmethod
    def _price(segments: int) -> SmsPrice:
        from django.conf import settings

        return SmsPrice(total=settings.SMS_SIMULATOR_PRICE_PER_SEGMENT * segments, currency="USD", segments=segments)

    def message_price(self, *, provider_message_id: str) -> SmsPrice | None:
        return None  # the simulator prices each message when it accepts it

    def sent(self, limit: int = 100) -> list[dict]:
        """Most recent first."""
        return [json.loads(x) for x in self.redis.lrange(self.key, 0, limit - 1)]
