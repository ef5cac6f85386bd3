"""An in-memory Redis for the scripts smsbridge runs, on virtual time, with Redis's failures.

Each Lua script of :mod:`smsbridge.redis` has its model here, written from the script line by
line (a test runs random operations against both and a real redis-server and compares). The
server can be *frozen* for a while: a command that arrives then is carried out when the freeze
ends, in arrival order, even if the client gave up on it long before (its socket timed out) or
died. A command can also fail outright (not carried out) or lose its reply (carried out).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import msgspec

from ...redis import scripts
from .loop import World
from .net import Process

__all__ = ["FakeRedis", "RedisFaults"]

Value = str | int


class RedisFaults(msgspec.Struct, kw_only=True):
    """How Redis misbehaves in one run.

    Attributes:
        fail: chance a command is refused (connection error) and not carried out.
        lost: chance a command is carried out and its reply lost (connection error).
        freezes: ``(start, end)`` virtual times when the server does nothing.
        socket_timeout: the client's socket timeout, in seconds.
        latency: one way, in seconds.
    """

    fail: float = 0.0
    lost: float = 0.0
    freezes: list[tuple[float, float]] = msgspec.field(default_factory=list)
    socket_timeout: float = 2.0
    latency: float = 0.0003


class FakeRedis:
    """The server: one per world, outliving the processes that use it."""

    def __init__(
        self, world: World, faults: RedisFaults, rng: random.Random, stats: Counter[str]
    ) -> None:
        self.world = world
        self.faults = faults
        self.rng = rng
        self.stats = stats
        self.values: dict[str, tuple[Value, float]] = {}  # key -> (value, expires at)
        self.zsets: dict[str, tuple[dict[str, int], float]] = {}
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._models: dict[str, Callable[[list[str], list[Any], float], Any]] = {
            scripts["acquire"]: self._acquire,
            scripts["defer"]: self._defer,
            scripts["reserve"]: self._reserve,
            scripts["commit"]: self._commit,
            scripts["release"]: self._release,
            scripts["hold"]: self._hold,
            scripts["unhold"]: self._unhold,
            scripts["claim"]: self._claim,
        }

    def client(self, process: Process) -> _Client:
        """A connection of ``process``: what :class:`~smsbridge.redis.RedisState` takes."""
        return _Client(self, process)

    # ----------------------------------------------------------------- time and order

    def settle(self, until: float = math.inf) -> None:
        """Carry out every command due by ``until``, in order."""
        due = self._due
        due.sort(key=lambda d: (d[0], d[1]))
        while due and due[0][0] <= until:
            _, _, apply = due.pop(0)
            apply()

    def _applied_at(self, arrival: float) -> float:
        for start, end in self.faults.freezes:
            if start <= arrival < end:
                return end
        return arrival

    def _get(self, key: str, now: float) -> Value | None:
        entry = self.values.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self.values[key]
            return None
        return entry[0]

    def _zset(self, key: str, now: float) -> dict[str, int]:
        entry = self.zsets.get(key)
        if entry is None or entry[1] <= now:
            self.zsets.pop(key, None)
            return {}
        return entry[0]

    def live(self, now: float | None = None) -> dict[str, Value]:
        """The window entries and other plain keys alive at ``now``."""
        at = self.world.now if now is None else now
        return {k: v for k, (v, until) in self.values.items() if until > at}

    # ----------------------------------------------------------------- the scripts' models

    def _acquire(self, keys: list[str], args: list[Any], now: float) -> list[int]:
        now_us = int(args[3]) if len(args) > 3 and args[3] != "" else int(now * 1_000_000)
        limit, span, member = int(args[0]), int(args[1]), str(args[2])
        zset = self._zset(keys[0], now)
        for dropped in args[6:]:
            zset.pop(str(dropped), None)
        first_come = len(args) < 5 or str(args[4]) != "1"
        lead = int(args[5]) if len(args) > 5 else 0
        start = max(now_us + lead, int(self._get(keys[1], now) or 0))
        entries = {m: s for m, s in zset.items() if s > now_us - span}
        ordered = sorted(entries.items(), key=lambda e: (e[1], e[0]))
        count = len(ordered)
        if count >= limit:
            start = max(start, ordered[count - limit][1] + span)
        if count > 0 and first_come:
            start = max(start, ordered[-1][1])
        entries[member] = start
        ttl_ms = math.ceil((start - now_us + span) / 1000) + 1000
        self.zsets[keys[0]] = (entries, now + ttl_ms / 1000)
        return [start, now_us]

    def _defer(self, keys: list[str], args: list[Any], now: float) -> int:
        now_us = int(args[1]) if len(args) > 1 else int(now * 1_000_000)
        until = now_us + int(args[0])
        if until > int(self._get(keys[0], now) or 0):
            ttl_ms = math.ceil(int(args[0]) / 1000) + 1000
            self.values[keys[0]] = (until, now + ttl_ms / 1000)
        return 0

    def _reserve(self, keys: list[str], args: list[Any], now: float) -> str:
        ms, holder, indices = int(args[0]), str(args[1]), _indices(args[2])
        send = holder.split("/", 1)[0] + "/"
        out = []
        for key, index in zip(keys, indices, strict=False):
            body = f"{holder}:{index}"
            held = self._get(key, now)
            if held is None:
                self.values[key] = ("r" + body, now + ms / 1000)
                out.append("0")
            elif str(held)[0] == "c":
                out.append("1")
            elif held == "r" + body:
                self.values[key] = (held, now + ms / 1000)
                out.append("0")
            elif held == "R" + body:
                self.values[key] = (held, now + ms / 1000)
                out.append("3")
            elif str(held)[1:].startswith(send) and str(held).endswith(f":{index}"):
                self.values[key] = ("R" + body, now + ms / 1000)
                out.append("3")
            else:
                out.append("2")
        return "".join(out)

    def _commit(self, keys: list[str], args: list[Any], now: float) -> int:
        ms, holder, indices = int(args[0]), str(args[1]), _indices(args[2])
        for key, index in zip(keys, indices, strict=False):
            self.values[key] = (f"c{holder}:{index}", now + ms / 1000)
        return len(indices)

    def _release(self, keys: list[str], args: list[Any], now: float) -> int:
        holder, n = str(args[0]), 0
        for key, index in zip(keys, _indices(args[1]), strict=False):
            held = self._get(key, now)
            text = str(held) if held is not None else "c"
            if text[0] == "c":
                match = False
            elif "/" in holder:
                match = text[1:] == f"{holder}:{index}"
            else:
                match = text[1:].startswith(f"{holder}/") and text.endswith(f":{index}")
            if match:
                del self.values[key]
                n += 1
        return n

    def _hold(self, keys: list[str], args: list[Any], now: float) -> int:
        held = self._get(keys[0], now)
        if held is not None and held != str(args[0]):
            return 0
        self.values[keys[0]] = (str(args[0]), now + int(args[1]) / 1000)
        return 1

    def _unhold(self, keys: list[str], args: list[Any], now: float) -> int:
        if self._get(keys[0], now) == str(args[0]):
            del self.values[keys[0]]
            return 1
        return 0

    def _claim(self, keys: list[str], args: list[Any], now: float) -> int:
        counter, name = keys
        count, size, remember = int(args[0]), int(args[1]), float(args[2])
        given = self._get(name, now)
        if given is not None:
            return int(given)
        start = int(self._get(counter, now) or 0) % size
        self.values[counter] = ((start + count) % size, math.inf)
        self.values[name] = (start, now + remember)
        return start

    # ----------------------------------------------------------------- a command's journey

    async def run(
        self, process: Process, source: str, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        """One script call as a client sees it: sent, maybe frozen, maybe lost, answered."""
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        process.check()
        model = self._models[source]
        faults, rng = self.faults, self.rng
        sent = self.world.now
        if rng.random() < faults.fail:
            self.stats["redis: command refused"] += 1
            await anyio.sleep(faults.latency)
            raise RedisConnectionError("refused (simulated)")
        applied_at = self._applied_at(sent + faults.latency)
        if applied_at > sent + faults.latency:
            self.stats["redis: command frozen"] += 1
        box: list[Any] = []
        self._seq += 1
        keys_, args_ = list(keys), list(args)
        self._due.append(
            (applied_at, self._seq, lambda: box.append(model(keys_, args_, applied_at)))
        )
        answered_at = applied_at + faults.latency
        if answered_at - sent > faults.socket_timeout:
            self.stats["redis: client gave up, server carried on"] += 1
            await anyio.sleep(faults.socket_timeout)
            raise RedisTimeoutError("timeout (simulated)")
        await anyio.sleep(answered_at - sent)
        process.check()
        self.settle(self.world.now)
        if rng.random() < faults.lost:
            self.stats["redis: reply lost"] += 1
            raise RedisConnectionError("connection lost after the command (simulated)")
        return box[0]


class _Script:
    def __init__(self, client: _Client, source: str) -> None:
        self._client = client
        self._source = source

    async def __call__(
        self, keys: Sequence[str] = (), args: Sequence[Any] = (), client: Any = None
    ) -> Any:
        c = self._client
        return await c.server.run(c.process, self._source, keys, args)


class _Client:
    """What :class:`~smsbridge.redis.RedisState` uses of ``redis.asyncio.Redis``."""

    def __init__(self, server: FakeRedis, process: Process) -> None:
        self.server = server
        self.process = process

    def register_script(self, source: str) -> _Script:
        return _Script(self, source)

    async def aclose(self) -> None:
        return None


def _indices(joined: Any) -> list[str]:
    """The window scripts' comma-separated indices (Lua's ``gmatch('[^,]+')``)."""
    return [part for part in str(joined).split(",") if part]
