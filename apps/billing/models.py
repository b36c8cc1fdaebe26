"""Billing: one wallet per workspace (live or sandbox twin), its append-only ledger, and the rate card."""

from django.db import models
from django.db.models import Q

from apps.core.ids import PrefixedIdField
from apps.core.scoping import WABA_SHARED

MONEY = {"max_digits": 14, "decimal_places": 4}


class Wallet(models.Model):
    """balance: money in (top-ups, adjustments, refunds) minus charges. reserved: the estimates of messages
    written but not yet charged or released. available = balance + credit_limit - reserved, never below
    zero by a reservation (billing.services.wallet: one guarded UPDATE)."""

    TENANT_WABA_PATH = WABA_SHARED  # one balance per workspace: every key spends from it

    workspace = models.OneToOneField("core.Workspace", primary_key=True, on_delete=models.CASCADE,
                                     related_name="wallet")
    currency = models.CharField(max_length=3, default="USD")
    balance = models.DecimalField(default=0, **MONEY)
    reserved = models.DecimalField(default=0, **MONEY)
    credit_limit = models.DecimalField(default=0, **MONEY)
    low_balance_threshold = models.DecimalField(default=0, **MONEY)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(reserved__gte=0), name="wallet_reserved_not_negative"),
            models.CheckConstraint(condition=Q(credit_limit__gte=0), name="wallet_credit_limit_not_negative"),
        ]

    def __str__(self) -> str:
        return f"wallet of {self.workspace_id}"

    @property
    def available(self):
        return self.balance + self.credit_limit - self.reserved


class LedgerEntry(models.Model):
    """One movement of a wallet; rows are never updated or deleted (a PostgreSQL trigger refuses it).

    amount: signed change of `balance` for topup / adjustment / charge (negative) / refund; for reserve
    and release the (positive) amount put aside or given back, which moves `reserved` only."""

    class Kind(models.TextChoices):
        TOPUP = "topup"
        RESERVE = "reserve"
        RELEASE = "release"
        CHARGE = "charge"
        REFUND = "refund"
        ADJUSTMENT = "adjustment"

    id = PrefixedIdField(prefix="wtx")
    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+",
                                  db_index=False)  # ledger_ws_id leads with it
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount = models.DecimalField(**MONEY)
    balance_after = models.DecimalField(**MONEY)
    reserved_after = models.DecimalField(**MONEY)
    message_id = models.CharField(max_length=40, blank=True, default="")
    campaign_id = models.CharField(max_length=40, blank=True, default="")
    note = models.CharField(max_length=500, blank=True, default="")
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-id"], name="ledger_ws_id"),
            models.Index(fields=["message_id"], condition=~Q(message_id=""), name="ledger_message"),
        ]
        constraints = [
            # A message is charged, released and refunded at most once (redelivered statuses).
            models.UniqueConstraint(fields=["message_id", "kind"], condition=~Q(message_id="") & Q(
                kind__in=["charge", "release", "refund"]), name="ledger_once_per_message"),
        ]

    def __str__(self) -> str:
        return self.pk


class RatePrice(models.Model):
    """Meta's price for one market × category (× volume tier), from `effective_from` on (rate card CSV).
    tier_from: the month's message count (per category) from which this price applies (0 = the base)."""

    market = models.CharField(max_length=64)  # Meta's market name, e.g. "Brazil", "Rest of Africa", "Other"
    category = models.CharField(max_length=40)  # marketing, utility, authentication, authentication_international, service
    tier_from = models.PositiveBigIntegerField(default=0)
    price = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, default="USD")
    effective_from = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["market", "category", "tier_from", "effective_from", "currency"],
                                               name="rate_price_unique")]
        indexes = [models.Index(fields=["market", "category", "-effective_from"], name="rate_lookup")]

    def __str__(self) -> str:
        return f"{self.market}/{self.category}/{self.tier_from}@{self.effective_from}"


class VolumeCount(models.Model):
    """How many paid messages of a tiered category (utility, authentication) a workspace sent to one market in
    one calendar month: Meta's volume tiers price the n-th message of the month by this count. Bumped by the
    charge, under the wallet's lock (billing.services.ratecard.volume_take)."""

    TENANT_WABA_PATH = WABA_SHARED  # Meta counts per business, across its numbers: one count per workspace

    workspace = models.ForeignKey("core.Workspace", on_delete=models.CASCADE, related_name="+")
    month = models.DateField()  # the first day of the calendar month (UTC)
    market = models.CharField(max_length=64)
    category = models.CharField(max_length=40)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "month", "market", "category"],
                                               name="volume_count_unique")]

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.month:%Y-%m} {self.market}/{self.category}: {self.count}"
