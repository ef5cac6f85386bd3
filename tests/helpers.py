"""Helpers shared by the tests."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from smsbridge import Report

TOKEN = "test-token"


def ua_numbers(count: int, start: int = 0) -> Iterator[str]:
    """Distinct valid Ukrainian mobile numbers, lazily."""
    for i in range(start, start + count):
        yield f"38050{i:07d}"


async def then_waiting(entries: Iterable[Any], given: asyncio.Event) -> AsyncIterator[Any]:
    """An async input that gives ``entries``, sets ``given``, then waits for ever (a queue
    nobody fills)."""
    for entry in entries:
        yield entry
    given.set()
    await asyncio.Event().wait()
    yield "never read"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any SMSBRIDGE_ setting, plus ``extra``: what a
    subprocess under test should see."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSBRIDGE_")}
    return {**env, **extra}


class ThreadedFake:
    """A fake gateway served from a thread of its own, for tests that call the command's
    ``main()`` in this thread (it runs its own event loop)."""

    def __init__(self, fake: Any) -> None:
        import asyncio
        import threading

        self.fake = fake
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Any:
        import asyncio

        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self._loop).result(10)
        return self.fake

    def __exit__(self, *exc: object) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.fake.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


EXE = Path(sys.executable).with_name("smsbridge")


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The command, with a clean environment plus `env`."""
    return subprocess.run(
        [str(EXE), *args],
        env=clean_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def arun(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """:func:`run` from a test whose event loop serves a fake meanwhile."""
    done = await anyio.run_process([str(EXE), *args], env=clean_env(**(env or {})), check=False)
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command's ``main()`` in this process, with a clean environment plus ``env``: what
    :func:`run` gives, without a new interpreter's start-up. Call it where no event loop runs
    (a plain test, or ``anyio.to_thread``): ``main`` runs its own."""
    from smsbridge._cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(clean_env(**(env or {})))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(["smsbridge", *args], code, out.getvalue(), err.getvalue())


async def ainvoke(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """:func:`invoke` from a test that runs an event loop."""
    return await anyio.to_thread.run_sync(lambda: invoke(*args, env=env))


def last_json(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    line = result.stdout.strip().splitlines()[-1]
    return json.loads(line)  # type: ignore[no-any-return]


async def read_all(stream: anyio.abc.ByteReceiveStream | None) -> str:
    """Everything a finished process wrote to a pipe."""
    assert stream is not None
    chunks = []
    with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError):
        while True:
            chunks.append(await stream.receive())
    return b"".join(chunks).decode()


_ZYGOTE = """
import json, os, sys
from smsbridge._cli import main
for line in sys.stdin:
    argv, env = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.environ.clear()
        os.environ.update(env)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        code = 1
        try:
            code = main(argv)
        finally:
            os._exit(code)
    print(pid, flush=True)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


class Zygote:
    """A process that has imported the command once and forks a copy of itself for each run,
    one run at a time: a run that starts in milliseconds instead of an interpreter's start-up,
    and dies of SIGKILL like any other process (for tests that kill runs again and again)."""

    def __init__(self) -> None:
        self._process: anyio.abc.Process | None = None
        self._buffer = b""
        self.pid: int | None = None

    async def __aenter__(self) -> Zygote:
        self._process = await anyio.open_process([sys.executable, "-c", _ZYGOTE])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._process is not None
        await self._process.aclose()

    async def start(self, args: list[str], env: dict[str, str]) -> None:
        """Start ``smsbridge *args`` in a clean environment plus ``env``."""
        assert self._process is not None and self._process.stdin and self._process.stdout
        assert self.pid is None, "one run at a time"
        line = json.dumps([args, clean_env(**env)]) + "\n"
        await self._process.stdin.send(line.encode())
        self.pid = await self._line()

    async def _line(self) -> int:
        assert self._process is not None and self._process.stdout
        while b"\n" not in self._buffer:
            self._buffer += await self._process.stdout.receive()
        line, self._buffer = self._buffer.split(b"\n", 1)
        return int(line)

    def running(self) -> bool:
        """Whether the run is still going (the zygote reaps a run the moment it ends)."""
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the run."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGKILL)

    async def wait(self) -> int:
        """The run's exit code (negative: the signal that killed it)."""
        code = await self._line()
        self.pid = None
        return code


def csv_file(path: Path, rows: list[str], header: str | None = "phone") -> Path:
    path.write_text("\n".join(([header] if header else []) + rows) + "\n", encoding="utf-8")
    return path


async def held_after_first(
    entries: list[str], go: anyio.Event, read: list[str], started: anyio.Event
) -> AsyncIterator[str]:
    """The first entry, then the rest once ``go`` is set: the input of a send that is still
    going. Each entry read is noted in ``read``; ``started`` is set with the first."""
    for n, entry in enumerate(entries):
        if n == 1:
            await go.wait()
        read.append(entry)
        started.set()
        yield entry


@contextlib.asynccontextmanager
async def keyed_run_going(
    client: Any, numbers: list[str], key: str = "k"
) -> AsyncIterator[list[Report]]:
    """A keyed send of "Hi" from "Shop" to ``numbers`` that is still going inside the block:
    it read the first number and waits. Leaving the block lets it read the rest and end; its
    report is then in the list yielded."""
    go, started = anyio.Event(), anyio.Event()
    reports: list[Report] = []

    async def run() -> None:
        entries = held_after_first(numbers, go, [], started)
        reports.append(await client.send("Hi", to=entries, sender="Shop", idempotency_key=key))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await started.wait()
        try:
            yield reports
        finally:
            go.set()


async def window_entries(client: Any, window: Any, keys: Sequence[Any]) -> list[bytes | None]:
    """What a :class:`~smsbridge.redis.RedisWindow` holds now for each key: its state and
    holder (``b"r<send>/<run>:<index>"``, ``b"c…"``), or ``None``; read straight from Redis
    through ``client`` (redis-py), newest bucket first."""
    prefix = window._hashes[0]
    buckets = sorted(
        (int(name.rsplit(b":", 1)[1]) for name in await client.keys(prefix + "*")), reverse=True
    )
    seconds, micros = await client.time()
    now = seconds * 1000 + micros // 1000
    out: list[bytes | None] = []
    for key in keys:
        value = None
        for bucket in buckets:
            value = await client.hget(f"{prefix}{bucket}", key)
            if value is not None:
                break
        out.append(value[13:] if value is not None and int(value[:13]) > now else None)
    return out
