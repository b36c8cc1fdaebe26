"""Phone normalisation with Google's libphonenumber: `+91 98123-45678`, `+919812345678` and
`00919812345678` are one number."""

from __future__ import annotations

import re

import phonenumbers

from apps.core.errors import ValidationFailed

_STRIP = re.compile(r"[\s\-().]")


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
