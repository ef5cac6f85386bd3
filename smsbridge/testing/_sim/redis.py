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
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anyio
import msgspec

from ...redis import scripts
from .loop import World
from .net import WRITER, Process

__all__ = ["FakeRedis", "RedisFaults"]

Value = str | int
K = TypeVar("K")
V = TypeVar("V")


class RedisFaults(msgspec.Struct, kw_only=True):
    """How Redis misbehaves in one run.

    Attributes:
        fail: chance a command is refused (connection error) and not carried out.
        lost: chance a command is carried out and its reply lost (connection error).
        freezes: ``(start, end)`` virtual times when the server does nothing.
        limiter_lost: virtual times when the server loses the rate limiter's keys (a
            restart without persistence, a flush, an eviction; the window's entries are
            kept, as a window is told to keep them).
        socket_timeout: the client's socket timeout, in seconds.
        latency: one way, in seconds.
    """

    fail: float = 0.0
    lost: float = 0.0
    freezes: list[tuple[float, float]] = msgspec.field(default_factory=list)
    limiter_lost: list[float] = msgspec.field(default_factory=list)
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
        self.hashes: dict[str, tuple[dict[Any, str], float]] = {}  # key -> (fields, expires at)
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        # told of each command as it is sent, with the name of the send it is for
        self.on_command: Callable[[str], None] | None = None
        # the sends (by name) a release of which their window gave up on (see run.py)
        self.unreleased_by: set[str] = set()
        self._seq = 0
        for at in faults.limiter_lost:
            self._seq += 1
            self._due.append((at, self._seq, self._lose_limiter))
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
        at, frozen = arrival, True
        while frozen:  # freezes may overlap: it wakes when none holds it
            frozen = False
            for start, end in self.faults.freezes:
                if start <= at < end:
                    at, frozen = end, True
        return at

    def _lose_limiter(self) -> None:
        """Every account's starts, deferral and their generation, gone."""
        self.stats["redis: lost the limiter's starts"] += 1
        for key in [k for k in self.zsets if k.endswith(":starts")]:
            del self.zsets[key]
        for key in [k for k in self.values if k.endswith((":defer", ":mark"))]:
            del self.values[key]

    def _get(self, key: str, now: float) -> Value | None:
        entry = self.values.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self.values[key]
            return None
        return entry[0]

    def _zset(self, key: str, now: float) -> dict[str, int]:
        return _alive(self.zsets, key, now)

    def live(self, now: float | None = None) -> dict[str, Value]:
        """The plain keys alive at ``now`` (the window's entries: :meth:`window`)."""
        at = self.world.now if now is None else now
        return {k: v for k, (v, until) in self.values.items() if until > at}

    # ----------------------------------------------------------------- the scripts' models

    def _acquire(self, keys: list[str], args: list[Any], now: float) -> list[int | str]:
        now_us = int(args[3]) if len(args) > 3 and args[3] != "" else int(now * 1_000_000)
        limit, span, member = int(args[0]), int(args[1]), str(args[2])
        told = str(args[7]) if len(args) > 7 else ""
        heard, live, back = _number(args, 8), _number(args, 9), _number(args, 10)
        mark = self._get(keys[2], now)
        generation, written = None, 0
        if mark is not None:
            generation, _, at = str(mark).rpartition(" ")
            written = int(at)
        zset = self._zset(keys[0], now)
        expires = self.zsets[keys[0]][1] if zset else -math.inf
        if generation is None or written < heard or not zset:
            generation = f"{float(now_us):.14g}:{member}"  # as Lua writes a number
            for n in range(1, limit + 1):
                zset[f"~x:{n}"] = now_us
            expires = now + 604_800
        self.values[keys[2]] = (f"{generation} {now_us}", now + 604_800)
        self.zsets[keys[0]] = (zset, expires)
        if told != "" and generation != told and live > 0 and back == 0:
            return [-1, now_us, generation]
        for i in range(back):
            zset.setdefault(str(args[12 + 2 * i]), int(args[11 + 2 * i]))
        for dropped in args[11 + 2 * back :]:
            zset.pop(str(dropped), None)
        first_come = len(args) < 5 or str(args[4]) != "1"
        lead, width = _number(args, 5), _number(args, 6)
        start = max(now_us + lead, int(self._get(keys[1], now) or 0))
        entries = {m: s for m, s in zset.items() if s > now_us - span}
        ordered = sorted(entries.items(), key=lambda e: (e[1], e[0]))
        count = len(ordered)
        if count >= limit:
            start = max(start, ordered[count - limit][1] + span)
        if count > 0 and first_come:
            last, latest = ordered[-1]
            marked = re.search(r"/([0-9]+)\Z", last)
            start = max(start, latest - (int(marked.group(1)) if marked else 0))
        entries[member] = start + width
        self.zsets[keys[0]] = (entries, now + 604_800)  # as the script: a week past it
        return [start, now_us, generation]

    def _defer(self, keys: list[str], args: list[Any], now: float) -> int:
        now_us = int(args[1]) if len(args) > 1 else int(now * 1_000_000)
        until = now_us + int(args[0])
        if until > int(self._get(keys[0], now) or 0):
            ttl_ms = math.ceil(int(args[0]) / 1000) + 1000
            self.values[keys[0]] = (until, now + ttl_ms / 1000)
        return 0

    # the window: hashes per bucket of time; a field's value "<until, ms, 13 digits><state><body>"

    def _bucketed(self, args: list[Any], now: float) -> tuple[int, int, int, list[Any]]:
        """``(now in ms, life in ms, the buckets' length in ms, the fields)`` of a window
        call."""
        now_ms = int(args[3]) if str(args[3]) != "" else int(now * 1000)
        return now_ms, int(args[0]), int(args[4]), list(args[5:])

    def _newest(
        self, prefix: str, fields: list[Any], now_ms: int, life: int, span: int
    ) -> list[str | None]:
        found: list[str | None] = [None] * len(fields)
        for b in _buckets(now_ms, life, span):
            entries = self._hash(f"{prefix}{b}", now_ms / 1000)
            for i, field in enumerate(fields):
                if found[i] is None and field in entries:
                    found[i] = entries[field]
        return found

    def _write(self, prefix: str, sets: dict[Any, str], now_ms: int, life: int, span: int) -> None:
        bucket = now_ms // span
        key = f"{prefix}{bucket}"
        entries = self._hash(key, now_ms / 1000)
        entries.update(sets)
        keep = (bucket + 1) * span + life - now_ms + 1000
        expires = self.hashes[key][1] if key in self.hashes else now_ms / 1000
        if expires * 1000 - now_ms < keep:
            expires = (now_ms + keep) / 1000
        self.hashes[key] = (entries, expires)

    def _hash(self, key: str, now: float) -> dict[Any, str]:
        return _alive(self.hashes, key, now)

    def _reserve(self, keys: list[str], args: list[Any], now: float) -> str:
        now_ms, life, span, fields = self._bucketed(args, now)
        holder, indices = str(args[1]), _indices(args[2])
        found = self._newest(keys[0], fields, now_ms, life, span)
        send = holder.split("/", 1)[0] + "/"
        stamp = f"{now_ms + life:013d}"
        out: list[str] = []
        sets: dict[Any, str] = {}
        for i, (field, index) in enumerate(zip(fields, indices, strict=False)):
            body, tail = f"{holder}:{index}", f":{index}"
            value = sets.get(field, found[i])
            state = held = None
            if value is not None and int(value[:13]) > now_ms:
                state, held = value[13], value[14:]
            mark = None
            if state is None:
                mark = "r"
                out.append("0")
            elif state == "c":
                out.append("1")
            elif held == body:
                mark = state
                out.append("0" if state == "r" else "3")
            elif held is not None and held.startswith(send) and held.endswith(tail):
                mark = "R"
                out.append("3")
            else:
                out.append("2")
            if mark is not None:
                sets[field] = stamp + mark + body
        if sets:
            self._write(keys[0], sets, now_ms, life, span)
        return "".join(out)

    def _commit(self, keys: list[str], args: list[Any], now: float) -> int:
        now_ms, life, span, fields = self._bucketed(args, now)
        holder, indices = str(args[1]), _indices(args[2])
        stamp = f"{now_ms + life:013d}c"
        sets = {
            field: f"{stamp}{holder}:{index}" for field, index in zip(fields, indices, strict=False)
        }
        if sets:
            self._write(keys[0], sets, now_ms, life, span)
        return len(indices)

    def _release(self, keys: list[str], args: list[Any], now: float) -> int:
        now_ms, life, span, fields = self._bucketed(args, now)
        holder, indices = str(args[1]), _indices(args[2])
        found = self._newest(keys[0], fields, now_ms, life, span)
        gone = []
        for i, index in enumerate(indices[: len(fields)]):
            value, tail = found[i], f":{index}"
            if value is None or int(value[:13]) <= now_ms or value[13] == "c":
                continue
            held = value[14:]
            if "/" in holder:
                match = held == holder + tail
            else:
                match = held.startswith(holder + "/") and held.endswith(tail)
            if match:
                gone.append(fields[i])
        for b in _buckets(now_ms, life, span):
            entries = self._hash(f"{keys[0]}{b}", now_ms / 1000)
            for field in gone:
                entries.pop(field, None)
        return len(gone)

    def window(self, now: float | None = None) -> dict[tuple[str, Any], str]:
        """The window entries alive at ``now``: each field's newest value, by the account's
        prefix and the field."""
        at = self.world.now if now is None else now
        now_ms = int(at * 1000)
        newest: dict[tuple[str, Any], tuple[int, str]] = {}
        for key, (entries, expires) in self.hashes.items():
            if expires <= at:
                continue
            prefix, bucket = key.rsplit(":", 1)
            for field, value in entries.items():
                old = newest.get((prefix, field))
                if old is None or old[0] < int(bucket):
                    newest[prefix, field] = (int(bucket), value)
        return {k: v for k, (_, v) in newest.items() if int(v[:13]) > now_ms}

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
        fresh = _number(args, 3)
        start = int(self._get(counter, now) or fresh) % size
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
        if self.on_command is not None:
            self.on_command(WRITER.get())
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
        self.holder = process  # what the process's clients of this server share
        self.where = "the simulated Redis"

    def register_script(self, source: str) -> _Script:
        return _Script(self, source)

    async def aclose(self) -> None:
        return None


