"""Phone normalisation with Google's libphonenumber: `+91 98123-45678`, `+919812345678` and
`00919812345678` are one number.

Two national quirks matter for WhatsApp because Meta's wa_id and what people type disagree:
- Mexico: mobiles used to be dialled `+52 1 …`; the `1` was dropped in 2019 but old wa_ids and
  address books still carry it. `+521XXXXXXXXXX` and `+52XXXXXXXXXX` are one contact: we store the
  form without the `1`.
- Brazil: mobiles gained a ninth digit (a leading `9`) in 2012–2016; older wa_ids lack it. A 10-digit
  national number whose subscriber part starts with 6–9 is a mobile missing its `9`: we add it.
  Landlines (subscriber part starting 2–5) are left alone.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, region_code_for_country_code

from apps.core.errors import ValidationFailed

_STRIP = re.compile(r"[\s\-().]")


def _fix_national_quirks(digits: str) -> str:
    """`digits` is the E.164 number without `+`."""
    if digits.startswith("521") and len(digits) == 13:
        return "52" + digits[3:]
    if digits.startswith("55") and len(digits) == 12 and digits[4] in "6789":
        return digits[:4] + "9" + digits[4:]
    return digits


# Meta's business-scoped user id: a country prefix and up to 128 alphanumerics, `US.13491208655302741918`;
# a parent id carries `ENT.` (`US.ENT.…`). META.md §3.9.
BSUID_RE = re.compile(r"^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$")


def is_bsuid(value) -> bool:
    return isinstance(value, str) and bool(BSUID_RE.match(value))


def normalize_bsuid(raw, *, field: str = "recipient") -> str:
    """A BSUID as Meta writes it, or VALIDATION_FAILED naming `field`."""
    value = raw.strip() if isinstance(raw, str) else raw
    if not is_bsuid(value):
        raise ValidationFailed(f"{raw!r} is not a business-scoped user id (like US.13491208655302741918).",
                               field=field)
    return value


def normalize_phone(raw: str, *, field: str = "to") -> str:
    """Return E.164 (`+` and 8–15 digits) or raise VALIDATION_FAILED naming `field`."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationFailed("A phone number is required.", field=field)
    value = _STRIP.sub("", raw.strip())
    if value.startswith("00"):
        value = "+" + value[2:]
    if not value.startswith("+"):
        value = "+" + value  # Reach only takes international numbers; never guess a country
    if not re.fullmatch(r"\+\d{8,15}", value):
        raise ValidationFailed(f"{raw!r} is not an E.164 phone number.", field=field)
    value = "+" + _fix_national_quirks(value[1:])
    fast = _fast_e164(value[1:])
    if fast is not None:
        return fast
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValidationFailed(f"{raw!r} is not an E.164 phone number.", field=field)
    if not phonenumbers.is_possible_number(parsed):
        raise ValidationFailed(f"{raw!r} is not a possible phone number.", field=field)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=512)
def _parsing_prefix(country_code: int) -> re.Pattern | None:
    region = region_code_for_country_code(country_code)
    if region == "001":
        metadata = PhoneMetadata.metadata_for_nongeo_region(country_code)
    else:
        metadata = PhoneMetadata.metadata_for_region(region)
    pattern = getattr(metadata, "national_prefix_for_parsing", None) or getattr(metadata, "national_prefix", None)
    return re.compile(pattern) if pattern else None


def _fast_e164(digits: str) -> str | None:
    """The common case without phonenumbers.parse (the import's hot path): a known country code and a
    national number the library would keep as is. Anything parse might rewrite (a national prefix such
    as the UK's `0`, carrier codes) returns None and takes the full path. tests/contacts/test_phones.py
    checks this agrees with parse on thousands of numbers."""
    for size in (1, 2, 3):
        country_code = int(digits[:size])
        if country_code in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    if not national:
        return None
    prefix = _parsing_prefix(country_code)
    if prefix is not None and prefix.match(national):
        return None
    number = PhoneNumber(country_code=country_code, national_number=int(national))
    zeros = len(national) - len(national.lstrip("0"))
    if zeros:
        number.italian_leading_zero = True
        if zeros > 1:
            number.number_of_leading_zeros = zeros
    if not phonenumbers.is_possible_number(number):
        return None  # the full path produces the precise error
    return "+" + digits


def wa_id_to_e164(wa_id: str) -> str:
    """Meta's wa_id is the number without '+'."""
    digits = re.sub(r"\D", "", wa_id or "")
    return f"+{digits}" if digits else ""
