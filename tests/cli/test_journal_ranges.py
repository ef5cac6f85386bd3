"""A campaign's id blocks live in its journal: a resumed run (a new process, whose own
ranges start elsewhere) gives its recipients the ids the dead run gave them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smsbridge._campaign import Journal
from smsbridge._campaign.run import JournalRanges
from smsbridge._core.ranges import IdBlocks, MemoryRanges


async def _inline(function: Any, *args: Any) -> Any:
    return function(*args)


async def test_a_resumed_run_finds_the_dead_runs_ids(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "c.journal")
    try:
        dead = IdBlocks(JournalRanges(MemoryRanges(0), journal, _inline), b"campaign", 31)
        await dead.cover(5_000)
        resumed = IdBlocks(JournalRanges(MemoryRanges(10**6), journal, _inline), b"campaign", 31)
        await resumed.cover(9_000)  # further than the dead run got: new blocks from its own
        assert [resumed.id(i) for i in range(5_001)] == [dead.id(i) for i in range(5_001)]
        assert resumed.id(9_000) > 10**6
    finally:
        journal.close()
