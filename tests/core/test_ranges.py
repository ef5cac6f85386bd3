"""Ids that no two recipients of one account share: blocks claimed from the account's ranges
as the input is read, the same ids for the same send, any allowed width."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from smsbridge import (
    ConfigurationError,
    HttpRequest,
    HttpResponse,
    MockTransport,
    Outcome,
    StateBackendError,
    Status,
    Webcom,
)
from smsbridge._core.ranges import IdBlocks, MemoryRanges, memory_ranges
from smsbridge.testing import FakeClock

from ..helpers import TOKEN


def _claimed(sizes: list[int], first: int) -> int:
    """How many ids sends of these sizes claim (blocks of ``first``, doubling)."""
    total = 0
    for n in sizes:
        k = (max(n - 1, 0) // first + 1).bit_length() - 1
        total += first * ((1 << (k + 1)) - 1)
    return total


@given(
    bits=st.integers(16, 53),
    sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=12),
    start=st.integers(0, 2**53),
    first=st.sampled_from([1, 7, 100]),
)
async def test_no_two_recipients_of_an_account_share_an_id(
    bits: int, sizes: list[int], start: int, first: int
) -> None:
    """Within a send and across sends of one account, for any allowed width, from any point
    of the ranges (wrapping included), until the account has used 2**bits - 1 ids."""
    assume(_claimed(sizes, first) <= (1 << bits) - 1)
    ranges = MemoryRanges(start)
    seen: set[int] = set()
    for n, size in enumerate(sizes):
        ids = IdBlocks(ranges, f"send {n}".encode(), bits, first)
        for index in range(size):
            await ids.cover(index)
        mine = [ids.id(i) for i in range(size)]
        assert all(1 <= i < 2**bits for i in mine)
        assert len(set(mine)) == size
        assert not seen & set(mine)
        seen |= set(mine)


async def test_the_same_send_gets_the_same_ids_again() -> None:
    """A retry or a repeat with the same key: the same ids; another key: others."""
    ranges = MemoryRanges(0)
    first = IdBlocks(ranges, b"campaign", 31)
    await first.cover(999)
    again = IdBlocks(ranges, b"campaign", 31)
    await again.cover(999)
    other = IdBlocks(ranges, b"another", 31)
    await other.cover(999)
    assert [first.id(i) for i in range(1000)] == [again.id(i) for i in range(1000)]
    assert not {first.id(i) for i in range(1000)} & {other.id(i) for i in range(1000)}


def test_widths_outside_16_to_53_bits_are_refused() -> None:
    """53 bits is what Redis's Lua counts exactly; under 16 a send would wrap at once."""
    for bits in (15, 54):
        with pytest.raises(ConfigurationError, match="16 to 53"):
            IdBlocks(MemoryRanges(), b"k", bits)
        with pytest.raises(ConfigurationError, match="16 to 53"):
            Webcom(TOKEN, client_id_bits=bits)


async def test_clients_of_one_account_never_share_an_id(clock: FakeClock) -> None:
    """Three Webcom clients of one account in one process, one with 20-bit ids: every id of
    four sends is distinct, and the narrow client's are under 2**20."""
    seen: list[int] = []

    def gateway(request: HttpRequest) -> HttpResponse:
        body = json.loads(request.body)
        phones = [p for m in body["message"] for p in m["phones"]]
        seen.extend(p["client_id_sms"] for p in phones)
        info = [{"state": "send", "id_sms": n} for n, _ in enumerate(phones)]
        return HttpResponse(200, json.dumps({"information": info}).encode())

    def client(**extra: int) -> Webcom:
        return Webcom(
            TOKEN,
            base_url="http://127.0.0.1:9",
            transport=MockTransport(gateway),
            clock=clock,
            account="webcom-ranges-test",
            **extra,  # type: ignore[arg-type]
        )

    one, two, narrow = client(), client(), client(client_id_bits=20)
    assert one.ranges is two.ranges is narrow.ranges is memory_ranges("webcom-ranges-test")
    numbers = [f"7916{i:07d}" for i in range(450)]
    async with one, two, narrow:
        for n, sender in enumerate((one, two, narrow, one)):
            before = len(seen)
            report = await sender.send(f"Sale {n}", to=iter(numbers), sender="Shop")
            assert report.accepted == 450 and len(seen) - before == 450
            if sender is narrow:
                assert all(0 < i < 2**20 for i in seen[before:])
    assert len(seen) == 4 * 450 == len(set(seen))


