"""What every step of the dispatcher shares: settings, the outcome of one send, a claimed batch."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings

from apps.conversations.models import Message

logger = logging.getLogger("reach.dispatch")


def _setting(name: str, default):
    return getattr(settings, name, default)


@dataclass
class Outcome:
    message: Message
    kind: str  # accepted | retryable | terminal | deferred | unknown (the send may have reached Meta)
    provider_message_id: str = ""
    error: object | None = None  # ProviderError-like: code, message, upstream_code, retry_after, http_status
    defer_seconds: float = 0.0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    latency_ms: int | None = None
    sms: object | None = None  # an SMS gateway's SmsResult (segments, price) once accepted


@dataclass
class Batch:
    token: str
    messages: list[Message] = field(default_factory=list)


class _Terminal(Exception):
    def __init__(self, code: str, message: str, upstream_code=None, retryable=False, retry_after=None):
        super().__init__(message)
        self.code, self.message, self.upstream_code = code, message, upstream_code
        self.retryable, self.retry_after, self.http_status, self.not_on_whatsapp = retryable, retry_after, None, False
