"""The SMS gateway surface every adapter offers, and the plain values they return (no models here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class SmsResult:
    provider_message_id: str
    segments: int | None = None  # as the gateway counted them (else our own count is used)
    price: Decimal | None = None  # the gateway's total price for the message, when it says so at once
    price_unit: str = ""


@dataclass(frozen=True)
class SmsPrice:
    """What the gateway charged for one message: the total, its currency and the segments it counted."""

    total: Decimal
    currency: str
    segments: int

    @property
    def per_segment(self) -> Decimal:
        return (self.total / self.segments).quantize(Decimal("0.000001")) if self.segments else self.total


@dataclass(frozen=True)
class SmsStatusUpdate:
    """A delivery receipt, in our statuses (sent | delivered | read | failed; '' for the in-between ones)."""

    provider_message_id: str
    status: str
    upstream_status: str
    at: datetime
    error_code: str = ""
    error_message: str = ""
    price: SmsPrice | None = None


@dataclass(frozen=True)
class SmsInbound:
    provider_message_id: str
    from_phone: str
    to_phone: str
    text: str
    at: datetime
    segments: int = 1


class SmsGateway(Protocol):
    name: str

    def send_sms(self, *, to: str, text: str, sender: str) -> SmsResult:
        """Send one SMS; raises apps.providers.base.ProviderError (retryable or terminal)."""
        ...

    def message_price(self, *, provider_message_id: str) -> SmsPrice | None:
        """The final price of a sent message, once the gateway knows it (None: not yet / never)."""
        ...
