"""Many gateway accounts in one process: N clients, each with its own token, limiter (the
default 9 requests/s) and duplicate window, each streaming 100-number requests, against a bare
aiohttp + msgspec loop of N tasks on one shared session, each pacing itself at 9 requests/s.
The fake gateway runs in its own process with its rate limit lifted and accepts every token.

    .venv/bin/python benchmarks/accounts.py [--gateway smsclub|smsplus|webcom|all]
        [--accounts 50,100,200,400] [--seconds 12] [--warmup 2] [--rounds 1]
        [--gc default|off|high] [--redis URL [--with-memory]] [--shared-session] [--stagger]
        [--concurrency C] [--margin SECONDS]
        [--profile FILE [--profiler cprofile|pyinstrument]]

Each side of each run is a child process of its own (clean CPU time, RSS and collector)
against a fresh fake (its record grows with every message); the sides alternate which goes
first. Rates are counted on the client, per account, over the steady window: ``--seconds``
after a ``--warmup`` (connections opened, first bursts). CPU is the child's
``time.process_time`` over that window per request completed in it; the collector's share is
timed with ``gc.callbacks``. The smsbridge limiter sustains 9 / 1.03 s = 8.74/s (97%) by design.
The bare loop sends one request at a time per account, on a fixed 1/9 s schedule.

Experiments on the smsbridge side: ``--concurrency`` (per client; the library's default is
10), ``--margin`` (the limiter's ``rate_margin``), ``--shared-session`` (one transport
for all clients), ``--stagger`` (accounts start spread over a second), ``--redis`` (each
account's limiter and window in Redis, in the URL's database, which is emptied before each
run through it: give a database of its own; with ``--with-memory``, the same client in memory
runs as a third side in each round, and the Redis side's CPU per request is also given against
it, round by round and as the median).

``--profile FILE`` runs the smsbridge side alone at the first ``--accounts`` value with the
profiler on over the steady window and prints where smsbridge's CPU goes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import importlib
import os
import pstats
import resource
import statistics
import sys
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal

import aiohttp
import anyio
import msgspec
import redis

from smsbridge import (
    Batch,
    ClientOptions,
    HttpRequest,
    HttpResponse,
    Report,
    SmsClub,
    SmsPlus,
    Status,
    Template,
    Webcom,
)
from smsbridge.testing import FakeProcess

BAD: Tally[str] = Tally()  # what smsbridge reported for recipients not accepted, by reason

RATE = 9
BATCH = 100
TEMPLATE = Template(id=1, text="Your code is {1}")
SIDES = ("smsbridge", "bare aiohttp+msgspec")
IN_MEMORY = "smsbridge in memory"  # with --redis --with-memory: the same client, no Redis
GcMode = Literal["default", "off", "high"]


# ----------------------------------------------------------------- what the child is told


class ChildConfig(msgspec.Struct, frozen=True):
    side: str
    gateway: str
    url: str
    accounts: int
    seconds: float
    warmup: float
    gc: GcMode
    redis: str | None = None
    shared_session: bool = False
    stagger: bool = False
    concurrency: int | None = None
    margin: float | None = None
    profile: str | None = None
    profiler: str = "cprofile"
    fake_pid: int = 0


class Result(msgspec.Struct, frozen=True):
    side: str
    accounts: int
    window: float
    requests: int
    bad: int
    rates: list[float]
    cpu: float
    gc_cpu: float
    fake_cpu: float
    collections: list[int]
    gc_cpu_by_gen: list[float]
    rss_kib: int
    hwm_kib: int
    fds: int


# ----------------------------------------------------------------- the gateways


def token(i: int) -> str:
    return f"account-{i:04d}-token"


@dataclass(frozen=True)
class Gateway:
    """How to drive one gateway both ways."""

    name: str
    path: str
    fake_args: tuple[str, ...]
    entries: Callable[[int, int], Iterator[Any]]
    headers: Callable[[str], dict[str, str]]
    body: Callable[[str, list[Any]], dict[str, Any]]
    accepted: Callable[[Any, int], int]
    send: Callable[[str, ClientOptions, Iterator[Any], anyio.Event, Any], Awaitable[Report]]


def _bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}", "Content-Type": "application/json"}


def _ua_numbers(count: int, start: int) -> Iterator[str]:
    for i in range(start, start + count):
        yield f"38050{i:07d}"


def _az_pairs(count: int, start: int) -> Iterator[tuple[str, tuple[str]]]:
    for i in range(start, start + count):
        yield f"99450{i:07d}", (str(i),)


def _ru_numbers(count: int, start: int) -> Iterator[str]:
    for i in range(start, start + count):
        yield f"7916{i:07d}"


async def _smsclub(
    tok: str, options: ClientOptions, to: Iterator[Any], stop: anyio.Event, obs: Any
) -> Report:
    async with SmsClub(tok, **options) as sms:
        return await sms.send("Sale", to=to, sender="Shop", keep="none", stop=stop, observer=obs)


async def _smsplus(
    tok: str, options: ClientOptions, to: Iterator[Any], stop: anyio.Event, obs: Any
) -> Report:
    async with SmsPlus(tok, **options) as sms:
        return await sms.send_template(
            1, sender="Shop", to=to, template=TEMPLATE, keep="none", stop=stop, observer=obs
        )


async def _webcom(
    tok: str, options: ClientOptions, to: Iterator[Any], stop: anyio.Event, obs: Any
) -> Report:
    async with Webcom(tok, **options) as sms:
        return await sms.send("Sale", to=to, sender="Shop", keep="none", stop=stop, observer=obs)


GATEWAYS = {
    "smsclub": Gateway(
        "smsclub",
        "/sms/send",
        (),
        _ua_numbers,
        _bearer,
        lambda tok, batch: {"phone": batch, "src_addr": "Shop", "message": "Sale"},
        lambda answer, n: len(answer["success_request"]["info"]),
        _smsclub,
    ),
    "smsplus": Gateway(
        "smsplus",
        "/api/sms/send",
        ("--template", "1=Your code is {1}"),
        _az_pairs,
        _bearer,
        lambda tok, batch: {
            "sender_name": "Shop",
            "message_template_id": 1,
            "mobile_numbers": [p for p, _ in batch],
            "first_parameters": [params[0] for _, params in batch],
        },
        lambda answer, n: n if answer["code"] == "100" else 0,
        _smsplus,
    ),
    "webcom": Gateway(
        "webcom",
        "/json",
        (),
        _ru_numbers,
        lambda tok: {"Content-Type": "text/json; charset=utf-8"},
        lambda tok, batch: {
            "token": tok,
            "message": [
                {
                    "type_send_1": "sms",
                    "sender": "Shop",
                    "text": "Sale",
                    "phones": [{"phone": p} for p in batch],
                }
            ],
        },
        lambda answer, n: sum(1 for e in answer["information"] if "id_sms" in e),
        _webcom,
    ),
}


def block(cfg: ChildConfig) -> int:
    """Numbers each account may use: more than it can send in the run (all distinct)."""
    size = int((cfg.warmup + cfg.seconds + 5) * RATE * BATCH) + 20 * BATCH
    if size * cfg.accounts > 10_000_000:
        raise SystemExit("too many accounts x seconds for the 7-digit number space")
    return size


# ----------------------------------------------------------------- the child: measuring


Snapshot = tuple[float, float, float, int, float]
"""perf_counter, process_time, the collector's CPU so far, problems so far, the fake's CPU."""


def _cpu_of(pid: int) -> float:
    """CPU seconds a process has used so far (0 if unknown)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Counts the collector's CPU time, and snapshots time, CPU and problems."""

    def __init__(self) -> None:
        self.gc_cpu = 0.0
        self.collections = [0, 0, 0]
        self.gc_cpu_by_gen = [0.0, 0.0, 0.0]
        self._started = 0.0
        self.counting = False
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            spent = time.process_time() - self._started
            self.gc_cpu += spent
            if self.counting:
                self.collections[info["generation"]] += 1
                self.gc_cpu_by_gen[info["generation"]] += spent

    def snapshot(self, bad: int, fake_pid: int) -> Snapshot:
        return time.perf_counter(), time.process_time(), self.gc_cpu, bad, _cpu_of(fake_pid)


