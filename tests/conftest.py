"""Shared fixtures: fake gateways on loopback, fake clocks, generated numbers."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from smsbridge.testing import FakeClock, FakeSmsClub

from .helpers import TOKEN


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each long test at the head of one worker's share: pytest-xdist's ``worksteal`` hands
    each worker an even, contiguous share of the list at first (then an idle worker steals
    from the end of a busy one's), so a long test whose place is ``k`` goes first in share
    ``k`` modulo the number of workers, and the short ones fill the rest."""

    def place(item: pytest.Item) -> int:
        mark = item.get_closest_marker("heavy")
        if mark is None:
            return -1
        callspec = getattr(item, "callspec", None)
        return int(mark.args[0]) + (2 * callspec.params["half"] if callspec else 0)

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    heavy = sorted((i for i in items if place(i) >= 0), key=place)
    rest = iter([i for i in items if place(i) < 0])
    ordered: list[pytest.Item] = []
    for k in range(workers):
        size = len(items) * (k + 1) // workers - len(items) * k // workers
        first = [i for i in heavy if place(i) % workers == k]
        ordered += first + list(itertools.islice(rest, max(0, size - len(first))))
    items[:] = ordered + list(rest)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when slept on."""
    return FakeClock(1000.0)


@pytest.fixture
async def smsclub() -> AsyncIterator[FakeSmsClub]:
    """A fake SMS Club on a free loopback port."""
    async with FakeSmsClub(tokens=[TOKEN]) as fake:
        yield fake


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A private redis-server on loopback that a test may stop and start again."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it answers."""
        self._process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def freeze(self) -> None:
        """Stop it where it stands (SIGSTOP): connections open, nothing answered."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let it run again (SIGCONT): it carries out what arrived meanwhile."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Kill it."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have redis-server (.ci/run installs it)")
        pytest.skip("no Redis here: install redis-server or set SMSBRIDGE_TEST_REDIS_URL")
    return binary


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """SMSBRIDGE_TEST_REDIS_URL, or a redis-server started for the session."""
    url = os.environ.get("SMSBRIDGE_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = RedisServer(_redis_binary())
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which it may stop and restart."""
    server = RedisServer(_redis_binary())
    server.start()
    yield server
    server.stop()
