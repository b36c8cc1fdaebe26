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

import phonenumbers

from apps.core.errors import ValidationFailed

_STRIP = re.compile(r"[\s\-().]")


def _fix_national_quirks(digits: str) -> str:
    """`digits` is the E.164 number without `+`."""
    if digits.startswith("521") and len(digits) == 13:
        return "52" + digits[3:]
    if digits.startswith("55") and len(digits) == 12 and digits[4] in "6789":
        return digits[:4] + "9" + digits[4:]
    return digits


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
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValidationFailed(f"{raw!r} is not an E.164 phone number.", field=field)
    if not phonenumbers.is_possible_number(parsed):
        raise ValidationFailed(f"{raw!r} is not a possible phone number.", field=field)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def wa_id_to_e164(wa_id: str) -> str:
    """Meta's wa_id is the number without '+'."""
    digits = re.sub(r"\D", "", wa_id or "")
    return f"+{digits}" if digits else ""