def _buckets(now_ms: int, life: int, span: int) -> range:
    """The window's buckets a live entry may be in, newest first (the scripts' ``bucket`` down
    to ``oldest``)."""
    bucket = now_ms // span
    return range(bucket, bucket - math.ceil(life / span) - 1, -1)


def _alive(store: dict[str, tuple[dict[K, V], float]], key: str, now: float) -> dict[K, V]:
    """The members of a sorted set or fields of a hash in ``store``, empty once it expired."""
    entry = store.get(key)
    if entry is None or entry[1] <= now:
        store.pop(key, None)
        return {}
    return entry[0]


def _indices(joined: Any) -> list[str]:
    """The window scripts' indices: comma-separated (Lua's ``gmatch('[^,]+')``), or
    ``"<first>+<count>"``."""
    run = re.fullmatch(r"([0-9]+)\+([0-9]+)", str(joined))
    if run is not None:
        first, count = int(run.group(1)), int(run.group(2))
        return [str(i) for i in range(first, first + count)]
    return [part for part in str(joined).split(",") if part]


def _number(args: list[Any], at: int) -> int:
    """An integer argument as Lua's ``tonumber(x) or 0`` reads it (absent or empty: 0)."""
    try:
        return int(args[at])
    except (IndexError, TypeError, ValueError):
        return 0
