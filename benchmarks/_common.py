"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics
from collections.abc import Iterator

TOKEN = "test-token"


def numbers(count: int, start: int = 0) -> Iterator[str]:
    """Distinct valid Ukrainian mobile numbers, lazily."""
    for i in range(start, start + count):
        yield f"38050{i:07d}"


def median(values: list[float]) -> float:
    """The median, for repeated runs."""
    return statistics.median(values)
