"""Batching: order kept, nothing lost or duplicated, sizes within the limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smsbridge._core.gateway import ChunkPacker, Item


@given(size=st.integers(1, 150), count=st.integers(0, 1000))
def test_chunks_keep_order_and_lose_nothing(size: int, count: int) -> None:
    """Concatenated batches are exactly the input; every batch but the last is full."""
    packer = ChunkPacker(size)
    items = [Item(i, f"380500{i:06d}", "t") for i in range(count)]
    batches: list[list[Item]] = []
    for item in items:
        batches.extend(packer.add(item) or [])
    batches.extend(packer.flush())
    assert [item for batch in batches for item in batch] == items
    assert all(1 <= len(batch) <= size for batch in batches)
    assert all(len(batch) == size for batch in batches[:-1])
    assert packer.flush() == []
