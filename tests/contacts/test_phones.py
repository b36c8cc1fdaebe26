import pytest

from apps.contacts.phones import normalize_phone
from apps.core.errors import ValidationFailed


@pytest.mark.parametrize("raw", ["+91 98123-45678", "+919812345678", "00919812345678", "919812345678",
                                 "+91 (98123) 45678", "+91.98123.45678"])
def test_indian_spellings_are_one_number(raw):
    assert normalize_phone(raw) == "+919812345678"


def test_mexico_old_mobile_prefix_521_is_the_same_contact_as_52():
    assert normalize_phone("+5215512345678") == "+525512345678"
    assert normalize_phone("+52 1 55 1234 5678") == "+525512345678"
    assert normalize_phone("+525512345678") == "+525512345678"
    assert normalize_phone("0052 55 1234 5678") == "+525512345678"


def test_brazil_mobile_missing_its_ninth_digit_gains_it():
    assert normalize_phone("+55 11 8123-4567") == "+5511981234567"
    assert normalize_phone("+5511981234567") == "+5511981234567"
    assert normalize_phone("5521 99876 5432") == "+5521998765432"


def test_brazil_landline_keeps_eight_digits():
    assert normalize_phone("+55 11 3123-4567") == "+551131234567"


@pytest.mark.parametrize("raw", ["", "   ", "abc", "+12", "+1234567890123456789", "++4477", "+44 77 00x1"])
def test_bad_numbers_are_refused_with_the_field_named(raw):
    with pytest.raises(ValidationFailed) as exc:
        normalize_phone(raw, field="phone")
    assert exc.value.details["field"] == "phone"


def test_fast_path_agrees_with_phonenumbers_parse():
    import random

    import phonenumbers

    from apps.contacts.phones import _fast_e164

    rng = random.Random(7)
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    checked = 0
    for _ in range(20000):
        code = str(rng.choice(codes))
        national = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 13)))
        digits = (code + national)[:15]
        fast = _fast_e164(digits)
        if fast is None:
            continue
        parsed = phonenumbers.parse("+" + digits, None)
        assert phonenumbers.is_possible_number(parsed), digits
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == fast, digits
        checked += 1
    assert checked > 5000  # the fast path really is the common path
