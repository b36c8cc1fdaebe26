"""Meta's status `pricing` turned into money, once per message.

Called by the conversations app (which knows Message) inside the transaction that holds the message row
locked; the message is duck-typed here (billing sits below conversations). `message.cost` is the marker:
None until the message is priced, then what was charged (0.0000 when free). The callers save it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils import timezone

from apps.billing.services import ratecard
from apps.billing.services.wallet import ZERO, charge_refund, reservation_settle, wallet_lock
from apps.core.models import Workspace

FREE_TYPES = ("free_customer_service", "free_entry_point")


def pricing_is_free(pricing: dict) -> bool:
    kind = str(pricing.get("type") or "").lower()
    if kind:
        return kind != "regular"
    return pricing.get("billable") is False


def message_charge_from_pricing(*, message: Any) -> Decimal | None:
    """The message's pricing arrived (PMP: pricing_model, category, type): charge the rate card's price for
    its category and market and release the rest of the reservation; a free type releases all. Redelivered
    or out-of-order statuses find `cost` set and do nothing; a failed message is never charged.
    Returns the amount charged, or None when nothing was done."""
    pricing = message.pricing or {}
    if not pricing or message.cost is not None or message.status in ("failed", "canceled"):
        return None
    if pricing_is_free(pricing):
        price = ZERO
    else:
        category = pricing.get("category") or message.template_category
        on = message.created_at.date() if message.created_at else timezone.now().date()
        wallet_lock(workspace=message.workspace)  # before the month's volume count: one lock order
        volume = ratecard.volume_take(workspace=message.workspace, category=category, to_phone=message.to_phone,
                                      on=on)
        price = ratecard.price_for(category=category, to_phone=message.to_phone, workspace=message.workspace,
                                   on=on, volume=volume)
    reservation_settle(workspace=message.workspace, reserved=message.cost_estimate or ZERO, charge=price,
                       message_id=message.pk, campaign_id=message.campaign_id)
    message.cost = price
    return price


def message_reservation_release(*, message: Any) -> Decimal | None:
    """The message failed (or a scheduled one was canceled): its reservation goes back; when it was already
    charged the charge is refunded instead. Returns the refund posted (None when none was). Called once,
    by the move to failed/canceled (a final status never moves again)."""
    workspace = Workspace(pk=message.workspace_id)
    if message.cost is None:
        reservation_settle(workspace=workspace, reserved=message.cost_estimate or ZERO, charge=ZERO,
                           message_id=message.pk, campaign_id=message.campaign_id)
        message.cost = ZERO
        return None
    if message.cost > 0:
        return charge_refund(workspace=workspace, amount=message.cost, message_id=message.pk,
                             campaign_id=message.campaign_id)
    return None


def message_charge_sms(*, message: Any) -> Decimal | None:
    """An SMS was priced by its gateway (sms_segments × sms_price_per_segment): charge that against its
    reservation, once (`cost` set marks it; receipts repeat the price). A failed SMS is never charged."""
    per_segment = getattr(message, "sms_price_per_segment", None)
    if per_segment is None or message.cost is not None or message.status in ("failed", "canceled"):
        return None
    price = (Decimal(per_segment) * Decimal(getattr(message, "sms_segments", None) or 1)).quantize(Decimal("0.0001"))
    reservation_settle(workspace=Workspace(pk=message.workspace_id), reserved=message.cost_estimate or ZERO,
                       charge=price, message_id=message.pk, campaign_id=message.campaign_id)
    message.cost = price
    return price
