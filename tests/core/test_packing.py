"""Batching: order kept, nothing lost or duplicated, sizes within the limit."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsbridge._core.gateway import Batch, ChunkPacker, Params


@given(
    size=st.integers(1, 150),
    chunks=st.lists(st.integers(0, 250), max_size=12),
    personal=st.booleans(),
)
def test_chunks_keep_order_and_lose_nothing(size: int, chunks: list[int], personal: bool) -> None:
    """Whatever chunks arrive, concatenated batches are exactly the input, columns aligned,
    and every batch but the last is full."""
    packer = ChunkPacker(size)
    sent: list[Batch] = []
    start = 0
    for count in chunks:
        indices = list(range(start, start + count))
        phones = [f"380500{i:06d}" for i in indices]
        texts = [f"text {i}" for i in indices] if personal else None
        sent.extend(packer.pack(Batch(indices, phones, texts)))
        start += count
    sent.extend(packer.flush())
    assert [i for batch in sent for i in batch.indices] == list(range(start))
    for batch in sent:
        assert batch.phones == [f"380500{i:06d}" for i in batch.indices]
        assert batch.texts == ([f"text {i}" for i in batch.indices] if personal else None)
    assert all(1 <= len(batch) <= size for batch in sent)
    assert all(len(batch) == size for batch in sent[:-1])
    assert packer.flush() == []


def test_pick_and_slice_keep_columns_aligned() -> None:
    """Selecting recipients moves every column together."""
    batch = Batch([5, 6, 7], ["a", "b", "c"], ["ta", "tb", "tc"], [("1",), ("2",), ("3",)])
    picked = batch.pick([2, 0])
    assert (picked.indices, picked.phones, picked.texts, list(picked.params or ())) == (
        [7, 5],
        ["c", "a"],
        ["tc", "ta"],
        [("3",), ("1",)],
    )
    assert batch.slice(1, 2) == Batch([6], ["b"], ["tb"], [("2",)])
    assert repr(batch) == "Batch(3 recipients)"


def test_parameters_read_as_the_tuples_given_and_hold_none_of_them() -> None:
    """A batch's parameters are columns: each recipient's tuple reads back as given (counts
    may differ), through every way a batch is cut and grown, and the caller's tuples are
    not kept (a batch waiting its turn holds nothing the collector tracks per recipient)."""
    rows = [("a", "b"), (), ("c",), ("d", "e", "f")]
    given = [tuple(row) for row in rows]
    before = [sys.getrefcount(row) for row in given]
    params = Params(given)
    assert [sys.getrefcount(row) for row in given] == before
    assert list(params) == rows and params == rows and len(params) == 4
    assert [params[i] for i in range(4)] == rows and params[-1] == ("d", "e", "f")
    assert params.widths == [2, 0, 1, 3] and params.uniform() is None
    assert params[1:3] == [(), ("c",)] and params.pick([3, 0]) == [("d", "e", "f"), ("a", "b")]
    params.append(("g", "h", "i", "j"))
    params.extend([("k",)])
    params.extend(Params([("l", "m")]))
    assert list(params) == [*rows, ("g", "h", "i", "j"), ("k",), ("l", "m")]
    assert Params([("x",), ("y",)]).uniform() == 1 and Params().uniform() is None
    assert list(Params([("x", "y"), ("z", "w")])) == [("x", "y"), ("z", "w")]
    empty = Batch([], [], None, []).empty()
    assert empty.params == [] and type(empty.parameters) is Params
    assert params != [("a", "b")] and params != "ab"
    # an index past either end, and rows given as an iterator
    with pytest.raises(IndexError):
        Params([("a",), ("b", "c"), ()])[-4]
    with pytest.raises(IndexError):
        Params([("a",)])[1]
    assert list(Params(iter([("a",), ("b", "c")]))) == [("a",), ("b", "c")]


def test_an_observer_reads_a_batchs_parameters_as_a_list_of_tuples() -> None:
    """``Batch.params`` is what it always was to a reader, a list of tuples (an observer may
    serialise it, add to it, copy it), made afresh from the columns at each read; given a
    list, a batch holds columns."""
    batch = Batch([0, 1], ["a", "b"], None, [("x", "y"), ("z",)])
    assert type(batch.params) is list and batch.params == [("x", "y"), ("z",)]
    assert json.dumps(batch.params) == '[["x", "y"], ["z"]]'
    assert batch.params + [("w",)] == [("x", "y"), ("z",), ("w",)]  # noqa: RUF005
    batch.params.append(("lost",))  # a copy: the batch is as it was
    assert batch.params == [("x", "y"), ("z",)] and type(batch.parameters) is Params
    batch.params = [("v",), ()]
    assert batch.parameters == [("v",), ()] and Batch([0], ["a"]).params is None
    for wrong in ([("v",)], ["ab", "cd"]):  # one short; strings, not tuples
        with pytest.raises(ValueError, match="a tuple for each of its recipients"):
            batch.params = wrong  # type: ignore[assignment]
    assert batch.params == [("v",), ()]
    for wrong in (["xy", "zw"], [("x",)]):  # strings, not tuples; one short: as set
        with pytest.raises(ValueError, match="a tuple for each of its recipients"):
            Batch([0, 1], ["a", "b"], None, wrong)  # type: ignore[arg-type]
