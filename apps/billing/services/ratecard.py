"""The rate card: Meta's price per market × category (× volume tier), versioned by effective date, plus
our per-plan markup. Rows come from `manage.py ratecard import` (Meta's published CSV); a market or
category with no imported row falls back to the CSV bundled in apps/billing/data (Meta's USD card)."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.billing.markets import market_for_country
from apps.billing.models import RatePrice, VolumeCount
from apps.core.errors import ValidationFailed
from apps.core.models import Workspace

CATEGORIES = ("marketing", "utility", "authentication", "authentication_international", "service")
TIERED = ("utility", "authentication")
FOUR = Decimal("0.0001")
ZERO = Decimal("0.0000")
DATA = Path(__file__).resolve().parent.parent / "data"
_HEADER_CATEGORY = {"marketing": "marketing", "utility": "utility", "authentication": "authentication",
                    "authentication-international": "authentication_international",
                    "authentication international": "authentication_international", "service": "service"}


def country_for_phone(phone: str) -> str:
    """ISO country of an E.164 number by its calling code's main country ("" when unknown): the same
    answer in Python and in the reports' SQL (apps/reports), cheap on the send path."""
    digits = phone[1:] if phone.startswith("+") else phone
    for length in (1, 2, 3):
        code = digits[:length]
        if code.isdigit():
            region = phonenumbers.region_code_for_country_code(int(code))
            if region and region != "ZZ":
                if region == "001":  # non-geographic (+800, +882 …)
                    return ""
                return region
    return ""


# --- parsing Meta's CSV -----------------------------------------------------------------------------------


def _price(text: str) -> Decimal | None:
    text = (text or "").strip().replace("$", "").replace(",", "")
    if not text or text.lower() in ("n/a", "-", "—"):
        return None
    try:
        value = Decimal(text)
    except ArithmeticError as exc:
        raise ValidationFailed(f"Not a price: {text!r}.", field="file") from exc
    if value < 0:
        raise ValidationFailed(f"Negative price: {text!r}.", field="file")
    return value.quantize(FOUR)


def _tier_from(text: str) -> int:
    """ "1 - 1,000,000" -> 0; "1,000,001 - 5,000,000" -> 1000000; "25,000,001+" -> 25000000."""
    numbers = re.findall(r"\d[\d,]*", text or "")
    if not numbers:
        raise ValidationFailed(f"Not a volume tier: {text!r}.", field="file")
    return max(int(numbers[0].replace(",", "")) - 1, 0)


def ratecard_parse(text: str) -> list[dict]:
    """Rows {market, currency, category, tier_from, price} from Meta's rate-card CSV: either the card
    (Market, Currency, Marketing, Utility, Authentication, Authentication-International, Service) or the
    volume tiers (Market, Currency, Category, Tier, Rate). Leading title lines are skipped."""
    lines = text.lstrip("\ufeff").splitlines()
    start = next((i for i, line in enumerate(lines) if line.lower().lstrip('"').startswith("market")), None)
    if start is None:
        raise ValidationFailed("No header row starting with 'Market'.", field="file")
    reader = csv.DictReader(io.StringIO("\n".join(lines[start:])))
    header = {h.strip().lower(): h for h in reader.fieldnames or []}
    rows: list[dict] = []
    tiered = "tier" in header and "rate" in header
    for raw in reader:
        market = (raw.get(header["market"]) or "").strip()
        if not market:
            continue
        currency = (raw.get(header.get("currency", ""), "") or "USD").strip().upper() or "USD"
        if tiered:
            category = _HEADER_CATEGORY.get((raw.get(header.get("category", ""), "") or "").strip().lower())
            price = _price(raw.get(header["rate"]))
            if category is None or price is None:
                continue
            rows.append({"market": market, "currency": currency, "category": category,
                         "tier_from": _tier_from(raw.get(header["tier"])), "price": price})
            continue
        for name, column in header.items():
            category = _HEADER_CATEGORY.get(name)
            if category is None:
                continue
            price = _price(raw.get(column))
            if price is not None:
                rows.append({"market": market, "currency": currency, "category": category, "tier_from": 0,
                             "price": price})
    if not rows:
        raise ValidationFailed("The file holds no prices.", field="file")
    return rows


def ratecard_import(*, text: str, effective: date) -> int:
    """Store a rate card (or its volume tiers) effective from `effective`; re-importing the same file for
    the same date replaces its prices. Returns the number of prices stored."""
    rows = ratecard_parse(text)
    with transaction.atomic():
        for row in rows:
            RatePrice.objects.update_or_create(
                market=row["market"], category=row["category"], tier_from=row["tier_from"],
                effective_from=effective, currency=row["currency"], defaults={"price": row["price"]})
    _cache.clear()
    return len(rows)


