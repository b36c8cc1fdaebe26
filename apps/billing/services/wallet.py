"""The wallet and its ledger: every movement is one LedgerEntry written with the wallet's new state,
under the wallet row's lock (or, in the writer's one-statement send, one guarded UPDATE: reserve_sql).

available = balance + credit_limit - reserved. A reservation that `available` cannot cover is refused
(402 INSUFFICIENT_BALANCE) and writes nothing; charges and refunds are Meta's facts and always post."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.billing import events as billing_events
from apps.billing.models import LedgerEntry, Wallet
from apps.core.errors import InsufficientBalance, ValidationFailed
from apps.core.ids import new_id
from apps.core.models import Workspace
from apps.core.services import event_append

K = LedgerEntry.Kind
FOUR = Decimal("0.0001")
ZERO = Decimal("0.0000")


def _money(value) -> Decimal:
    return Decimal(value).quantize(FOUR)


def wallet_currency(*, workspace: Workspace) -> str:
    return settings.BILLING_CURRENCY


def _opening_balance(workspace: Workspace) -> Decimal:
    return _money(settings.BILLING_SANDBOX_BALANCE if workspace.is_sandbox else settings.BILLING_OPENING_BALANCE)


def wallet_get_or_create(*, workspace: Workspace) -> Wallet:
    """The workspace's wallet, created on first use with its opening balance (a `topup` row, so the ledger
    always sums to the balance): the sandbox twin's play money, or BILLING_OPENING_BALANCE for live."""
    wallet = Wallet.objects.filter(workspace_id=workspace.pk).first()
    if wallet is not None:
        return wallet
    opening = _opening_balance(workspace)
    with transaction.atomic():
        wallet, created = Wallet.objects.get_or_create(
            workspace_id=workspace.pk, defaults={
                "currency": wallet_currency(workspace=workspace), "balance": opening,
                "low_balance_threshold": _money(settings.BILLING_LOW_BALANCE_THRESHOLD)})
        if created and opening:
            LedgerEntry.objects.create(workspace_id=workspace.pk, kind=K.TOPUP, amount=opening, balance_after=opening,
                                       reserved_after=ZERO, note="Opening balance", created_by="system")
    return wallet


def _locked(workspace: Workspace) -> Wallet:
    """The wallet row, locked until the caller's transaction ends (created first when missing)."""
    if not connection.in_atomic_block:
        raise RuntimeError("wallet movements run inside the caller's transaction")
    wallet = Wallet.objects.select_for_update().filter(workspace_id=workspace.pk).first()
    if wallet is None:
        wallet_get_or_create(workspace=workspace)
        wallet = Wallet.objects.select_for_update().get(workspace_id=workspace.pk)
    return wallet


def wallet_lock(*, workspace: Workspace) -> Wallet:
    """Lock the wallet row for the rest of the caller's transaction (taken first by a charge that also
    counts the month's volume, so every charge takes its locks in one order)."""
    return _locked(workspace)


def _post(wallet: Wallet, *, kind: str, amount: Decimal, balance_delta: Decimal = ZERO,
          reserved_delta: Decimal = ZERO, message_id: str = "", campaign_id: str = "", note: str = "",
          created_by: str = "", workspace: Workspace | None = None) -> LedgerEntry:
    """Move the locked wallet and write its ledger row; `wallet.low_balance` when available crosses the
    threshold downwards."""
    before = wallet.available
    wallet.balance = _money(wallet.balance + balance_delta)
    wallet.reserved = _money(wallet.reserved + reserved_delta)
    wallet.updated_at = timezone.now()
    Wallet.objects.filter(pk=wallet.pk).update(balance=wallet.balance, reserved=wallet.reserved,
                                               updated_at=wallet.updated_at)
    entry = LedgerEntry.objects.create(
        workspace_id=wallet.pk, kind=kind, amount=_money(amount), balance_after=wallet.balance,
        reserved_after=wallet.reserved, message_id=message_id or "", campaign_id=campaign_id or "",
        note=note[:500], created_by=created_by[:150])
    threshold = wallet.low_balance_threshold
    if before >= threshold > wallet.available:
        event_append(workspace=workspace or Workspace(pk=wallet.pk), type="wallet.low_balance",
                     data=billing_events.wallet_low_balance(wallet=wallet))
    return entry


# --- reservations (the send road) -------------------------------------------------------------------------


def wallet_reserve(*, workspace: Workspace, amount: Decimal, message_id: str = "", campaign_id: str = "") -> None:
    """Put `amount` aside for a message (or a campaign batch) inside the writer's transaction; raises
    InsufficientBalance (details: required, available) when `available` cannot cover it. Free: nothing."""
    amount = _money(amount)
    if amount <= 0:
        return
    wallet = _locked(workspace)
    if wallet.available < amount:
        raise InsufficientBalance(details={"required": f"{amount:.4f}", "available": f"{wallet.available:.4f}"})
    _post(wallet, kind=K.RESERVE, amount=amount, reserved_delta=amount, message_id=message_id,
          campaign_id=campaign_id, workspace=workspace)


