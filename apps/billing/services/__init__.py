"""Billing: the wallet and its ledger (wallet), the rate card (ratecard), Meta's pricing turned into
charges, releases and refunds (charging)."""

from apps.billing.services.charging import (  # noqa: F401
    message_charge_from_pricing,
    message_charge_sms,
    message_reservation_release,
    pricing_is_free,
)
from apps.billing.services.ratecard import (  # noqa: F401
    CATEGORIES,
    cost_estimate,
    country_for_phone,
    market_for_phone,
    meta_price,
    price_for,
    ratecard_import,
    ratecard_parse,
    volume_take,
)
from apps.billing.services.wallet import (  # noqa: F401
    reserve_sql,
    wallet_adjust,
    wallet_currency,
    wallet_get_or_create,
    wallet_lock,
    wallet_reserve,
    wallet_sandbox_set,
    wallet_settings_update,
    wallet_topup,
)
