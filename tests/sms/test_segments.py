import pytest

from apps.providers.sms import sms_segments


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), [
    ("", "GSM-7", 0, 0),
    ("Hello", "GSM-7", 5, 1),
    ("a" * 160, "GSM-7", 160, 1),
    ("a" * 161, "GSM-7", 161, 2),
    ("a" * 306, "GSM-7", 306, 2),
    ("a" * 307, "GSM-7", 307, 3),
    ("€" * 80, "GSM-7", 160, 1),  # the extension table: two septets each
    ("€" * 81, "GSM-7", 162, 2),
    ("Olá, código 1234", "UCS-2", 16, 1),  # 'ó' is not in GSM-7 ('á' is not either)
    ("ü" * 160, "GSM-7", 160, 1),
    ("é" * 70, "GSM-7", 70, 1),
    ("✓" * 70, "UCS-2", 70, 1),
    ("✓" * 71, "UCS-2", 71, 2),
    ("✓" * 134, "UCS-2", 134, 2),
    ("✓" * 135, "UCS-2", 135, 3),
    ("😀" * 35, "UCS-2", 70, 1),  # outside the BMP: two UTF-16 units each
    ("😀" * 36, "UCS-2", 72, 2),
])
def test_segments(text, encoding, units, segments):
    result = sms_segments(text)
    assert (result.encoding, result.units, result.segments) == (encoding, units, segments)
