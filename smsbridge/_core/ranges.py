"""Ids that no two recipients of one account ever share.

A gateway that de-duplicates by an id the caller gives each message (Webcom's
``client_id_sms``) makes repeats safe, and makes a shared id a silent loss: the second
recipient is "already sent". So a send's ids come from ranges the account hands out
(:class:`IdRanges`: in this process, or through Redis across processes), a block at a time
as its input is read (:class:`IdBlocks`). The same send (the same key) finds the same ranges
again on a retry, and a campaign's journal keeps them for its resumes.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from .errors import ConfigurationError

__all__ = ["IdBlocks", "IdRanges", "MemoryRanges", "memory_ranges"]


class IdRanges(Protocol):
    """Where an account's ids come from."""

    async def claim(self, key: bytes, count: int, size: int) -> int:
        """The first of ``count`` consecutive ids (counted modulo ``size``) for the block
        named ``key``: the same for the same key while it is remembered; blocks of different
        keys never overlap until ``size`` ids have been handed out in all."""
        ...


class MemoryRanges:
    """An account's ranges in this process: a counter from a random point (or ``start``), and
    the blocks it gave out lately (the newest 100,000) by key."""

    _KEPT = 100_000

    def __init__(self, start: int | None = None) -> None:
        self._next: int | None = start
        self._given: OrderedDict[bytes, int] = OrderedDict()

    async def claim(self, key: bytes, count: int, size: int) -> int:
        """See :meth:`IdRanges.claim`."""
        given = self._given.get(key)
        if given is not None:
            return given
        if self._next is None:
            self._next = secrets.randbelow(size)
        start = self._next % size
        self._next = (start + count) % size
        self._given[key] = start
        if len(self._given) > self._KEPT:
            self._given.popitem(last=False)
        return start


_ACCOUNTS: dict[str, MemoryRanges] = {}


def memory_ranges(account: str) -> MemoryRanges:
    """The ranges of ``account`` in this process, shared by every client of it."""
    ranges = _ACCOUNTS.get(account)
    if ranges is None:
        ranges = _ACCOUNTS[account] = MemoryRanges()
    return ranges


class IdBlocks:
    """The ids of one send: ``1 + (start + offset) % (2**bits - 1)``, never 0.

    Block ``k`` covers the recipients ``[first * (2**k - 1), first * (2**(k + 1) - 1))``, so a
    send of ``n`` claims about ``log2(n / first)`` blocks and leaves at most half of its last
    block unused. :meth:`cover` claims the block of an index before its recipient is read;
    :meth:`id` and :meth:`ids` then only read.

    Args:
        ranges: the account's ranges.
        key: the send's key: the same key, the same ids.
        bits: the width of an id.
        first: the size of the first block.
    """

    __slots__ = ("_blocks", "_first", "_key", "_ranges", "limit", "size")

    def __init__(self, ranges: IdRanges, key: bytes, bits: int, first: int = 100) -> None:
        if not 16 <= bits <= 53:
            raise ConfigurationError(f"an id's width must be 16 to 53 bits, got {bits!r}")
        self._ranges = ranges
        self._key = hashlib.blake2b(key, digest_size=16).digest()
        self.size = (1 << bits) - 1
        self._first = first
        self._blocks: list[int] = []
        # the blocks whose ids, together, still fit in the id space without wrapping onto
        # each other: an index at or past this would share an id with another of the send
        whole = ((self.size // first + 1).bit_length() - 1) if self.size >= first else 0
        self.limit = first * ((1 << whole) - 1)
        """Indices below this get ids distinct within the send; the others cannot."""

    def _block(self, index: int) -> int:
        return (index // self._first + 1).bit_length() - 1

    async def cover(self, index: int) -> None:
        """Claim the blocks up to the one of ``index``."""
        wanted = self._block(index)
        while len(self._blocks) <= wanted:
            k = len(self._blocks)
            name = self._key + k.to_bytes(2, "big")
            self._blocks.append(await self._ranges.claim(name, self._first << k, self.size))

    def id(self, index: int) -> int:
        """The id of the recipient at ``index`` (its block claimed)."""
        k = self._block(index)
        offset = index - self._first * ((1 << k) - 1)
        return 1 + (self._blocks[k] + offset) % self.size

    def ids(self, indices: Sequence[int]) -> list[int]:
        """The ids of the recipients at ``indices`` (their blocks claimed): a run of
        consecutive indices in one block at once."""
        n = len(indices)
        if n:
            first = indices[0]
            k = self._block(first)
            if self._block(first + n - 1) == k and indices == list(range(first, first + n)):
                start = (self._blocks[k] + first - self._first * ((1 << k) - 1)) % self.size
                if start + n <= self.size:
                    return list(range(start + 1, start + n + 1))
        return [self.id(index) for index in indices]

    @property
    def covered(self) -> int:
        """How many indices the claimed blocks cover: every index below this one."""
        return self._first * ((1 << len(self._blocks)) - 1)
