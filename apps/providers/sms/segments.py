"""How many SMS segments a text costs: GSM 03.38 7-bit (160 septets alone, 153 per part when
concatenated; the extension table's characters take two septets) or UCS-2 (70 characters alone, 67 per
part; characters outside the BMP take two UTF-16 units) as soon as one character is outside GSM-7."""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7, UCS2 = "GSM-7", "UCS-2"
_LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class SmsSegments:
    encoding: str  # GSM-7 | UCS-2
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def sms_encoding(text: str) -> str:
    return GSM7 if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text) else UCS2


def sms_segments(text: str) -> SmsSegments:
    """The encoding, length in units and segment count of `text` (0 segments for an empty text)."""
    encoding = sms_encoding(text)
    if encoding == GSM7:
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
    else:
        units = len(text.encode("utf-16-le")) // 2
    single, multi = _LIMITS[encoding]
    if units == 0:
        segments = 0
    elif units <= single:
        segments = 1
    else:
        segments = -(-units // multi)
    return SmsSegments(encoding=encoding, units=units, segments=segments)