@given(
    bits=st.sampled_from([16, 31]),
    start=st.integers(0, 2**31),
    first=st.sampled_from([1, 7, 100]),
    rows=st.one_of(
        st.integers(0, 3000).flatmap(
            lambda a: st.integers(1, 150).map(lambda n: list(range(a, a + n)))
        ),
        st.lists(st.integers(0, 3000), min_size=1, max_size=20),
    ),
)
@example(bits=16, start=2**16 - 51, first=100, rows=list(range(100)))  # across the wrap
async def test_a_batch_gets_the_ids_its_recipients_get_one_by_one(
    bits: int, start: int, first: int, rows: list[int]
) -> None:
    """The ids of a batch at once (a run of indices in one block, across a wrap of the id
    space or not; or any indices) are each recipient's own."""
    ranges = MemoryRanges(start=start)
    blocks = IdBlocks(ranges, b"k", bits, first=first)
    await blocks.cover(max(rows))
    assert blocks.ids(rows) == [blocks.id(i) for i in rows]
    covered = blocks.covered  # the first index of the first block not claimed
    assert blocks._block(covered - 1) == len(blocks._blocks) - 1
    assert blocks._block(covered) == len(blocks._blocks)


class _Stalling(MemoryRanges):
    """Ranges that give the first block and then wait for ever on the next (or fail)."""

    def __init__(self, failure: Exception | None = None) -> None:
        super().__init__(0)
        self.failure = failure
        self.waiting = asyncio.Event()
        self.claims = 0

    async def claim(self, key: bytes, count: int, size: int) -> int:
        self.claims += 1
        if self.claims > 1:
            self.waiting.set()
            if self.failure is not None:
                raise self.failure
            await asyncio.Event().wait()
        return await super().claim(key, count, size)


def _entries(numbers: list[str]) -> list[tuple[int, str]]:
    """Indexed entries: the first in the first id block, the others far past it."""
    return [(0, numbers[0])] + [(5_000 + n, number) for n, number in enumerate(numbers[1:])]


@pytest.mark.parametrize("given", ["async", "list"])
async def test_a_send_cancelled_while_the_ids_of_what_it_read_are_claimed_settles_them(
    clock: FakeClock, given: str
) -> None:
    """An indexed entry past the blocks claimed waits for its own block, after it is read.
    The async input's claim was made entry by entry in a generator between the caller's
    input and the send, so a cancellation during it left the entry read with no outcome.
    Now the send claims a chunk's ids itself, and settles what it read on a cancellation."""
    numbers = [f"7916{i:07d}" for i in range(3)]
    ranges = _Stalling()

    async def source() -> AsyncIterator[tuple[int, str]]:
        for entry in _entries(numbers):
            yield entry

    outcomes: list[Outcome] = []
    transport = MockTransport(lambda request: HttpResponse(500, b""))
    async with Webcom(TOKEN, base_url="http://127.0.0.1:9", transport=transport, clock=clock) as w:
        w.ranges = ranges
        to: Any = source() if given == "async" else _entries(numbers)
        send = asyncio.ensure_future(
            w.send("hi", to=to, sender="Shop", indexed=True, on_outcome=outcomes.append)
        )
        await ranges.waiting.wait()
        send.cancel()
        with pytest.raises(asyncio.CancelledError):
            await send
    assert transport.requests == []
    assert sorted((o.index, o.phone, o.status, o.reason) for o in outcomes) == [
        (index, number, Status.FAILED, "not sent: the send was cancelled")
        for index, number in _entries(numbers)
    ]


async def test_a_failed_claim_of_ids_fails_the_send_as_the_accounts_not_the_callers(
    clock: FakeClock,
) -> None:
    """The store of the ids failing (Redis down) was raised out of the send as if the
    caller's input had failed. It is the account's: nothing of the send goes, each recipient
    ends failed with the store's error, and the report carries it."""
    numbers = [f"7916{i:07d}" for i in range(3)]
    ranges = _Stalling(StateBackendError("the store is down"))

    async def source() -> AsyncIterator[tuple[int, str]]:
        for entry in _entries(numbers):
            yield entry

    transport = MockTransport(lambda request: HttpResponse(500, b""))
    async with Webcom(TOKEN, base_url="http://127.0.0.1:9", transport=transport, clock=clock) as w:
        w.ranges = ranges
        to: Any = source()
        report = await w.send("hi", to=to, sender="Shop", indexed=True)
    assert transport.requests == []
    assert isinstance(report.error, StateBackendError)
    assert sorted((o.index, o.status, o.reason) for o in report.outcomes) == [
        (
            index,
            Status.FAILED,
            "not sent: the send stopped after an account-wide error: the store is down",
        )
        for index, _ in _entries(numbers)
    ]
