"""What every fake gateway shares: the gateway as a pure model (one request in, one reply out,
a ledger of what it sent), a sliding-second rate limit like the real gateways', fault
injection, and an aiohttp server on loopback around the model.

The model is synchronous and does no I/O, so the same fake serves the loopback tests (through
its server) and the reliability simulator (which calls :meth:`FakeGateway.handle` directly on
virtual time)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, Self, TypedDict, Unpack, get_args

import msgspec
from aiohttp import web

__all__ = [
    "Disconnect",
    "FakeAnswer",
    "FakeGateway",
    "FakeOptions",
    "FakeRequest",
    "Fault",
    "Faults",
    "Record",
    "Reply",
    "RequestRecord",
    "SentMessage",
    "Stall",
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
    "truncated_after",
    "reset_after",
]
"""What a send request meets: ``ok``; a 429 (``rate_limited``); a 5xx with nothing sent
(``error_before``) or after sending (``error_after``); sending then never answering in time
(``hang_after``); an unreadable 200 before or after sending (``garbage_before``,
``garbage_after``); the answer cut off half-way after sending (``truncated_after``); sending
then dropping the connection (``reset_after``)."""

FAULTS: tuple[Fault, ...] = get_args(Fault)[1:]


_Chance = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
_Seconds = Annotated[float, msgspec.Meta(ge=0.0)]


class Faults(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Random faults for send requests: each fault field is a probability (0..1) per request.

    Attributes:
        hang_seconds: how long a hanging request waits before answering (the client should
            have given up by then).
        retry_after: the Retry-After of 429s, in seconds; ``None`` sends none.
        rate_limited_body: the body of 429s: the gateway's own error object, or nothing.
        seed: seed for the random choice, for repeatable runs.
    """

    rate_limited: _Chance = 0.0
    error_before: _Chance = 0.0
    error_after: _Chance = 0.0
    hang_after: _Chance = 0.0
    garbage_before: _Chance = 0.0
    garbage_after: _Chance = 0.0
    truncated_after: _Chance = 0.0
    reset_after: _Chance = 0.0
    hang_seconds: _Seconds = 30.0
    retry_after: _Seconds | None = 1.0
    rate_limited_body: Literal["gateway", "empty"] = "gateway"
    seed: int | None = None

    def __post_init__(self) -> None:
        # decoding checks the annotated ranges; built in Python, nothing would
        for fault in FAULTS:
            chance = getattr(self, fault)
            if not 0.0 <= chance <= 1.0:  # also NaN
                raise ValueError(f"Faults.{fault} is a chance from 0 to 1, got {chance!r}")
        for name in ("hang_seconds", "retry_after"):
            seconds = getattr(self, name)
            if seconds is not None and not 0.0 <= seconds < math.inf:
                raise ValueError(f"Faults.{name} is seconds from 0, got {seconds!r}")


class FakeRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A request as the model sees it: header names lower-case, the raw body, arrival time."""

    path: str
    body: bytes = b""
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)
    method: str = "POST"
    at: float = 0.0


class FakeAnswer(msgspec.Struct, frozen=True):
    """An HTTP answer of the model."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)
    content_type: str = "application/json"


class Stall(msgspec.Struct, frozen=True):
    """The gateway acted, then takes ``seconds`` before giving ``answer``."""

    answer: FakeAnswer
    seconds: float


class Disconnect(msgspec.Struct, frozen=True):
    """The gateway acted, then dropped the connection without an answer."""


Reply = FakeAnswer | Stall | Disconnect
"""What the model does with a request."""


class RequestRecord(msgspec.Struct, frozen=True, gc=False):
    """One request as the fake saw it: arrival time (monotonic), path, answer status, fault,
    and the numbers a send request carried."""

    at: float
    path: str
    status: int
    fault: str = "ok"
    numbers: tuple[str, ...] = ()


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


_encoder = msgspec.json.Encoder()