def _status_kib() -> tuple[int, int, int]:
    """RSS and peak RSS in KiB, and open file descriptors (sockets, mostly)."""
    rss = hwm = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm, len(os.listdir("/proc/self/fd"))


class Counter:
    """A batch observer noting when each request whose recipients were all accepted was
    answered."""

    __slots__ = ("problems", "stamps")

    def __init__(self, stamps: list[float], problems: list[int]) -> None:
        self.stamps, self.problems = stamps, problems

    async def before(self, batch: Batch) -> None:
        pass

    async def unsent(self, batch: Batch) -> None:
        pass

    async def after(
        self, batch: Batch, statuses: Sequence[Status], details: Sequence[str | None]
    ) -> None:
        if statuses.count(Status.ACCEPTED) == len(statuses):
            self.stamps.append(time.perf_counter())
        else:
            self.problems[0] += 1
            for status, detail in zip(statuses, details, strict=True):
                if status is not Status.ACCEPTED:
                    BAD[f"{status.value}: {(detail or '')[:70]}"] += 1


class _SharedTransport:
    """One transport (one pool of connections) for every client; closing a client leaves it
    open."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def send(self, request: HttpRequest, ready: Any = None) -> HttpResponse:
        response: HttpResponse = await self.inner.send(request, ready)
        return response

    async def aclose(self) -> None:
        pass


class Profiler:
    """cProfile or pyinstrument over the steady window."""

    def __init__(self, kind: str, path: str) -> None:
        self.kind, self.path = kind, path
        self._impl: Any = None

    def start(self) -> None:
        if self.kind == "pyinstrument":
            pyinstrument = importlib.import_module("pyinstrument")  # optional: not a dependency
            self._impl = pyinstrument.Profiler(interval=0.001, async_mode="disabled")
            self._impl.start()
        else:
            self._impl = cProfile.Profile()
            self._impl.enable()

    def stop(self) -> None:
        if self.kind == "pyinstrument":
            self._impl.stop()
            self._impl.last_session.save(self.path)
        else:
            self._impl.disable()
            self._impl.dump_stats(self.path)


async def window(cfg: ChildConfig, meter: Meter, problems: list[int]) -> tuple[Snapshot, Snapshot]:
    """The steady window: snapshots at its start and end, the profiler on in between."""
    await asyncio.sleep(cfg.warmup)
    profiler = Profiler(cfg.profiler, cfg.profile) if cfg.profile else None
    first = meter.snapshot(problems[0], cfg.fake_pid)
    meter.counting = True
    if profiler is not None:
        profiler.start()
    await asyncio.sleep(cfg.seconds)
    if profiler is not None:
        profiler.stop()
    meter.counting = False
    return first, meter.snapshot(problems[0], cfg.fake_pid)


async def smsbridge_side(cfg: ChildConfig, meter: Meter) -> Result:
    gateway = GATEWAYS[cfg.gateway]
    size = block(cfg)
    stamps: list[list[float]] = [[] for _ in range(cfg.accounts)]
    problems = [0]
    stop = anyio.Event()
    options: ClientOptions = {"base_url": cfg.url}
    if cfg.concurrency is not None:
        options["concurrency"] = cfg.concurrency
    if cfg.margin is not None:
        options["rate_margin"] = cfg.margin
    if cfg.redis:
        options["redis_url"] = cfg.redis
    shared = None
    if cfg.shared_session:
        from smsbridge._core.http1 import Http1Transport

        shared = Http1Transport(cfg.url, max_connections=cfg.accounts * 4)
        options["transport"] = _SharedTransport(shared)

    async def account(i: int) -> None:
        entries = gateway.entries(size, i * size)
        if cfg.stagger:  # each account's limiter bursts from its own phase, not all together
            await asyncio.sleep(i / cfg.accounts)
        mine = options
        if cfg.redis:  # each run its own keys: an earlier run's window must not suppress this one
            mine = {**options, "account": f"bench-{os.getpid()}-{i}"}
        await gateway.send(token(i), mine, entries, stop, Counter(stamps[i], problems))

    tasks = [asyncio.create_task(account(i)) for i in range(cfg.accounts)]
    first, last = await window(cfg, meter, problems)
    rss, hwm, fds = _status_kib()
    stop.set()
    await asyncio.gather(*tasks)
    if shared is not None:
        await shared.aclose()
    for reason, count in BAD.most_common(5):
        print(f"  not accepted: {count:,} {reason}", file=sys.stderr)
    return _result(cfg, first, last, stamps, (rss, hwm, fds), meter)


async def bare_side(cfg: ChildConfig, meter: Meter) -> Result:
    gateway = GATEWAYS[cfg.gateway]
    size = block(cfg)
    stamps: list[list[float]] = [[] for _ in range(cfg.accounts)]
    problems = [0]
    encode, decode = msgspec.json.Encoder().encode, msgspec.json.decode
    url = cfg.url + gateway.path
    period = 1 / RATE
    stopped = False

    async def account(i: int, session: aiohttp.ClientSession) -> None:
        tok, mine = token(i), stamps[i]
        headers = gateway.headers(tok)
        entries = gateway.entries(size, i * size)
        loop = asyncio.get_running_loop()
        due = loop.time() + period * i / cfg.accounts  # spread over the first period
        while not stopped:
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            batch = list(islice(entries, BATCH))
            body = encode(gateway.body(tok, batch))
            async with session.post(url, data=body, headers=headers) as resp:
                answer = decode(await resp.read())
            if gateway.accepted(answer, len(batch)) == len(batch):
                mine.append(time.perf_counter())
            else:
                problems[0] += 1
            due += period
            now = loop.time()
            if due < now - 1.0:  # more than a second behind: no catch-up burst
                due = now

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(account(i, session)) for i in range(cfg.accounts)]
        first, last = await window(cfg, meter, problems)
        rss, hwm, fds = _status_kib()
        stopped = True
        await asyncio.gather(*tasks)
    return _result(cfg, first, last, stamps, (rss, hwm, fds), meter)


def _result(
    cfg: ChildConfig,
    first: Snapshot,
    last: Snapshot,
    stamps: list[list[float]],
    memory: tuple[int, int, int],
    meter: Meter,
) -> Result:
    wall = last[0] - first[0]
    rss, hwm, fds = memory
    start, end = first[0], last[0]
    inside = [[t for t in mine if start <= t < end] for mine in stamps]
    return Result(
        side=cfg.side,
        accounts=cfg.accounts,
        window=wall,
        requests=sum(map(len, inside)),
        bad=last[3] - first[3],
        rates=[_rate(times, wall) for times in inside],
        cpu=last[1] - first[1],
        gc_cpu=last[2] - first[2],
        fake_cpu=last[4] - first[4],
        collections=meter.collections,
        gc_cpu_by_gen=meter.gc_cpu_by_gen,
        rss_kib=rss,
        hwm_kib=hwm,
        fds=fds,
    )


def _rate(times: list[float], wall: float) -> float:
    """An account's sustained rate: RATE over the mean time from an answer to the RATE-th
    after it (the limiter lets requests go in bursts, so a plain count over the window would
    be off by up to a burst)."""
    if len(times) <= 2 * RATE:
        return len(times) / wall
    gaps = [b - a for a, b in zip(times, times[RATE:], strict=False)]
    return RATE / (sum(gaps) / len(gaps))


async def child(cfg: ChildConfig) -> None:
    if cfg.gc == "off":
        gc.disable()
    elif cfg.gc == "high":
        gc.set_threshold(50_000, 50, 100)
    meter = Meter()
    run = smsbridge_side if cfg.side.startswith("smsbridge") else bare_side
    result = await run(cfg, meter)
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")


# ----------------------------------------------------------------- the parent: orchestrating


async def spawn(cfg: ChildConfig) -> Result:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--child",
        msgspec.json.encode(cfg).decode(),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"the {cfg.side} child failed ({proc.returncode})")
    return msgspec.json.decode(out.splitlines()[-1], type=Result)


async def run_side(args: argparse.Namespace, side: str, accounts: int) -> Result:
    gateway = GATEWAYS[args.gateway]
    tokens = [a for i in range(accounts) for a in ("--token", token(i))]
    async with FakeProcess(
        gateway.name, *tokens, "--rate-limit", "none", *gateway.fake_args
    ) as fake:
        cfg = ChildConfig(
            side=side,
            gateway=gateway.name,
            url=fake.url,
            accounts=accounts,
            seconds=args.seconds,
            warmup=args.warmup,
            gc=args.gc,
            redis=None if side == IN_MEMORY else args.redis,
            shared_session=args.shared_session and side.startswith("smsbridge"),
            stagger=args.stagger,
            concurrency=args.concurrency,
            margin=args.margin,
            profile=args.profile,
            profiler=args.profiler,
            fake_pid=fake._proc.pid if fake._proc is not None else 0,
        )
        return await spawn(cfg)


def _cpu_us(result: Result) -> float:
    """Client CPU µs per request over the steady window."""
    return result.cpu / max(result.requests, 1) * 1e6


def row(result: Result, base: Result | None, memory: Result | None = None) -> str:
    rates = result.rates
    reached = sum(1 for r in rates if r >= 0.95 * RATE)
    cpu_us = _cpu_us(result)
    ratio = f" ({cpu_us / _cpu_us(base):.2f}x)" if base else ""
    if memory is not None:
        ratio += f" ({cpu_us / _cpu_us(memory):.2f}x in memory)"
    total = result.requests / result.window
    total_ratio = f" ({total / (base.requests / base.window):.2f}x)" if base else ""
    gc_share = result.gc_cpu / result.cpu * 100 if result.cpu else 0.0
    return (
        f"| {result.accounts} | {result.side} | {total:,.0f}{total_ratio} "
        f"| {reached}/{len(rates)} | {min(rates):.2f} | {cpu_us:,.0f}{ratio} "
        f"| {result.cpu / result.window * 100:.0f}% | {gc_share:.1f}% "
        f"| {result.rss_kib / 1024:,.0f} | {result.fake_cpu / result.window * 100:.0f}% "
        f"| {'/'.join(map(str, result.collections))} | {result.fds} | {result.bad} |"
    )


def table(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\n{args.gateway}, gc {args.gc}{', redis' if args.redis else ''}"
        f"{' and in memory' if args.with_memory else ''}"
        f"{', one shared session' if args.shared_session else ''}"
        f"{', staggered starts' if args.stagger else ''}"
        f"{f', concurrency {args.concurrency}' if args.concurrency else ''}"
        f"{f', margin {args.margin}' if args.margin is not None else ''}: each account at "
        f"{RATE} req/s, {BATCH} numbers per request; steady window {args.seconds:g} s after "
        f"{args.warmup:g} s; the fake in its own process"
    )
    print(
        "\n| N | client | req/s total | accounts >= 95% of 9/s | slowest req/s "
        "| CPU µs/req | CPU % of a core | GC % of CPU | RSS MiB "
        "| fake's CPU | collections gen0/1/2 | open fds | bad |"
    )
    print("| ---: | --- |" + " ---: |" * 11)
    ratios: list[float] = []
    for accounts in sorted({r.accounts for r in results}):
        of = {
            side: [r for r in results if r.accounts == accounts and r.side == side]
            for side in (*SIDES, IN_MEMORY)
        }
        ours, bare, memory = of["smsbridge"], of["bare aiohttp+msgspec"], of[IN_MEMORY]
        # runs interleave: the k-th smsbridge run is compared with the k-th bare run
        for k in range(max(len(ours), len(bare))):
            base = bare[k] if k < len(bare) else None
            if base is not None:
                print(row(base, None))
            if k < len(memory):
                print(row(memory[k], base))
            if k < len(ours):
                print(row(ours[k], base, memory[k] if k < len(memory) else None))
                if k < len(memory):
                    ratios.append(_cpu_us(ours[k]) / _cpu_us(memory[k]))
    if ratios:
        print(
            f"\nthrough Redis against in memory, CPU per request: median "
            f"{statistics.median(ratios):.2f}x over {len(ratios)} rounds "
            f"({', '.join(f'{r:.2f}x' for r in ratios)})"
        )


def summarise(path: str, top: int = 15) -> None:
    """The smsbridge functions by cumulative and by self time, and the collector's share."""
    stats = pstats.Stats(path)
    table_: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = [
        (func, cc, nc, tt, ct)
        for func, (cc, nc, tt, ct, _callers) in table_.items()
        if "smsbridge/" in func[0] and "benchmarks" not in func[0]
    ]

    def name(func: tuple[str, int, str]) -> str:
        file = func[0].split("smsbridge/", 1)[-1]
        return f"{func[2]} ({file}:{func[1]})"

    for title, key in (("cumulative", 4), ("self", 3)):
        print(f"\nsmsbridge functions by {title} time (total profiled CPU {total:.2f} s):")
        print(f"{'function':<70}{'calls':>10}{'self s':>9}{'cum s':>9}{'self %':>8}")
        for func, _cc, nc, tt, ct in sorted(rows, key=lambda r: -float(r[key]))[:top]:
            print(f"{name(func):<70}{nc:>10}{tt:>9.2f}{ct:>9.2f}{tt / total * 100:>7.1f}%")
    ours = sum(r[3] for r in rows)
    print(f"\nself time in smsbridge code: {ours:.2f} s of {total:.2f} s ({ours / total:.0%})")
    by_file: dict[str, float] = {}
    for func, (_cc, _nc, tt, _ct, _callers) in table_.items():
        file = func[0]
        for marker in ("site-packages/", "lib/python3.11/", "smsbridge/"):
            if marker in file:
                file = file.split(marker, 1)[1].split("/", 1)[0]
                break
        by_file[file] = by_file.get(file, 0.0) + tt
    print(
        "self time by package: "
        + ", ".join(
            f"{k} {v / total:.0%}" for k, v in sorted(by_file.items(), key=lambda kv: -kv[1])[:10]
        )
    )


