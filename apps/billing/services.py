"""Billing: a cost estimate from a default rate table, and the wallet's hooks.

The wallet ledger (reserve on send, charge when Meta reports billable, refund on failure) is not built
yet: its three hooks below are called where the ledger will need them and write nothing today. The
ledger replaces their bodies and keeps their signatures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import phonenumbers
from django.conf import settings

from apps.billing.rates import DEFAULT_RATE_CARD, FREE
from apps.core.models import Workspace


def _country(phone: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone, None)) or "*"
    except phonenumbers.NumberParseException:
        return "*"


def cost_estimate(*, category: str, to_phone: str) -> Decimal:
    """Meta charges delivered template messages only (per-message pricing); free-form messages are free."""
    if not category:
        return FREE
    card = getattr(settings, "BILLING_RATE_CARD", None) or DEFAULT_RATE_CARD
    row = card.get(_country(to_phone)) or card.get("*", {})
    return Decimal(row.get(category.upper(), "0")).quantize(Decimal("0.0001"))


def wallet_reserve(*, workspace: Workspace, amount: Decimal, message_id: str = "") -> None:
    """Always allows until the ledger exists (it will raise InsufficientBalance when the wallet cannot cover `amount`).
    A real reservation writes: the send's single statements (conversations.services.sending: _create's,
    and _send_in_one_statement's, where it must be one of the guarded writes) must then carry that write
    too, or fall back to a transaction."""
    return None


def wallet_currency(*, workspace: Workspace) -> str:
    return "USD"


def message_charge_from_pricing(*, message: Any) -> None:
    """Meta reported an outbound message (conversations' Message) billable: turn its reservation into a
    charge at the price in `message.pricing`. Called by the receive road inside the status transaction.
    Writes nothing until the ledger exists."""
    return None


def message_reservation_release(*, message: Any) -> None:
    """An outbound message (conversations' Message) failed: give its reservation back to the wallet.
    Called by the receive road inside the status transaction. Writes nothing until the ledger exists."""
    return None


def message_charge_sms(*, message: Any) -> None:
    """An SMS (conversations' Message, channel sms) was priced by its gateway: charge
    message.sms_segments x message.sms_price_per_segment (currency message.sms_price_currency) against its
    reservation, once (the receive road calls it each time the price is recorded; it must be idempotent).
    Called inside the transaction that records the price. Writes nothing until the ledger exists."""
    return None