def json_answer(
    value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> FakeAnswer:
    """A JSON answer."""
    return FakeAnswer(status, _encoder.encode(value), headers or {})


def decode_json(body: bytes) -> Any:
    """A request body as JSON, or ``None`` when it is not JSON."""
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None


class FakeOptions(TypedDict, total=False):
    """Settings every fake takes.

    Attributes:
        rate_limit: requests per ``rate_period`` per credential before answering 429;
            ``None`` for no limit (each fake's default follows its gateway's documents).
        rate_period: the sliding window of the rate limit, in seconds.
        faults: random fault injection for send requests.
        language: the language of the gateway's texts, where it speaks several.
        host, port: where to listen (loopback; port 0 picks a free one).
        clock: the fake's time source (``time.monotonic``).
    """

    rate_limit: int | None
    rate_period: float
    faults: Faults | None
    language: Literal["en", "ru"]
    host: str
    port: int
    clock: Callable[[], float] | None


Route = Callable[[FakeRequest], Reply]


class FakeGateway(_Recorded):
    """Base of the fakes: start with ``async with``; ``url`` is the base URL to give a client.

    Besides the gateway's own endpoints, ``GET /_fake/record`` returns a :class:`Record` as
    JSON, ``GET /_fake/count`` how many requests it has seen (cheap to poll), and
    ``POST /_fake/faults`` replaces the :class:`Faults`, for fakes run as a server.
    Without a server, :meth:`handle` answers one request in memory.

    Args:
        **options: see :class:`FakeOptions`.
    """

    def __init__(self, **options: Unpack[FakeOptions]) -> None:
        self.rate_limit = options.get("rate_limit", 9)
        self.rate_period = options.get("rate_period", 1.0)
        self.faults = options.get("faults") or Faults()
        self.language = options.get("language", "en")
        self.host = options.get("host", "127.0.0.1")
        self.port = options.get("port", 0)
        self.now = options.get("clock") or time.monotonic
        self.requests: list[RequestRecord] = []
        self.sent: list[SentMessage] = []
        self.refused: list[str] = []
        self._routes: dict[str, Route] = {}
        self._scripted: deque[Fault] = deque()
        self._fault: Fault = "ok"
        self._rng = random.Random(self.faults.seed)
        self._arrivals: dict[str, deque[float]] = {}
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.app = web.Application(client_max_size=8 * 1024**2)
        self.app.router.add_get("/_fake/record", self._get_record)
        self.app.router.add_get("/_fake/count", self._get_count)
        self.app.router.add_post("/_fake/faults", self._set_faults)
        self.app.router.add_route("*", "/{path:.*}", self._serve)

    def route(self, path: str, handler: Route) -> None:
        """Answer requests to ``path`` with ``handler``."""
        self._routes[path] = handler

    # ----------------------------------------------------------------- the model

    def credential(self, request: FakeRequest) -> str | None:
        """The credential a request carries, for per-account rate limiting (subclasses)."""
        return None

    def handle(self, request: FakeRequest) -> Reply:
        """Answer one request: the rate limit, then the gateway's own handler."""
        self._fault = "ok"
        handler = self._routes.get(request.path)
        key = self.credential(request)
        if key is not None and self._over_rate(key, request.at):
            reply: Reply = self.rate_limited(1.0)
        elif handler is None:
            reply = FakeAnswer(404, b"Not Found", content_type="text/plain")
        else:
            reply = handler(request)
        answer = reply.answer if isinstance(reply, Stall) else reply
        status = answer.status if isinstance(answer, FakeAnswer) else 200
        numbers = self.numbers(request) if handler is not None else ()
        self.requests.append(RequestRecord(request.at, request.path, status, self._fault, numbers))
        return reply

    def numbers(self, request: FakeRequest) -> tuple[str, ...]:
        """The numbers a send request carries, for its record (subclasses read their body)."""
        return ()

    def _over_rate(self, key: str, now: float) -> bool:
        if self.rate_limit is None:
            return False
        window = self._arrivals.setdefault(key, deque())
        while window and now - window[0] >= self.rate_period:
            window.popleft()
        window.append(now)
        return len(window) > self.rate_limit

    def refuse(self, phones: Iterable[object], answer: FakeAnswer) -> FakeAnswer:
        """Answer ``answer``, noting that the gateway refused these numbers' messages (the
        simulator tells a true ``rejected`` from a false one by this record)."""
        self.refused.extend(str(p) for p in phones)
        return answer

    def rate_limited(self, retry_after: float | None) -> FakeAnswer:
        """The answer to a request over the rate limit, in the gateway's style."""
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        if self.faults.rate_limited_body == "empty":
            return FakeAnswer(429, b"", headers, "text/plain")
        return json_answer(self.rate_limited_body(), 429, headers)

    def rate_limited_body(self) -> Any:
        """The JSON a 429 carries (subclasses speak their gateway's)."""
        return {"status": 429, "message": "Too many requests"}

    # ----------------------------------------------------------------- faults

    def script(self, faults: Sequence[Fault]) -> None:
        """Queue faults for the next send requests, one each, before random ones apply."""
        self._scripted.extend(faults)

    def next_fault(self) -> Fault:
        """The fault the next send request meets."""
        if self._scripted:
            return self._scripted.popleft()
        roll = self._rng.random()
        for name in FAULTS:
            roll -= getattr(self.faults, name)
            if roll < 0:
                return name
        return "ok"

    def fault_before(self) -> FakeAnswer | None:
        """Pick this send request's fault; the answer when it strikes before anything is
        sent, else ``None``."""
        fault = self._fault = self.next_fault()
        if fault == "rate_limited":
            return self.rate_limited(self.faults.retry_after)
        if fault == "error_before":
            return FakeAnswer(500, b"Internal Server Error", content_type="text/plain")
        if fault == "garbage_before":
            return self.garbage()
        return None

    def fault_after(self, answer: FakeAnswer, error: FakeAnswer | None = None) -> Reply:
        """The reply once the messages are sent: the picked fault's, or ``answer``
        (``error`` stands in for the gateway's own failure answer, a 502 by default)."""
        fault = self._fault
        if fault == "error_after":
            return error or FakeAnswer(502, b"<html>Bad Gateway</html>", content_type="text/html")
        if fault == "garbage_after":
            return self.garbage()
        if fault == "truncated_after":
            return FakeAnswer(answer.status, answer.body[: max(1, len(answer.body) // 2)])
        if fault == "reset_after":
            return Disconnect()
        if fault == "hang_after":
            return Stall(answer, self.faults.hang_seconds)
        return answer

    @staticmethod
    def garbage() -> FakeAnswer:
        """An answer no client can read."""
        return FakeAnswer(
            200,
            b'<html><body>Gateway error</body></html>{"success_request": {"in',
            content_type="text/html",
        )

    # ----------------------------------------------------------------- records

    def record(self) -> Record:
        """A snapshot of the requests and messages so far."""
        return Record(requests=list(self.requests), sent=list(self.sent))

    # ----------------------------------------------------------------- the server

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

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        reply = self.handle(
            FakeRequest(
                path=request.path,
                body=await request.read(),
                headers={k.lower(): v for k, v in request.headers.items()},
                method=request.method,
                at=self.now(),
            )
        )
        if isinstance(reply, Disconnect):
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=200)
        if isinstance(reply, Stall):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), reply.seconds)
            reply = reply.answer
        return web.Response(
            status=reply.status,
            body=reply.body,
            headers=reply.headers,
            content_type=reply.content_type,
        )

    async def _get_record(self, request: web.Request) -> web.Response:
        return web.Response(body=_encoder.encode(self.record()), content_type="application/json")

    async def _get_count(self, request: web.Request) -> web.Response:
        return web.Response(text=str(len(self.requests)), content_type="text/plain")

    async def _set_faults(self, request: web.Request) -> web.Response:
        try:
            self.faults = msgspec.json.decode(await request.read(), type=Faults)
        except msgspec.DecodeError as e:
            return web.json_response({"error": str(e)}, status=400)
        self._rng = random.Random(self.faults.seed)
        return web.json_response({"ok": True})


def texts_of(language: str, table: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """A fake's texts in one language from ``{key: (english, russian)}``."""
    position = 1 if language == "ru" else 0
    return {key: pair[position] for key, pair in table.items()}
