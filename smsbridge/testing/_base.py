"""What every fake gateway shares: a real aiohttp server on loopback, a request log, a
sliding-second rate limit like the real gateways', and fault injection."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Literal, Self, TypedDict, Unpack, cast, get_args

import msgspec
from aiohttp import web

__all__ = [
    "FAULT",
    "FakeGateway",
    "FakeOptions",
    "Fault",
    "Faults",
    "Record",
    "RequestRecord",
    "SentMessage",
    "busiest_window",
]

Fault = Literal[
    "ok",
    "rate_limited",
    "error_before",
    "error_after",
    "hang_after",
    "garbage_before",
    "garbage_after",
    "reset_after",
]
"""What a send request meets: ``ok``; a 429 (``rate_limited``); a 5xx with nothing sent
(``error_before``) or after sending (``error_after``); sending then never answering in time
(``hang_after``); an unreadable 200 before or after sending (``garbage_before``,
``garbage_after``); sending then dropping the connection (``reset_after``)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

FAULT = web.RequestKey("smsbridge_fault", str)
"""Where a handler notes the fault a request met, for the request log."""


class Faults(msgspec.Struct, kw_only=True):
    """Random faults for send requests: each field is a probability (0..1) per request.

    Attributes:
        hang_seconds: how long a hanging request waits before answering (the client should
            have given up by then).
        retry_after: the Retry-After of injected 429s, in seconds.
        seed: seed for the random choice, for repeatable runs.
    """

    rate_limited: float = 0.0
    error_before: float = 0.0
    error_after: float = 0.0
    hang_after: float = 0.0
    garbage_before: float = 0.0
    garbage_after: float = 0.0
    reset_after: float = 0.0
    hang_seconds: float = 30.0
    retry_after: float = 1.0
    seed: int | None = None


class RequestRecord(msgspec.Struct, frozen=True, gc=False):
    """One request as the fake saw it: arrival time (monotonic), path, answer status, fault."""

    at: float
    path: str
    status: int
    fault: str = "ok"


class SentMessage(msgspec.Struct, frozen=True, gc=False):
    """One message the fake accepted: the gateway's id, number, text, sender, time."""

    id: str
    phone: str
    text: str
    sender: str
    at: float
    client_id: str | None = None


class _Recorded:
    """Questions a test asks of what a fake saw; shared by live fakes and their snapshots."""

    __slots__ = ()
    requests: list[RequestRecord]
    sent: list[SentMessage]

    def count(self, status: int, paths: Iterable[str] | None = None) -> int:
        """Requests answered with ``status`` (on ``paths``, when given)."""
        wanted = None if paths is None else set(paths)
        return sum(
            1 for r in self.requests if r.status == status and (wanted is None or r.path in wanted)
        )

    def busiest_window(self, period: float = 1.0) -> int:
        """Most requests that arrived within any ``period`` seconds."""
        return busiest_window((r.at for r in self.requests), period)

    def arrivals(self) -> list[float]:
        """Arrival times of every request, in order."""
        return sorted(r.at for r in self.requests)

    def sent_counts(self) -> dict[str, int]:
        """How many messages each number received."""
        counts: dict[str, int] = {}
        for message in self.sent:
            counts[message.phone] = counts.get(message.phone, 0) + 1
        return counts


class Record(_Recorded, msgspec.Struct, kw_only=True):
    """A snapshot of what a fake saw: every request and every accepted message."""

    requests: list[RequestRecord] = msgspec.field(default_factory=list)
    sent: list[SentMessage] = msgspec.field(default_factory=list)


