from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SmsResult:
    provider_message_id: str


class SmsGateway(Protocol):
    def send_sms(self, *, to: str, text: str, sender: str) -> SmsResult:
        """Send one SMS; raises apps.providers.base.ProviderError (retryable or terminal)."""
        ...
