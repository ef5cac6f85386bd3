"""The network between a simulated process and a fake gateway, on virtual time.

It plays :class:`~smsbridge.testing.FakeGateway` models the way the aiohttp transport meets a
real gateway: a pool of connections that are warm or must first be opened (one to three round
trips before the request can be written, which is where the core's ``ready`` hook runs), a
one-way delay with jitter before the gateway sees the request, refused connections, answers
too slow for the read timeout, and the model's own faults (resets and hangs after it acted).
"""

from __future__ import annotations

import contextvars
import random
from collections import Counter

import anyio
import msgspec

from ..._core.errors import ConnectError, ConnectionLostError, TransportTimeoutError
from ..._core.transport import HttpRequest, HttpResponse, Ready, Timeouts
from ..._fake import Disconnect, FakeGateway, FakeRequest, Reply, Stall

__all__ = ["WRITER", "Net", "Process", "SimTransport", "Wire", "Written"]

WRITER: contextvars.ContextVar[str] = contextvars.ContextVar("sim_writer", default="")
"""The name of the send whose task writes a request (the simulator sets it per send)."""


class Process:
    """A simulated OS process: when it dies, nothing of it touches the world again."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.alive = True

    def check(self) -> None:
        """Raise if the process is dead (a coroutine closed after a kill)."""
        if not self.alive:
            raise ProcessLookupError(f"process {self.name} is dead")


class Net(msgspec.Struct, kw_only=True):
    """How the network behaves in one run.

    Attributes:
        one_way: seconds a request takes to reach the gateway on an open connection.
        jitter: up to this much more, drawn per request.
        handshake: round trips to open a connection (TCP, or TCP and TLS).
        refused: chance that opening a connection is refused.
        slow: chance that the gateway's answer comes only after the read timeout.
        late: chance that a request reaches the gateway only just before the read timeout
            (held up on the way), so that the gateway acts on it late and its writer hears
            nothing in time.
        keepalive: seconds an idle connection stays in the pool.
    """

    one_way: float = 0.01
    jitter: float = 0.002
    handshake: int = 1
    refused: float = 0.0
    slow: float = 0.0
    late: float = 0.0
    keepalive: float = 10.0


class Written:
    """A request that reached a gateway (named), who wrote it, and when its writer heard a
    definite answer (one that says what the gateway did: not a 5xx, an unreadable body, a
    dropped connection, a timeout, or a death or cancellation while it waited); ``None`` if
    never."""

    __slots__ = ("at", "gateway", "heard", "numbers", "send", "writer")

    def __init__(
        self, numbers: tuple[str, ...], writer: str, send: str, at: float, gateway: str = ""
    ) -> None:
        self.numbers = numbers
        self.writer = writer
        self.send = send
        self.at = at
        self.gateway = gateway
        self.heard: float | None = None


_UNREADABLE = frozenset({"garbage_before", "garbage_after", "truncated_after"})


class Wire:
    """Requests written and on their way to the gateway. Once written, a request arrives
    whatever becomes of its writer: cancelled or killed, its bytes were sent. Arrivals are
    handed to the gateway in order, when their writer wakes or, for orphans, as soon as
    anything else touches the gateway (and at the end of the run). Each gateway has its
    wire; the wires of a world may share one list of what was written."""

    def __init__(self, gateway: FakeGateway, written: list[Written], name: str = "") -> None:
        self._gateway = gateway
        self._written = written
        self._name = name
        self._pending: list[tuple[float, int, FakeRequest, tuple[str, str, float]]] = []
        self._replies: dict[int, tuple[Reply, Written, str]] = {}
        self._seq = 0

    def put(self, request: FakeRequest, writer: str, now: float) -> int:
        """A request written now by ``writer`` that arrives at ``request.at``; returns its
        ticket."""
        self._seq += 1
        self._pending.append((request.at, self._seq, request, (writer, WRITER.get(), now)))
        return self._seq

    def deliver(self, until: float) -> None:
        """Hand the gateway every request arrived by ``until``, in order of arrival."""
        pending = self._pending
        pending.sort(key=lambda p: (p[0], p[1]))
        while pending and pending[0][0] <= until:
            _, ticket, request, (writer, send, at) = pending.pop(0)
            reply = self._gateway.handle(request)
            record = self._gateway.requests[-1]
            written = Written(record.numbers, writer, send, at, self._name)
            self._written.append(written)
            self._replies[ticket] = (reply, written, record.fault)

    def take(self, ticket: int) -> tuple[Reply, Written, str]:
        """The gateway's reply to a request that has arrived (its writer woke at its arrival,
        which the clock may show a hair early), its record, and its fault."""
        if ticket not in self._replies:
            arrival = next(at for at, seq, _, _ in self._pending if seq == ticket)
            self.deliver(arrival)
        return self._replies.pop(ticket)


class SimTransport:
    """A :class:`~smsbridge.Transport` to a fake gateway model, for one process. A request
    with its own time limit is held up, and waited for, only until it runs out."""

    time_limits = True

    def __init__(
        self,
        gateway: FakeGateway,
        net: Net,
        timeouts: Timeouts,
        rng: random.Random,
        process: Process,
        stats: Counter[str],
        wire: Wire,
    ) -> None:
        self._wire = wire
        self._gateway = gateway
        self._net = net
        self._timeouts = timeouts
        self._rng = rng
        self._process = process
        self._stats = stats
        self._idle: list[float] = []  # when each idle connection went idle

    def _warm(self, now: float) -> bool:
        idle = self._idle
        while idle:
            since = idle.pop()
            if now - since <= self._net.keepalive:
                return True
        return False

    async def send(self, request: HttpRequest, ready: Ready | None = None) -> HttpResponse:
        """Connect (or reuse), await ``ready``, write, and answer as the model does."""
        process, net, rng = self._process, self._net, self._rng
        process.check()
        limit = request.time_limit
        deadline = None if limit is None else anyio.current_time() + limit
        if not self._warm(anyio.current_time()):
            self._stats["net: new connection"] += 1
            await anyio.sleep(2 * net.one_way * net.handshake)
            if rng.random() < net.refused:
                self._stats["net: connection refused"] += 1
                raise ConnectError("could not connect (simulated)")
        if ready is not None:
            try:
                if deadline is None:
                    await ready()
                else:  # as aiohttp's total time limit: it also runs while the request waits
                    with anyio.fail_after(max(deadline - anyio.current_time(), 0.0)):
                        await ready()
            except TimeoutError:
                self._idle.append(anyio.current_time())
                self._stats["net: a time limit ran out before the write"] += 1
                raise ConnectError("nothing written: its time ran out (simulated)") from None
            except BaseException:
                self._idle.append(anyio.current_time())
                raise
        read = self._timeouts.read
        written_at = anyio.current_time()
        if deadline is not None:
            self._stats["net: a repeat awaited what is left of the guard"] += 1
            read = min(read, deadline - written_at)
            if read <= 0:  # its time ran out as it was about to be written: nothing goes
                raise TransportTimeoutError("no answer in time (simulated)")
        late = net.late and rng.random() < net.late
        if late:
            self._stats["net: request held up"] += 1
            arrival = written_at + read * rng.uniform(0.5, 0.99)
        else:
            arrival = written_at + net.one_way + rng.random() * net.jitter
        ticket = self._wire.put(
            FakeRequest(
                path=request.path,
                body=request.body,
                headers={k.lower(): v for k, v in request.headers.items()},
                method=request.method,
                at=arrival,
            ),
            process.name,
            anyio.current_time(),
        )
        await anyio.sleep(arrival - anyio.current_time())
        process.check()
        reply, written, fault = self._wire.take(ticket)
        if late:
            await anyio.sleep(written_at + read - anyio.current_time())
            raise TransportTimeoutError("no answer in time (simulated)")
        unreadable = fault in _UNREADABLE
        if isinstance(reply, Disconnect):
            await anyio.sleep(net.one_way)
            raise ConnectionLostError("connection dropped after the request was sent (simulated)")
        if isinstance(reply, Stall):
            if reply.seconds + net.one_way > read:
                await anyio.sleep(read)
                raise TransportTimeoutError("no answer in time (simulated)")
            await anyio.sleep(reply.seconds)
            reply = reply.answer
        if rng.random() < net.slow:
            self._stats["net: answer too slow"] += 1
            await anyio.sleep(read)
            raise TransportTimeoutError("no answer in time (simulated)")
        await anyio.sleep(net.one_way)
        process.check()
        self._idle.append(anyio.current_time())
        if reply.status < 500 and not unreadable:
            written.heard = anyio.current_time()
        headers = {k.lower(): v for k, v in reply.headers.items()}
        return HttpResponse(reply.status, reply.body, headers)

    async def aclose(self) -> None:
        """Drop the pool."""
        self._idle.clear()
