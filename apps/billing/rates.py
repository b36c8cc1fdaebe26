"""Default rate table (USD per delivered template message) by category and recipient country.

A handful of markets plus a default row. Override the whole table with the BILLING_RATE_CARD setting
(a dict of the same shape)."""

from decimal import Decimal

DEFAULT_RATE_CARD: dict[str, dict[str, str]] = {
    # country (ISO 3166 alpha-2) or "*" -> category -> price
    "US": {"MARKETING": "0.0250", "UTILITY": "0.0040", "AUTHENTICATION": "0.0135"},
    "IN": {"MARKETING": "0.0107", "UTILITY": "0.0014", "AUTHENTICATION": "0.0014"},
    "BR": {"MARKETING": "0.0625", "UTILITY": "0.0068", "AUTHENTICATION": "0.0315"},
    "GB": {"MARKETING": "0.0529", "UTILITY": "0.0220", "AUTHENTICATION": "0.0358"},
    "DE": {"MARKETING": "0.1365", "UTILITY": "0.0550", "AUTHENTICATION": "0.0768"},
    "*": {"MARKETING": "0.0400", "UTILITY": "0.0120", "AUTHENTICATION": "0.0200"},
}
FREE = Decimal("0.0000")
