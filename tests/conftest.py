"""Shared fixtures: fake gateways on loopback, fake clocks, generated numbers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from smsbridge.testing import FakeClock, FakeSmsClub

from .helpers import TOKEN


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when slept on."""
    return FakeClock(1000.0)


@pytest.fixture
async def smsclub() -> AsyncIterator[FakeSmsClub]:
    """A fake SMS Club on a free loopback port."""
    async with FakeSmsClub(tokens=[TOKEN]) as fake:
        yield fake
