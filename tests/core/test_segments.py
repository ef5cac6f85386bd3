"""SMS segment counting: GSM-7 vs UCS-2, single vs concatenated, the characters that cost two."""

from __future__ import annotations

import pytest

from smsbridge import sms_segments


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 152 + "€" + "a" * 10, "GSM-7", 164, 2),  # € does not straddle: part 1 holds 152
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),
        ("Привіт" * 11 + "Пріві", "UCS-2", 71, 2),
        ("Я" * 70, "UCS-2", 70, 1),
        ("Я" * 134, "UCS-2", 134, 2),
        ("Я" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),
        ("Я" * 66 + "😀" + "Я" * 66, "UCS-2", 134, 3),  # the pair does not straddle parts
        ("Salam, Ayşə!", "UCS-2", 12, 1),  # ş and ə are not GSM-7
        ("Çox sağ ol", "UCS-2", 10, 1),  # ğ is not GSM-7 either
        ("Günaydın Çöl", "UCS-2", 12, 1),  # ı is not
        ("Ümumi qiymət", "UCS-2", 12, 1),
        ("Ödəniş Ü", "UCS-2", 8, 1),
        ("Ölçü Ü Ç", "UCS-2", 8, 1),  # lower-case ç is not in the basic set
        ("Ödün Ü", "GSM-7", 6, 1),
    ],
)
def test_segments(text: str, encoding: str, units: int, segments: int) -> None:
    """Counts follow 160/153 for GSM-7 and 70/67 for UCS-2."""
    result = sms_segments(text)
    assert (result.encoding, result.units, result.segments) == (encoding, units, segments)
    single = 160 if encoding == "GSM-7" else 70
    assert result.per_segment == (single if segments <= 1 else single - (7 if single == 160 else 3))
