"""Input entries into columns: the three shapes a send's recipients come in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Columns", "Unpack", "phone_param_pairs", "phone_text_pairs", "phones_only"]

Columns = tuple[Sequence[object], list[str] | None, list[tuple[str, ...]] | None, dict[int, str]]
"""Raw phones, texts (or ``None``), template parameters (or ``None``), and by position the
reasons of malformed entries."""

Unpack = Callable[[list[Any]], Columns]
"""Splits a chunk of input entries into :data:`Columns`."""


def _shown(entry: object) -> str:
    return entry if isinstance(entry, str) else repr(entry)[:64]


def phones_only(chunk: list[Any]) -> Columns:
    """Entries are numbers; the text is the send's."""
    return chunk, None, None, {}


def phone_text_pairs(chunk: list[Any]) -> Columns:
    """Entries are ``(phone, text)``; a missing or empty text is malformed."""
    phones: list[object] = []
    texts: list[str] = []
    bad: dict[int, str] = {}
    for position, entry in enumerate(chunk):
        try:
            phone, text = entry
        except (TypeError, ValueError):
            phones.append(_shown(entry))
            texts.append("")
            bad[position] = "not a (phone, text) pair"
            continue
        phones.append(phone)
        if isinstance(text, str) and text.strip():
            texts.append(text)
        else:
            texts.append("")
            bad[position] = "empty text"
    return phones, texts, None, bad


def phone_param_pairs(chunk: list[Any]) -> Columns:
    """Entries are ``(phone, params)`` with up to three string parameters."""
    phones: list[object] = []
    params: list[tuple[str, ...]] = []
    bad: dict[int, str] = {}
    for position, entry in enumerate(chunk):
        try:
            phone, values = entry
            values = (values,) if isinstance(values, str) else tuple(values)
        except (TypeError, ValueError):
            phones.append(_shown(entry))
            params.append(())
            bad[position] = "not a (phone, parameters) pair"
            continue
        phones.append(phone)
        if all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
            params.append(tuple(str(v) for v in values))
        else:
            params.append(())
            bad[position] = "parameters must be strings or numbers"
    return phones, None, params, bad