def reserve_sql(*, workspace: Workspace, amount: Decimal, message_id: str, name: str = "w",
                after: str = "") -> list[tuple[str, list]]:
    """wallet_reserve as CTEs of one PostgreSQL statement (the writer's one-statement send): `name` is the
    guarded UPDATE (one row, or none when available cannot cover `amount` OR the reservation would cross
    the low-balance threshold: the caller then takes the plain road, which refuses or emits the event),
    and the ledger row selects from it. Same rows as wallet_reserve (tests/billing pin it).
    after: a CTE of the caller's (placed before these) that runs before the wallet row is locked, and
    without whose row nothing is reserved: the caller's row locks that must come before the wallet's."""
    amount = _money(amount)
    now = timezone.now()
    wallet_table, ledger_table = Wallet._meta.db_table, LedgerEntry._meta.db_table
    first = f" AND EXISTS (SELECT 1 FROM {after})" if after else ""  # noqa: S608 - the caller's CTE name
    update = (
        f"{name} AS (UPDATE {wallet_table} SET reserved = reserved + %s, updated_at = %s "  # noqa: S608
        "WHERE workspace_id = %s AND balance + credit_limit - reserved - %s >= 0 "
        "AND NOT (balance + credit_limit - reserved >= low_balance_threshold "
        f"AND balance + credit_limit - reserved - %s < low_balance_threshold){first} "
        "RETURNING balance, reserved)",
        [amount, now, workspace.pk, amount, amount])
    ledger = (
        f"{name}_ledger AS (INSERT INTO {ledger_table} (id, workspace_id, kind, amount, balance_after, "  # noqa: S608
        "reserved_after, message_id, campaign_id, note, created_by, created_at) "
        f"SELECT %s, %s, %s, %s, balance, reserved, %s, '', '', '', %s FROM {name})",
        [new_id("wtx"), workspace.pk, K.RESERVE.value, amount, message_id, now])
    return [update, ledger]


def reservation_settle(*, workspace: Workspace, reserved: Decimal, charge: Decimal, message_id: str,
                       campaign_id: str = "") -> None:
    """A message's reservation ends: `charge` is posted (balance down) and what of `reserved` it does not
    consume is released. Exactly `reserved` leaves `reserved`."""
    reserved, charge = _money(reserved), _money(charge)
    if reserved <= 0 and charge <= 0:
        return
    wallet = _locked(workspace)
    consumed = min(charge, reserved)
    if charge > 0:
        _post(wallet, kind=K.CHARGE, amount=-charge, balance_delta=-charge, reserved_delta=-consumed,
              message_id=message_id, campaign_id=campaign_id, workspace=workspace)
    if reserved - consumed > 0:
        _post(wallet, kind=K.RELEASE, amount=reserved - consumed, reserved_delta=-(reserved - consumed),
              message_id=message_id, campaign_id=campaign_id, workspace=workspace)


def charge_refund(*, workspace: Workspace, amount: Decimal, message_id: str, campaign_id: str = "") -> Decimal:
    amount = _money(amount)
    if amount <= 0:
        return ZERO
    wallet = _locked(workspace)
    _post(wallet, kind=K.REFUND, amount=amount, balance_delta=amount, message_id=message_id,
          campaign_id=campaign_id, workspace=workspace)
    return amount


# --- money in -------------------------------------------------------------------------------------------


def wallet_topup(*, workspace: Workspace, amount, note: str = "", created_by: str = "") -> LedgerEntry:
    amount = _money(amount)
    if amount <= 0:
        raise ValidationFailed("A top-up must be positive.", field="amount")
    with transaction.atomic():
        wallet = _locked(workspace)
        entry = _post(wallet, kind=K.TOPUP, amount=amount, balance_delta=amount, note=note, created_by=created_by,
                      workspace=workspace)
        event_append(workspace=workspace, type="wallet.topped_up",
                     data=billing_events.wallet_topped_up(wallet=wallet, entry=entry))
    return entry


def wallet_adjust(*, workspace: Workspace, amount, note: str = "", created_by: str = "") -> LedgerEntry:
    """A correction either way (signed); a positive one is also `wallet.topped_up`."""
    amount = _money(amount)
    if amount == 0:
        raise ValidationFailed("An adjustment must not be zero.", field="amount")
    if not note.strip():
        raise ValidationFailed("An adjustment needs a note saying why.", field="note")
    with transaction.atomic():
        wallet = _locked(workspace)
        entry = _post(wallet, kind=K.ADJUSTMENT, amount=amount, balance_delta=amount, note=note,
                      created_by=created_by, workspace=workspace)
        if amount > 0:
            event_append(workspace=workspace, type="wallet.topped_up",
                         data=billing_events.wallet_topped_up(wallet=wallet, entry=entry))
    return entry


def wallet_sandbox_set(*, workspace: Workspace, balance, created_by: str = "") -> Wallet:
    """POST /api/v1/sandbox/wallet: set the sandbox wallet's balance (an `adjustment` by the difference)."""
    if not workspace.is_sandbox:
        raise ValidationFailed("Only a sandbox wallet can be set.", field="balance")
    target = _money(balance)
    if target < 0:
        raise ValidationFailed("balance must not be negative.", field="balance")
    with transaction.atomic():
        wallet = _locked(workspace)
        delta = target - wallet.balance
        if delta:
            entry = _post(wallet, kind=K.ADJUSTMENT, amount=delta, balance_delta=delta,
                          note="Sandbox balance set", created_by=created_by, workspace=workspace)
            if delta > 0:
                event_append(workspace=workspace, type="wallet.topped_up",
                             data=billing_events.wallet_topped_up(wallet=wallet, entry=entry))
    return wallet


def wallet_settings_update(*, workspace: Workspace, credit_limit=None, low_balance_threshold=None) -> Wallet:
    with transaction.atomic():
        wallet = _locked(workspace)
        if credit_limit is not None:
            wallet.credit_limit = _money(credit_limit)
        if low_balance_threshold is not None:
            wallet.low_balance_threshold = _money(low_balance_threshold)
        if wallet.credit_limit < 0 or wallet.low_balance_threshold < 0:
            raise ValidationFailed("credit_limit and low_balance_threshold must not be negative.")
        wallet.save(update_fields=["credit_limit", "low_balance_threshold", "updated_at"])
    return wallet
