"""The billing app's event types: wallet.low_balance and wallet.topped_up (API.md "Money")."""

from __future__ import annotations

from typing import Any

from apps.core.events import event_type_register
from apps.core.events.schema import STRING, nullable, obj

_MONEY = {"type": "string", "pattern": r"^-?\d+\.\d{4}$"}
_WALLET = {"currency": STRING, "balance": _MONEY, "reserved": _MONEY, "available": _MONEY,
           "credit_limit": _MONEY, "low_balance_threshold": _MONEY}


def _money(value) -> str:
    return f"{value:.4f}"


def wallet_state(wallet) -> dict[str, Any]:
    """The wallet as GET /api/v1/balance answers it."""
    return {"currency": wallet.currency, "balance": _money(wallet.balance), "reserved": _money(wallet.reserved),
            "available": _money(wallet.balance + wallet.credit_limit - wallet.reserved),
            "credit_limit": _money(wallet.credit_limit), "low_balance_threshold": _money(wallet.low_balance_threshold)}


def wallet_low_balance(*, wallet) -> dict[str, Any]:
    return wallet_state(wallet)


def wallet_topped_up(*, wallet, entry) -> dict[str, Any]:
    return {**wallet_state(wallet), "transaction_id": entry.pk, "kind": entry.kind, "amount": _money(entry.amount),
            "note": entry.note, "created_by": entry.created_by or None}


_EXAMPLE = {"currency": "USD", "balance": "4.2000", "reserved": "0.5000", "available": "3.7000",
            "credit_limit": "0.0000", "low_balance_threshold": "5.0000"}
event_type_register(
    "wallet.low_balance", public=True, schema=obj(_WALLET), example=_EXAMPLE,
    description="The wallet's available amount crossed its low-balance threshold downwards (once per crossing).")
event_type_register(
    "wallet.topped_up", public=True,
    schema=obj({**_WALLET, "transaction_id": STRING, "kind": STRING, "amount": _MONEY,
                "note": STRING, "created_by": nullable(STRING)}),
    example={**_EXAMPLE, "balance": "104.2000", "available": "103.7000", "transaction_id": "wtx_01HNQX2P8Y9R3T4V5W6Z7A8B9C",
             "kind": "topup", "amount": "100.0000", "note": "Invoice 1042", "created_by": "admin"},
    description="Money was added to the wallet (a top-up, or a positive adjustment).")
