"""A fake gateway in a process of its own, as a real gateway would be.

Timing tests need this: a fake sharing the client's event loop stamps arrivals late whenever
the loop is busy, which looks like bursts the client never sent.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Self

import aiohttp
import msgspec

from .._fake import Faults, Record

__all__ = ["FakeProcess"]


class FakeProcess:
    """Runs ``python -m smsbridge.testing PROVIDER`` on a free loopback port.

    ::

        async with FakeProcess("smsclub", "--rate-limit", "200") as fake:
            ...  # send to fake.url
            record = await fake.record()

    Args:
        provider: ``smsclub`` (and the other fakes as they exist).
        *args: command-line options of the fake (``--token``, ``--rate-limit``...).
    """

    def __init__(self, provider: str, *args: str) -> None:
        self.provider = provider
        self.args: Sequence[str] = args
        self.url = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None  # for the control calls, kept open

    async def __aenter__(self) -> Self:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "smsbridge.testing",
            self.provider,
            "--port",
            "0",
            *self.args,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), 30)
        if not line.startswith(b"listening on "):
            await self.__aexit__()
            raise RuntimeError(f"the fake did not start: {line!r}")
        self.url = line.decode().split()[-1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            await proc.wait()

    def _control(self) -> aiohttp.ClientSession:
        """One session for the control calls (a test may ask for the count every few ms)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def record(self) -> Record:
        """What the fake saw so far."""
        async with self._control().get(f"{self.url}/_fake/record") as response:
            return msgspec.json.decode(await response.read(), type=Record)

    async def count(self) -> int:
        """How many requests the fake has seen so far (cheaper than :meth:`record`)."""
        async with self._control().get(f"{self.url}/_fake/count") as response:
            return int(await response.text())

    async def set_faults(self, faults: Faults) -> None:
        """Replace the fake's random faults (:class:`ValueError` with the fake's reason if it
        refuses them)."""
        data = msgspec.json.encode(faults)
        async with self._control().post(f"{self.url}/_fake/faults", data=data) as response:
            if response.status == 400:
                reason = msgspec.json.decode(await response.read()).get("error", "")
                raise ValueError(f"the fake refused the faults: {reason}")
            response.raise_for_status()