# --- lookup ------------------------------------------------------------------------------------------------

_bundled: dict[tuple[str, str], list[tuple[int, Decimal]]] | None = None
_cache: dict[tuple, tuple[float, list[tuple[int, Decimal]]]] = {}
_CACHE_SECONDS = 60.0


def _bundled_card() -> dict[tuple[str, str], list[tuple[int, Decimal]]]:
    global _bundled
    if _bundled is None:
        card: dict[tuple[str, str], list[tuple[int, Decimal]]] = {}
        for name in ("meta_rate_card_usd.csv", "meta_rate_card_tiers_usd.csv"):
            for row in ratecard_parse((DATA / name).read_text()):
                card.setdefault((row["market"], row["category"]), []).append((row["tier_from"], row["price"]))
        for tiers in card.values():
            tiers.sort()
        _bundled = card
    return _bundled


def _tiers(market: str, category: str, on: date) -> list[tuple[int, Decimal]]:
    """The (tier_from, price) list in force on `on` for market × category (imported rows, else bundled)."""
    key = (market, category, on)
    hit = _cache.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    latest = (RatePrice.objects.filter(market=market, category=category, effective_from__lte=on)
              .order_by("-effective_from").values_list("effective_from", flat=True).first())
    if latest is not None:
        tiers = sorted(RatePrice.objects.filter(market=market, category=category, effective_from=latest)
                       .values_list("tier_from", "price"))
    else:
        tiers = _bundled_card().get((market, category)) or []
    _cache[key] = (now + _CACHE_SECONDS, tiers)
    return tiers


def market_for_phone(phone: str) -> str:
    """The rate card's market of an E.164 number ("Other" when its country has no market of its own)."""
    return market_for_country(country_for_phone(phone))


def volume_take(*, workspace: Workspace, category: str, to_phone: str, on: date) -> int:
    """Count one more paid message of a tiered category to the number's market in `on`'s calendar month and
    return how many came before it this month (meta_price's `volume`). Other categories: 0, nothing counted.
    The caller holds the wallet's lock (charging): one lock order, wallet then count, for every charge."""
    category = (category or "").lower()
    if category not in TIERED:
        return 0
    key = {"workspace_id": workspace.pk, "month": on.replace(day=1), "market": market_for_phone(to_phone),
           "category": category}
    for _ in range(2):
        if VolumeCount.objects.filter(**key).update(count=F("count") + 1):
            return VolumeCount.objects.filter(**key).values_list("count", flat=True).get() - 1
        try:
            with transaction.atomic():
                VolumeCount.objects.create(**key, count=1)
            return 0
        except IntegrityError:  # a concurrent first charge of the month created it: count on it
            continue
    raise RuntimeError("volume count row neither updated nor created")


def meta_price(*, category: str, to_phone: str, on: date | None = None, volume: int = 0) -> Decimal:
    """Meta's price (no markup) for one message of `category` to `to_phone`; `volume`: the business's paid
    messages of that category to that market this month before this one (picks the tier: volume_take)."""
    category = (category or "").lower()
    if category not in CATEGORIES:
        return ZERO
    on = on or timezone.now().date()
    market = market_for_phone(to_phone)
    tiers = _tiers(market, category, on) or _tiers("Other", category, on)
    if category == "authentication_international" and not tiers:
        tiers = _tiers(market, "authentication", on) or _tiers("Other", "authentication", on)
    price = ZERO
    for tier_from, tier_price in tiers:
        if volume >= tier_from or tier_from == 0:
            price = tier_price
    return price


def plan_markup(*, workspace: Workspace | None) -> Decimal:
    """The per-plan markup as a fraction (0.10 = +10 %), from BILLING_PLAN_MARKUP; the sandbox twin pays
    its live workspace's plan."""
    if workspace is None:
        return ZERO
    plan = workspace.live.plan if workspace.is_sandbox and workspace.sandbox_of_id else workspace.plan
    return Decimal(str(settings.BILLING_PLAN_MARKUP.get(plan, "0")))


def price_for(*, category: str, to_phone: str, workspace: Workspace | None = None, on: date | None = None,
              volume: int = 0) -> Decimal:
    """What we charge: Meta's price plus the plan's markup, 4 places."""
    base = meta_price(category=category, to_phone=to_phone, on=on, volume=volume)
    if not base:
        return ZERO
    return (base * (1 + plan_markup(workspace=workspace))).quantize(FOUR)


def cost_estimate(*, category: str, to_phone: str, workspace: Workspace | None = None) -> Decimal:
    """What a send reserves: the price of a template message of its category (free-form messages inside
    the customer service window are free under per-message pricing)."""
    if not category:
        return ZERO
    return price_for(category=category, to_phone=to_phone, workspace=workspace)