def show_pyinstrument(path: str) -> None:
    """pyinstrument's flat view (self time per function) and its call tree."""
    pyinstrument = importlib.import_module("pyinstrument")
    renderers = importlib.import_module("pyinstrument.renderers")
    session = pyinstrument.session.Session.load(path)
    for flat in (True, False):
        renderer = renderers.ConsoleRenderer(
            unicode=False, color=False, flat=flat, time="percent_of_total", show_all=False
        )
        print(renderer.render(session))


def empty(url: str) -> None:
    """Empty the Redis database of ``url``: each run through Redis starts from none of the
    keys an earlier one left (a database holding them slows Redis, and so the client)."""
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def _by_gen(result: Result) -> str:
    """The collector's runs and CPU over the window, by generation."""
    return ", ".join(
        f"gen{g} {n} x {t / max(n, 1) * 1e3:.1f} ms = {t:.2f} s"
        for g, (n, t) in enumerate(zip(result.collections, result.gc_cpu_by_gen, strict=True))
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", default="smsclub", choices=[*GATEWAYS, "all"])
    parser.add_argument("--accounts", default="50,100,200,400")
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--gc", default="default", choices=["default", "off", "high"])
    parser.add_argument("--redis", default=None, help="share each account's state via Redis")
    parser.add_argument(
        "--with-memory", action="store_true", help="with --redis: the client in memory too"
    )
    parser.add_argument("--shared-session", action="store_true", help="one session, all clients")
    parser.add_argument("--stagger", action="store_true", help="start accounts over 1 s")
    parser.add_argument("--concurrency", type=int, default=None, help="smsbridge's, per client")
    parser.add_argument(
        "--margin", type=float, default=None, help="smsbridge's rate_margin (seconds), per client"
    )
    parser.add_argument("--profile", default=None, help="profile the smsbridge side into FILE")
    parser.add_argument("--profiler", default="cprofile", choices=["cprofile", "pyinstrument"])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.with_memory and not args.redis:
        parser.error("--with-memory compares with --redis: give a Redis URL")
    if args.profile and args.gateway == "all":
        parser.error("--profile runs one gateway: name it")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.child is not None:
        await child(msgspec.json.decode(args.child, type=ChildConfig))
        return
    counts = [int(n) for n in args.accounts.split(",")]
    if args.profile:
        if args.redis:
            empty(args.redis)
        result = await run_side(args, "smsbridge", counts[0])
        table([result], args)
        print(f"\ncollector over the window ({result.cpu:.2f} s CPU): {_by_gen(result)}")
        if args.profiler == "cprofile":
            summarise(args.profile)
        else:
            show_pyinstrument(args.profile)
        return
    for name in list(GATEWAYS) if args.gateway == "all" else [args.gateway]:
        args.gateway = name
        results: list[Result] = []
        turn = 0
        for accounts in counts:
            for _ in range(args.rounds):
                sides = (*SIDES, IN_MEMORY) if args.with_memory else SIDES
                order = sides if turn % 2 == 0 else sides[::-1]
                turn += 1
                for side in order:
                    if args.redis and side == "smsbridge":
                        empty(args.redis)
                    result = await run_side(args, side, accounts)
                    print(
                        f"  {name} {side} x{accounts}: "
                        f"{result.requests / result.window:,.0f} req/s; "
                        f"collector {_by_gen(result)}",
                        file=sys.stderr,
                        flush=True,
                    )
                    results.append(result)
        table(results, args)


if __name__ == "__main__":
    asyncio.run(main())
