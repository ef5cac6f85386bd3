"""How many SMS a text costs.

A text that fits the GSM 03.38 alphabet travels in 7-bit units: 160 in a single SMS, 153 per
part of a concatenated one (the rest of each part is the concatenation header). The
extension characters (``^{}\\[~]|€`` and form feed) take two units and never straddle two
parts. Anything else — Cyrillic, most Azerbaijani letters (ə, ğ, ı, ş), emoji — travels as
UCS-2: 70 UTF-16 units alone, 67 per part, a surrogate pair (an emoji) never split.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["Segments", "sms_segments"]

_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("^{}\\[~]|€\f")


class Segments(msgspec.Struct, frozen=True, kw_only=True):
    """What a text costs.

    Attributes:
        encoding: ``"GSM-7"`` or ``"UCS-2"``.
        units: 7-bit units (GSM-7) or UTF-16 units (UCS-2) the text takes.
        segments: SMS parts it travels in (0 for an empty text).
        per_segment: units per part at this length: 160/153 (GSM-7), 70/67 (UCS-2).
    """

    encoding: Literal["GSM-7", "UCS-2"]
    units: int
    segments: int
    per_segment: int


def _count(costs: list[int], single: int, part: int) -> tuple[int, int]:
    units = sum(costs)
    if units <= single:
        return units, 1 if units else 0
    segments, used = 1, 0
    for cost in costs:
        if used + cost > part:
            segments, used = segments + 1, 0
        used += cost
    return units, segments


def sms_segments(text: str) -> Segments:
    """The encoding, length and number of SMS parts of ``text``."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENSION for ch in text):
        costs = [2 if ch in _GSM_EXTENSION else 1 for ch in text]
        units, segments = _count(costs, 160, 153)
        return Segments(
            encoding="GSM-7",
            units=units,
            segments=segments,
            per_segment=160 if segments <= 1 else 153,
        )
    costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    units, segments = _count(costs, 70, 67)
    return Segments(
        encoding="UCS-2", units=units, segments=segments, per_segment=70 if segments <= 1 else 67
    )