def busiest_window(times: Iterable[float], period: float = 1.0) -> int:
    """Most arrivals inside any half-open window of ``period`` seconds."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= period:
            start += 1
        best = max(best, end - start + 1)
    return best


_record_encoder = msgspec.json.Encoder()


class FakeOptions(TypedDict, total=False):
    """Settings every fake takes.

    Attributes:
        rate_limit: requests per ``rate_period`` per credential before answering 429;
            ``None`` for no limit (each fake's default follows its gateway's documents).
        rate_period: the sliding window of the rate limit, in seconds.
        faults: random fault injection for send requests.
        host, port: where to listen (loopback; port 0 picks a free one).
        clock: the fake's time source (``time.monotonic``).
    """

    rate_limit: int | None
    rate_period: float
    faults: Faults | None
    host: str
    port: int
    clock: Callable[[], float] | None


class FakeGateway(_Recorded):
    """Base of the fakes: start with ``async with``; ``url`` is the base URL to give a client.

    Besides the gateway's own endpoints, ``GET /_fake/record`` returns a :class:`Record` as
    JSON and ``POST /_fake/faults`` replaces the :class:`Faults`, for fakes run as a server.

    Args:
        **options: see :class:`FakeOptions`.
    """

    def __init__(self, **options: Unpack[FakeOptions]) -> None:
        self.rate_limit = options.get("rate_limit", 9)
        self.rate_period = options.get("rate_period", 1.0)
        self.faults = options.get("faults") or Faults()
        self.host = options.get("host", "127.0.0.1")
        self.port = options.get("port", 0)
        self.now = options.get("clock") or time.monotonic
        self.requests: list[RequestRecord] = []
        self.sent: list[SentMessage] = []
        self._scripted: deque[Fault] = deque()
        self._rng = random.Random(self.faults.seed)
        self._arrivals: dict[str, deque[float]] = {}
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.app = web.Application(middlewares=[self._middleware], client_max_size=8 * 1024**2)
        self.app.router.add_get("/_fake/record", self._get_record)
        self.app.router.add_post("/_fake/faults", self._set_faults)

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> Self:
        """Listen on loopback."""
        self._closing = asyncio.Event()
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        """Stop listening; hanging requests are released."""
        self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """The base URL of the running fake."""
        return f"http://{self.host}:{self.port}"

    # ----------------------------------------------------------------- faults

    def script(self, faults: Sequence[Fault]) -> None:
        """Queue faults for the next send requests, one each, before random ones apply."""
        self._scripted.extend(faults)

    def next_fault(self) -> Fault:
        """The fault the next send request meets."""
        if self._scripted:
            return self._scripted.popleft()
        roll = self._rng.random()
        for name in get_args(Fault)[1:]:
            roll -= getattr(self.faults, name)
            if roll < 0:
                return cast(Fault, name)
        return "ok"

    def fault_before(self, request: web.Request) -> web.Response | None:
        """Pick this send request's fault; the answer when it strikes before anything is
        sent, else ``None``."""
        fault = self.next_fault()
        request[FAULT] = fault
        if fault == "rate_limited":
            return self.rate_limited(self.faults.retry_after)
        if fault == "error_before":
            return web.Response(status=500, text="Internal Server Error")
        if fault == "garbage_before":
            return self.garbage()
        return None

    async def fault_after(
        self, request: web.Request, answer: web.Response, error: web.Response | None = None
    ) -> web.StreamResponse:
        """The answer once the messages are sent: the picked fault's, or ``answer``
        (``error`` stands in for the gateway's own failure answer, a 502 by default)."""
        fault = request.get(FAULT, "ok")
        if fault == "error_after":
            return error or web.Response(status=502, text="<html>Bad Gateway</html>")
        if fault == "garbage_after":
            return self.garbage()
        if fault == "reset_after":
            return self.reset(request)
        if fault == "hang_after":
            await self.hang()
        return answer

    async def hang(self) -> None:
        """Wait ``hang_seconds``, or until the fake closes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), self.faults.hang_seconds)

    @staticmethod
    def garbage() -> web.Response:
        """An answer no client can read."""
        return web.Response(
            status=200,
            body=b'<html><body>Gateway error</body></html>{"success_request": {"in',
            content_type="text/html",
        )

    @staticmethod
    def reset(request: web.Request) -> web.Response:
        """Drop the connection without an answer."""
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=200)

    # ----------------------------------------------------------------- records

    def credential(self, request: web.Request) -> str | None:
        """The credential a request carries, for per-account rate limiting (subclasses)."""
        return None

    def record(self) -> Record:
        """A snapshot of the requests and messages so far."""
        return Record(requests=list(self.requests), sent=list(self.sent))

    def _over_rate(self, key: str, now: float) -> bool:
        if self.rate_limit is None:
            return False
        window = self._arrivals.setdefault(key, deque())
        while window and now - window[0] >= self.rate_period:
            window.popleft()
        window.append(now)
        return len(window) > self.rate_limit

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        at = self.now()
        if request.path.startswith("/_fake/"):
            return await handler(request)
        key = self.credential(request)
        if key is not None and self._over_rate(key, at):
            self.requests.append(RequestRecord(at, request.path, 429))
            return self.rate_limited()
        response = await handler(request)
        self.requests.append(
            RequestRecord(at, request.path, response.status, request.get(FAULT, "ok"))
        )
        return response

    async def _get_record(self, request: web.Request) -> web.Response:
        return web.Response(
            body=_record_encoder.encode(self.record()), content_type="application/json"
        )

    async def _set_faults(self, request: web.Request) -> web.Response:
        try:
            self.faults = msgspec.json.decode(await request.read(), type=Faults)
        except msgspec.DecodeError as e:
            return web.json_response({"error": str(e)}, status=400)
        self._rng = random.Random(self.faults.seed)
        return web.json_response({"ok": True})

    def rate_limited(self, retry_after: float = 1.0) -> web.Response:
        """The answer to a request over the rate limit."""
        return web.json_response(
            {"status": 429, "message": "Too many requests"},
            status=429,
            headers={"Retry-After": f"{retry_after:g}"},
        )
