from decimal import Decimal

import pytest

from apps.billing.services import cost_estimate, wallet_reserve


@pytest.mark.parametrize(("category", "phone", "expected"), [
    ("MARKETING", "+12125550123", "0.0250"),
    ("UTILITY", "+919812345678", "0.0014"),
    ("AUTHENTICATION", "+5511987654321", "0.0315"),
    ("MARKETING", "+2348031234567", "0.0400"),  # no row for NG: the default row
    ("", "+12125550123", "0.0000"),  # free-form messages are free
])
def test_cost_estimate_from_the_rate_table(category, phone, expected):
    assert cost_estimate(category=category, to_phone=phone) == Decimal(expected)


def test_rate_card_is_a_setting(settings):
    settings.BILLING_RATE_CARD = {"*": {"UTILITY": "0.5"}}
    assert cost_estimate(category="UTILITY", to_phone="+12125550123") == Decimal("0.5000")


@pytest.mark.django_db
def test_wallet_stub_always_allows(workspace):
    assert wallet_reserve(workspace=workspace, amount=Decimal("1000000")) is None
