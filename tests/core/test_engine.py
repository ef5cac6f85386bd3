"""The core's flow on an in-memory transport and a fake clock: retries, ambiguity, stops,
streaming, and exactly one outcome per recipient whatever happens."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest

from smsbridge import (
    AuthenticationError,
    Claim,
    ConfigurationError,
    ConnectError,
    HttpRequest,
    HttpResponse,
    InvalidInputError,
    MemoryWindow,
    MockTransport,
    Outcome,
    RateLimitedError,
    Report,
    RetryPolicy,
    SlidingWindowLimiter,
    SmsClub,
    StateBackendError,
    Status,
    Timeouts,
    TransportTimeoutError,
    Webcom,
)
from smsbridge._core.client import holder_for
from smsbridge._core.exchange import NotWritten
from smsbridge._core.gateway import Batch
from smsbridge.testing import FakeClock
from smsbridge.testing._sim.loop import LoopClock, VirtualLoop, World

from ..helpers import TOKEN, then_waiting, ua_numbers

Handler = Callable[[HttpRequest], HttpResponse]


def accept_all(request: HttpRequest) -> HttpResponse:
    """An SMS Club that accepts everything, ids 1, 2, ... per request."""
    body = json.loads(request.body)
    phones = body.get("phone") or [m["phone"] for m in body["data_message"]]
    info = {f"{i}-{p}": p for i, p in enumerate(phones)}
    return HttpResponse(200, json.dumps({"success_request": {"info": info}}).encode())


def scripted(*answers: HttpResponse | Exception) -> tuple[Handler, list[int]]:
    """Answer with each of `answers` in turn, then accept everything."""
    queue = list(answers)
    calls = [0]

    def handler(request: HttpRequest) -> HttpResponse:
        calls[0] += 1
        if queue:
            answer = queue.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return accept_all(request)

    return handler, calls


def client(handler: Handler, clock: FakeClock, **kw: object) -> SmsClub:
    return SmsClub(TOKEN, transport=MockTransport(handler), clock=clock, **kw)  # type: ignore[arg-type]


async def test_rate_limited_requests_wait_for_retry_after_then_succeed(clock: FakeClock) -> None:
    """429 is retried after at least Retry-After seconds; the recipients end accepted."""
    handler, calls = scripted(HttpResponse(429, b"", {"retry-after": "7"}))
    async with client(handler, clock) as sms:
        report = await sms.send("hi", to=list(ua_numbers(3)), sender="Shop")
    assert (report.accepted, report.requests, calls[0]) == (3, 2, 2)
    assert max(clock.slept) >= 7.0


async def test_connection_refused_is_retried(clock: FakeClock) -> None:
    """A request that never connected is surely unsent: retried with backoff."""
    handler, _ = scripted(ConnectError("refused"), ConnectError("refused"))
    async with client(handler, clock) as sms:
        report = await sms.send("hi", to=list(ua_numbers(3)), sender="Shop")
    assert (report.accepted, report.requests) == (3, 3)


AMBIGUOUS = [
    HttpResponse(500, b"<html>oops</html>"),
    HttpResponse(200, b"<html>not json</html>"),
    TransportTimeoutError("read timeout"),
]


@pytest.mark.parametrize("failure", AMBIGUOUS)
async def test_ambiguous_failures_end_uncertain_and_are_not_resent(
    clock: FakeClock, failure: HttpResponse | Exception
) -> None:
    """Without the gateway's duplicate guard: 5xx, an unreadable 200 and a read timeout may
    have sent: uncertain, one request only."""
    handler, calls = scripted(failure)
    async with client(handler, clock, repeat_guard=False) as sms:
        report = await sms.send("hi", to=list(ua_numbers(3)), sender="Shop")
    assert (report.uncertain, report.requests, calls[0]) == (3, 1, 1)
    assert all(o.status is Status.UNCERTAIN and o.reason for o in report.outcomes)


class GuardedGateway:
    """An SMS Club that refuses a text to a number it sent less than 2 minutes ago (453, the
    whole request), refuses its black list per number, and loses the answer of the first
    request after processing it (``failure``)."""

    def __init__(
        self, failure: HttpResponse | Exception, black: frozenset[str] = frozenset()
    ) -> None:
        self.failure: HttpResponse | Exception | None = failure
        self.black = black
        self.sent: list[str] = []
        self.requests = 0

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests += 1
        phones = json.loads(request.body)["phone"]
        if any(p in self.sent for p in phones):
            return HttpResponse(453, b'{"status": 453, "message": "Duplication"}')
        info = {f"id-{p}": p for p in phones if p not in self.black}
        refused = {p: "This number is in the black list" for p in phones if p in self.black}
        self.sent.extend(info.values())
        failure, self.failure = self.failure, None
        if isinstance(failure, Exception):
            raise failure
        if failure is not None:
            return failure
        body = {"success_request": {"info": info, "add_info": refused}}
        return HttpResponse(200, json.dumps(body).encode())


@pytest.mark.parametrize("failure", AMBIGUOUS)
async def test_within_the_duplicate_guard_an_ambiguous_request_is_repeated(
    clock: FakeClock, failure: HttpResponse | Exception
) -> None:
    """SMS Club refuses the same text to the same number for 2 minutes (453), so a request
    whose answer was lost is repeated: refused, someone of it went, and each alone says who
    (453: it went, accepted without an id; the black-listed one refused again, rejected)."""
    numbers = list(ua_numbers(3))
    gateway = GuardedGateway(failure, black=frozenset({numbers[1]}))
    async with client(gateway, clock) as sms:
        report = await sms.send("hi", to=numbers, sender="Shop", keep="all")
    assert gateway.sent == [numbers[0], numbers[2]]
    assert [(o.status, o.message_id) for o in report.outcomes] == [
        (Status.ACCEPTED, None),
        (Status.REJECTED, None),
        (Status.ACCEPTED, None),
    ]
    assert report.outcomes[1].reason == "This number is in the black list"
    assert report.requests == gateway.requests == 1 + 1 + 3


async def test_a_repeat_that_is_answered_is_the_first_delivery(clock: FakeClock) -> None:
    """The lost answer's request had not been processed (a 502 before it): the repeat is
    answered, and its ids are the recipients'."""
    handler, calls = scripted(HttpResponse(502, b"bad gateway"))
    async with client(handler, clock) as sms:
        report = await sms.send("hi", to=list(ua_numbers(3)), sender="Shop")
    assert (report.accepted, report.requests, calls[0]) == (3, 2, 2)
    assert all(o.message_id for o in report.outcomes)


async def test_past_the_duplicate_guard_nothing_is_repeated(clock: FakeClock) -> None:
    """A repeat that would go 100 s or more after the first try (120 s less the margin):
    not written; the recipients stay uncertain."""
    handler, calls = scripted(HttpResponse(502, b"bad gateway"))
    async with client(handler, clock, retry=RetryPolicy(backoff=250, max_backoff=250)) as sms:
        report = await sms.send("hi", to=list(ua_numbers(3)), sender="Shop")
    assert (report.uncertain, report.requests, calls[0]) == (3, 1, 1)
    assert "duplicate guard has run out" in (report.outcomes[0].reason or "")


async def test_at_least_once_resends_ambiguous_batches(clock: FakeClock) -> None:
    """Opting into at-least-once retries a 5xx; a refusal after that stays uncertain."""
    handler, _ = scripted(HttpResponse(502, b"bad gateway"))
    async with client(handler, clock, at_least_once=True) as sms:
        report = await sms.send("hi", to=list(ua_numbers(3)), sender="Shop")
    assert (report.accepted, report.requests) == (3, 2)

    dup = HttpResponse(453, b'{"status": 453, "message": "Duplication"}')
    handler, _ = scripted(HttpResponse(502, b"bad gateway"), dup)
    async with client(handler, clock, at_least_once=True) as sms:
        report = await sms.send("hi", to=list(ua_numbers(3)), sender="Shop")
    assert report.uncertain == 3
    assert report.outcomes[0].reason is not None
    assert "earlier try may have been processed" in report.outcomes[0].reason


async def test_retries_give_up_as_failed(clock: FakeClock) -> None:
    """A gateway that answers 429 forever leaves the recipients failed, not lost."""
    handler, _ = scripted(*[HttpResponse(429, b"")] * 10)
    async with client(handler, clock, retry=RetryPolicy(attempts=3)) as sms:
        report = await sms.send("hi", to=list(ua_numbers(2)), sender="Shop")
    assert (report.failed, report.requests) == (2, 3)


async def test_authentication_failure_stops_and_fails_everyone_left(clock: FakeClock) -> None:
    """A bad token fails the batch and every recipient after it, unread input included."""
    handler, calls = scripted(*[HttpResponse(401, b'{"status": 401, "message": "no"}')] * 100)
    async with client(handler, clock, concurrency=1) as sms:
        report = await sms.send("hi", to=ua_numbers(1000), sender="Shop", keep="none")
    assert report.failed == 1000 and report.total == 1000
    assert calls[0] <= 2
    assert isinstance(report.error, AuthenticationError)
    assert not report.ok


async def test_every_recipient_gets_exactly_one_outcome(clock: FakeClock) -> None:
    """Valid, invalid, repeated and malformed entries: one outcome each, by input index."""
    seen: list[Outcome] = []
    entries = ["380501234567", "nope", "380501234567", "+380 50 123 45 68", "380501234569"]
    async with client(accept_all, clock) as sms:
        report = await sms.send("hi", to=entries, sender="Shop", on_outcome=seen.append)
    assert sorted(o.index for o in seen) == [0, 1, 2, 3, 4]
    by_index = {o.index: o.status for o in seen}
    assert by_index == {
        0: Status.ACCEPTED,
        1: Status.REJECTED,
        2: Status.SUPPRESSED,
        3: Status.ACCEPTED,
        4: Status.ACCEPTED,
    }
    assert (report.accepted, report.rejected, report.suppressed, report.requests) == (3, 1, 1, 1)

    async with client(accept_all, clock) as sms:
        report = await sms.send_personal(
            [("380501234567", "a"), ("380501234568", ""), ("bad", "b"), "not-a-pair"],  # type: ignore[list-item]
            sender="Shop",
        )
    assert [(o.index, o.status.value) for o in sorted(report.outcomes, key=lambda o: o.index)] == [
        (0, "accepted"),
        (1, "rejected"),
        (2, "rejected"),
        (3, "rejected"),
    ]


async def test_async_sources_and_async_callbacks(clock: FakeClock) -> None:
    """An async iterator of numbers and a coroutine callback work like their sync kin."""

    async def numbers() -> AsyncIterator[str]:
        for n in ua_numbers(250):
            yield n

    got: list[int] = []

    async def record(outcome: Outcome) -> None:
        await anyio.lowlevel.checkpoint()
        got.append(outcome.index)

    async with client(accept_all, clock) as sms:
        report = await sms.send("hi", to=numbers(), sender="Shop", on_outcome=record, keep="none")
    assert (report.accepted, report.requests, report.outcomes) == (250, 3, ())
    assert sorted(got) == list(range(250))


async def test_input_is_read_lazily(clock: FakeClock) -> None:
    """The input is pulled only a bounded distance ahead of the requests."""
    pulled = [0]
    lead: list[int] = []

    def numbers() -> Iterator[str]:
        for n in ua_numbers(5000):
            pulled[0] += 1
            yield n

    def handler(request: HttpRequest) -> HttpResponse:
        lead.append(pulled[0] - 100 * len(lead))
        return accept_all(request)

    async with client(handler, clock, concurrency=2) as sms:
        report = await sms.send("hi", to=numbers(), sender="Shop", keep="none")
    assert report.accepted == 5000
    assert max(lead) <= 100 * (2 + 2 + 2)


async def test_keep_problems_keeps_only_problems(clock: FakeClock) -> None:
    """keep='problems' drops accepted and suppressed outcomes from the report."""
    async with client(accept_all, clock) as sms:
        report = await sms.send(
            "hi", to=["380501234567", "x", "380501234567"], sender="Shop", keep="problems"
        )
    assert [o.status for o in report.outcomes] == [Status.REJECTED]
    assert report.message_ids() == []


async def test_stop_event_stops_reading_and_accounts_for_what_was_read(clock: FakeClock) -> None:
    """Setting `stop` ends the send: everything read has an outcome; the rest is unread."""
    stop = anyio.Event()
    pulled = [0]

    def numbers() -> Iterator[str]:
        for n in ua_numbers(10_000):
            pulled[0] += 1
            yield n

    def handler(request: HttpRequest) -> HttpResponse:
        stop.set()
        return accept_all(request)

    async with client(handler, clock, concurrency=1) as sms:
        report = await sms.send("hi", to=numbers(), sender="Shop", stop=stop, keep="none")
    assert report.stopped and not report.ok
    assert report.total == pulled[0]
    assert report.total < 10_000
    assert report.accepted + report.failed == report.total


def test_a_stopped_send_waits_for_no_rate_slot_and_no_retry() -> None:
    """Stop while one request waits 20-30 s to be tried again: the send ends at once (virtual
    time); that one and the one that held the ninth slot are failed, nothing else was read."""
    loop = VirtualLoop(World())
    stop = anyio.Event()
    written: list[float] = []

    def handler(request: HttpRequest) -> HttpResponse:
        written.append(loop.time())
        if len(written) == 1:
            raise ConnectError("refused")  # surely unsent: tried again after 20-30 s
        if len(written) == 8:
            stop.set()
        return accept_all(request)

    async def main() -> Report:
        limiter = SlidingWindowLimiter(9, clock=LoopClock())
        transport = MockTransport(handler)
        async with SmsClub(
            TOKEN,
            transport=transport,
            clock=LoopClock(),
            limiter=limiter,
            concurrency=10,
            retry=RetryPolicy(backoff=20.0),
        ) as sms:
            return await sms.send("hi", to=ua_numbers(2_000), sender="Shop", stop=stop, keep="none")

    try:
        started = loop.time()
        report = loop.run_until_complete(main())
        ended = loop.time()
    finally:
        loop.close()
    assert written == [started] * 8  # the ninth slot was free but came after the stop
    assert ended - started < 0.01
    assert report.stopped and report.accepted == 700 and report.requests == 8
    assert (report.total, report.failed, report.uncertain) == (900, 200, 0)


async def test_errors_in_the_callers_code_are_raised_after_accounting(clock: FakeClock) -> None:
    """A failing iterator or callback is raised as itself once in-flight work settles."""

    def numbers() -> Iterator[str]:
        yield from ua_numbers(150)
        raise LookupError("source broke")

    async with client(accept_all, clock) as sms:
        with pytest.raises(LookupError, match="source broke"):
            await sms.send("hi", to=numbers(), sender="Shop")

    def explode(outcome: Outcome) -> None:
        raise KeyError("callback broke")

    transport = MockTransport(accept_all)
    async with SmsClub(TOKEN, transport=transport, clock=clock, concurrency=1) as sms:
        with pytest.raises(KeyError, match="callback broke"):
            await sms.send("hi", to=ua_numbers(10_000), sender="Shop", on_outcome=explode)
    assert len(transport.requests) <= 3


async def test_a_defect_in_parsing_leaves_recipients_uncertain(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """If the adapter itself breaks on a 200, its recipients are uncertain, never lost."""
    async with client(accept_all, clock, repeat_guard=False) as sms:

        def broken(*args: object) -> None:
            raise ZeroDivisionError

        sms.gateway.parse_send = broken  # type: ignore[method-assign,assignment]
        with caplog.at_level(logging.ERROR, "smsbridge"):
            report = await sms.send("hi", to=list(ua_numbers(5)), sender="Shop")
    assert report.uncertain == 5 and report.requests == 1
    assert "unexpected failure" in caplog.text


async def test_duplicate_window_releases_failures_and_keeps_uncertain(clock: FakeClock) -> None:
    """A surely-unsent recipient can be sent again at once; an uncertain one cannot."""
    handler, _ = scripted(HttpResponse(400, b'{"status": 400, "message": "bad"}'))
    async with client(handler, clock) as sms:
        first = await sms.send("hi", to=["380501234567"], sender="Shop")
        second = await sms.send("hi", to=["380501234567"], sender="Shop")
    assert (first.rejected, second.accepted) == (1, 1)

    handler, _ = scripted(HttpResponse(503, b""))
    async with client(handler, clock, repeat_guard=False) as sms:
        first = await sms.send("hi", to=["380501234567"], sender="Shop")
        second = await sms.send("hi", to=["380501234567"], sender="Shop")
        clock.advance(121)  # the TTL from the uncertain outcome
        third = await sms.send("hi", to=["380501234567"], sender="Shop")
    assert (first.uncertain, second.suppressed, third.accepted) == (1, 1, 1)


REFUSED = HttpResponse(401, b'{"status": 401, "message": "no"}')


@pytest.mark.parametrize("journaled", [True, False])
@pytest.mark.parametrize("ending", ["account-wide error", "stop", "cancel"])
async def test_failed_before_its_turn_frees_what_a_dead_run_reserved_if_a_journal_knows(
    clock: FakeClock, ending: str, journaled: bool
) -> None:
    """A dead run of the send (its idempotency key) reserved #3 and died; this run ends before
    #3's batch goes (the account refused, the caller stopped or cancelled): #3 is failed. In
    a journaled resume (``earlier=``: the journal notes before a write, and #3 is not among
    what the dead run may have written) its reservation is gone, so the next send of its
    message goes at once; without a journal the dead run may have sent it, and the
    reservation stays. #2's key, held by another send, stays held either way."""
    numbers = list(ua_numbers(6))
    holder = holder_for(b"campaign")
    stop = anyio.Event()
    scope = anyio.CancelScope()

    def handler(request: HttpRequest) -> HttpResponse:
        if ending == "account-wide error":
            return REFUSED
        if ending == "stop":
            stop.set()
        else:
            scope.cancel()
        return accept_all(request)

    seen: list[Outcome] = []
    async with client(handler, clock, batch_size=2, concurrency=1) as sms:
        window = sms.window
        assert window is not None
        keys = window.keys("Shop", "hi", Batch([2, 3], numbers[2:4]))
        assert await window.reserve(keys[:1], "another send", [2]) == [Claim.OURS]
        dead = f"{holder}/dead"
        assert await window.reserve(keys[1:], dead, [3]) == [Claim.OURS]  # the dead run's
        with scope:
            await sms.send(
                "hi",
                to=numbers,
                sender="Shop",
                stop=stop,
                on_outcome=seen.append,
                idempotency_key=b"campaign",
                earlier=() if journaled else None,  # type: ignore[arg-type]
            )
        assert {o.index: o.status for o in seen}[3] is Status.FAILED
        freed = Claim.OURS if journaled else Claim.PENDING
        assert await window.reserve(keys, "the/next", [0, 1]) == [Claim.PENDING, freed]


async def test_a_send_held_up_by_another_sends_reservations_says_so_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Recipients another send has reserved and not settled (a send stopped while Redis
    was out of reach leaves them until they lapse) wait for its outcome, or for the
    reservations to lapse. Five seconds in, the wait is said once a send, as a notice a
    person watching sees (the command shows it without ``-v``), with how long it may last;
    once the reservations lapse, they go."""
    written: list[float] = []

    def handler(request: HttpRequest) -> HttpResponse:
        written.append(clock.now())
        return accept_all(request)

    numbers = list(ua_numbers(2))
    async with client(handler, clock, batch_size=1, concurrency=1) as sms:
        window = sms.window
        assert window is not None
        keys = window.keys("Shop", "hi", Batch([0, 1], numbers))
        assert await window.reserve(keys, "another/send", [0, 1]) == [Claim.OURS] * 2
        lapse = clock.now() + window.ttl + window.slack
        with caplog.at_level(logging.WARNING, "smsbridge"):
            report = await sms.send("hi", to=numbers, sender="Shop")
    notices = [r.getMessage() for r in caplog.records if getattr(r, "notice", False)]
    assert len(notices) == 1
    said = re.fullmatch(
        r"smsclub: numbers of this send are held by a send of the same message that has not "
        r"settled \(another send, or an earlier copy of the number in this one\); waiting for "
        r"its outcome, up to (\d+) s more",  # in memory: no store out of reach to blame
        notices[0],
    )
    assert said is not None
    assert 2 * (window.ttl + window.slack) - 7 <= int(said[1]) <= 2 * (window.ttl + window.slack)
    assert (report.accepted, report.requests) == (2, 2)
    assert len(written) == 2 and min(written) >= lapse


class _BrokenCommit(MemoryWindow):
    """A store of the user's with a bug: its commit raises what no store means to."""

    async def commit(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("store bug")


class _BrokenReserve(MemoryWindow):
    async def reserve(self, *args: Any, **kwargs: Any) -> list[Claim]:
        raise RuntimeError("store bug")


async def test_a_window_raising_what_no_store_means_to_loses_no_outcome(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in a store of the user's (an error that is no SmsBridgeError) is the store
    failing: a commit's leaves the recipients accepted as the gateway took them (each its
    outcome, the error logged with its traceback); a reservation's fails those not sent
    and stops the send with a StateBackendError, as for a store gone."""
    written: list[HttpRequest] = []

    def handler(request: HttpRequest) -> HttpResponse:
        written.append(request)
        return accept_all(request)

    seen: list[Outcome] = []
    with caplog.at_level(logging.ERROR, "smsbridge"):
        async with client(handler, clock, window=_BrokenCommit()) as sms:
            report = await sms.send(
                "hi", to=list(ua_numbers(250)), sender="Shop", on_outcome=seen.append
            )
    assert (report.accepted, len(seen), len(written)) == (250, 250, 3)
    assert "the duplicate window failed" in caplog.text and "store bug" in caplog.text

    seen.clear()
    async with client(handler, clock, window=_BrokenReserve()) as sms:
        report = await sms.send(
            "hi", to=list(ua_numbers(250)), sender="Shop", on_outcome=seen.append
        )
    assert (report.failed, len(seen), len(written)) == (250, 250, 3)
    assert isinstance(report.error, StateBackendError)
    assert "duplicate window failed: RuntimeError: store bug" in str(report.error)


class _Leave(BaseException):
    """A BaseException of the caller's own (as KeyboardInterrupt and SystemExit are)."""


class _Answering(MemoryWindow):
    """A store of the user's whose reservation answers ``answer(n)`` for n keys, or raises
    what ``answer`` raises."""

    def __init__(self, answer: Callable[[int], Any]) -> None:
        super().__init__()
        self.answer = answer

    async def reserve(self, keys: Any, holder: str, indices: Any) -> Any:
        await super().reserve(keys, holder, indices)
        return self.answer(len(keys))


def _leave(n: int) -> Any:
    raise _Leave()


@pytest.mark.parametrize(
    ("answer", "accepted"),
    [
        (lambda n: [0] * n, 5),  # numbers for the claims they are
        (lambda n: [1] * n, 0),  # SENT: suppressed
        (lambda n: [Claim.OURS] * (n - 1), 0),  # one short
        (lambda n: [Claim.OURS] * (n + 1), 0),
        (lambda n: 7, 0),
        (lambda n: ["x"] * n, 0),
        (_leave, 0),
    ],
)
async def test_a_window_answering_nonsense_loses_no_recipient(
    clock: FakeClock, answer: Callable[[int], Any], accepted: int
) -> None:
    """A store of the user's that answers numbers has them read as the claims they are; one
    that answers the wrong number of claims, or no claims, or raises a BaseException of its
    own, fails the recipients (the send stopped, as for a store gone; the interrupt raised at
    the end): each recipient its one outcome, where before they fell through every part of
    the batch (no outcome, no error) or out of the send in an exception group."""
    seen: list[Outcome] = []
    async with client(accept_all, clock, window=_Answering(answer)) as sms:
        try:
            report = await sms.send(
                "hi", to=list(ua_numbers(5)), sender="Shop", on_outcome=seen.append
            )
        except _Leave:
            report = None
    assert sorted(o.index for o in seen) == list(range(5))
    assert sum(o.status is Status.ACCEPTED for o in seen) == accepted
    if answer is _leave:
        assert report is None and all(o.status is Status.FAILED for o in seen)
    elif accepted == 0 and report is not None and report.suppressed == 0:
        assert isinstance(report.error, StateBackendError)


async def test_a_callback_raising_a_base_exception_still_hears_every_outcome(
    clock: FakeClock,
) -> None:
    """A callback raising a BaseException of its own (a KeyboardInterrupt, a SystemExit)
    stops the send as an Exception does: it still hears every outcome, and the send raises
    that exception itself at its end (it came out in an exception group, one outcome
    heard, the other recipients of a written request with none)."""
    heard: dict[type[BaseException], list[Outcome]] = {}
    # a CancelledError too, where nothing cancelled the send (a future the callback awaited,
    # cancelled elsewhere): it was taken for the send's own cancellation and swallowed,
    # the send ending as if done, recipients already sent without an outcome
    for kind in (RuntimeError, _Leave, GeneratorExit, asyncio.CancelledError):
        seen = heard[kind] = []

        def callback(outcome: Outcome, seen: list[Outcome] = seen, kind: Any = kind) -> None:
            seen.append(outcome)
            if len(seen) == 1:
                raise kind()

        async with client(accept_all, clock) as sms:
            with pytest.raises(kind):
                await sms.send("hi", to=list(ua_numbers(250)), sender="Shop", on_outcome=callback)
    # every recipient read has its outcome (the input is not read on once the send stopped)
    assert sorted(o.index for o in heard[_Leave]) == list(range(len(heard[_Leave])))
    assert [(o.index, o.status) for o in heard[_Leave]] == [
        (o.index, o.status) for o in heard[RuntimeError]
    ]
    assert {o.status for o in heard[_Leave][:100]} == {Status.ACCEPTED}
    for kind in (GeneratorExit, asyncio.CancelledError):
        assert [(o.index, o.status) for o in heard[kind]] == [
            (o.index, o.status) for o in heard[RuntimeError]
        ]


async def test_a_send_cancelled_after_its_callback_failed_says_so(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The callback's error is raised at the send's end, once the requests on the wire are
    answered; a cancellation while they are goes on in its place (the send's own task is
    cancelled), and the callback's error is said in the log, not lost without a trace."""
    second, broke, answered = asyncio.Event(), asyncio.Event(), asyncio.Event()
    calls = 0

    async def handler(request: HttpRequest) -> HttpResponse:
        nonlocal calls
        calls += 1
        if calls == 1:  # answered once the second is on the wire
            await second.wait()
        else:  # on the wire until the send is cancelled
            second.set()
            await answered.wait()
        return accept_all(request)

    def callback(outcome: Outcome) -> None:
        broke.set()
        raise RuntimeError("callback broke")

    async with SmsClub(TOKEN, transport=MockTransport(handler), clock=clock, concurrency=2) as sms:
        send = asyncio.ensure_future(
            sms.send("hi", to=list(ua_numbers(250)), sender="Shop", on_outcome=callback)
        )
        await broke.wait()
        with caplog.at_level(logging.WARNING, "smsbridge"):
            send.cancel()
            await asyncio.sleep(0)
            answered.set()
            with pytest.raises(asyncio.CancelledError):
                await send
    assert "cancelled after an error in the caller's code" in caplog.text
    assert "callback broke" in caplog.text


async def test_what_an_earlier_run_may_have_sent_stays_uncertain_and_held(
    clock: FakeClock,
) -> None:
    """A resumed run stopped by the account before it read #900, which the dead run may have
    sent, and #901, which it had only reserved: #900 is uncertain and its key stays held;
    #901 is failed and its key is free."""
    handler, _ = scripted(*[REFUSED] * 3)
    async with client(handler, clock, concurrency=1) as sms:
        window = sms.window
        assert window is not None
        numbers = list(ua_numbers(1000))
        keys = window.keys("Shop", "hi", Batch([900, 901], numbers[900:902]))
        dead = f"{holder_for(b'campaign')}/dead"
        assert await window.reserve(keys, dead, [900, 901]) == [Claim.OURS] * 2
        rows: list[Any] = list(enumerate(numbers))  # a campaign's (index, entry) rows
        report = await sms.send(
            "hi",
            to=rows,
            sender="Shop",
            indexed=True,
            maybe_sent={900: None},
            earlier=(),
            idempotency_key=b"campaign",
        )
        outcomes = {o.index: o for o in report.outcomes}
        assert (report.uncertain, report.failed) == (1, 999)
        assert outcomes[900].status is Status.UNCERTAIN
        assert "an earlier run may have sent it" in (outcomes[900].reason or "")
        assert outcomes[901].status is Status.FAILED
        assert await window.reserve(keys, "the/next", [0, 1]) == [Claim.PENDING, Claim.OURS]


async def test_a_slow_answer_holds_the_window_a_full_ttl_from_the_answer(
    clock: FakeClock,
) -> None:
    """An answer later than the reservation's slack commits: blocked TTL from the answer."""

    def slow(request: HttpRequest) -> HttpResponse:
        clock.advance(60)  # the gateway took a minute
        return accept_all(request)

    async with client(slow, clock) as sms:
        await sms.send("hi", to=["380501234567"], sender="Shop")
        clock.advance(100)  # 160 s after the reservation, 100 s after the answer
        held = await sms.send("hi", to=["380501234567"], sender="Shop")
        clock.advance(21)
        free = await sms.send("hi", to=["380501234567"], sender="Shop")
    assert (held.suppressed, free.accepted) == (1, 1)


async def test_concurrent_sends_of_the_same_message_reach_the_gateway_once(
    clock: FakeClock,
) -> None:
    """Two sends racing with the same text and number: one request carries it."""
    transport = MockTransport(accept_all)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        reports: list[object] = []

        async def go() -> None:
            reports.append(await sms.send("hi", to=["380501234567"], sender="Shop"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(go)
            tg.start_soon(go)
    assert len(transport.requests) == 1
    assert sorted((r.accepted, r.suppressed) for r in reports) == [(0, 1), (1, 0)]  # type: ignore[attr-defined]


async def test_client_must_be_opened() -> None:
    """Calling a closed client says how to open it."""
    sms = SmsClub(TOKEN)
    with pytest.raises(ConfigurationError, match="async with SmsClub"):
        await sms.balance()


async def test_calls_and_sends_share_one_retry_decision(clock: FakeClock) -> None:
    """A Retry-After longer than the policy allows ends a plain call at once, as it ends a
    send's batch; a short one is waited out."""
    handler, calls = scripted(HttpResponse(429, b"", {"retry-after": "1000"}))
    async with client(handler, clock) as sms:
        with pytest.raises(RateLimitedError):
            await sms.balance()
    assert calls[0] == 1
    ok = HttpResponse(200, b'{"success_request": {"info": {"money": "1", "currency": "UAH"}}}')
    handler, calls = scripted(HttpResponse(429, b"", {"retry-after": "3"}), ok)
    async with client(handler, clock) as sms:
        assert str((await sms.balance()).money) == "1"
    assert calls[0] == 2


async def test_a_number_restored_as_sent_while_in_flight_stays_held_from_the_later_send() -> None:
    """A resumed send puts a number back as sent while another send has it on the wire;
    when that send is accepted a minute later, the number is held a full window from then,
    not from the restore: a send to it 65 s after is suppressed (it once went again)."""
    gate = anyio.Event()

    async def answer(request: HttpRequest) -> HttpResponse:
        phones = json.loads(request.body)["phone"]
        if len(phones) == 2:
            await gate.wait()
        info = {f"{i}-{p}": p for i, p in enumerate(phones)}
        return HttpResponse(200, json.dumps({"success_request": {"info": info}}).encode())

    clock = FakeClock(1000.0)
    transport = MockTransport(answer)
    p0, p1, p2 = ua_numbers(3)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: sms.send("hi", to=[p0, p1], sender="Shop"))
            await anyio.wait_all_tasks_blocked()
            await sms.send(
                "hi", to=[p2], sender="Shop", idempotency_key=b"campaign", earlier=[(p1, True)]
            )
            clock.advance(60)
            gate.set()
        clock.advance(65)
        later = await sms.send("hi", to=[p1], sender="Shop")
    assert [o.status for o in later.outcomes] == [Status.SUPPRESSED]
    assert sum(json.loads(r.body)["phone"].count(p1) for r in transport.requests) == 1


def test_a_send_cancelled_while_batches_wait_for_a_rate_slot_settles_each_once() -> None:
    """Cancel a send half a second in (virtual time) while workers hold batches waiting for
    a rate slot: every recipient read gets one outcome, each sent one accepted and none of
    the waiting ones sent."""
    loop = VirtualLoop(World())
    outcomes: list[Outcome] = []
    requests: list[list[str]] = []
    pulled = [0]

    def numbers() -> Iterator[str]:
        for n in ua_numbers(5_000):
            pulled[0] += 1
            yield n

    def handler(request: HttpRequest) -> HttpResponse:
        requests.append(json.loads(request.body)["phone"])
        return accept_all(request)

    async def main() -> None:
        limiter = SlidingWindowLimiter(9, clock=LoopClock())
        async with SmsClub(
            TOKEN,
            transport=MockTransport(handler),
            clock=LoopClock(),
            limiter=limiter,
            concurrency=10,
        ) as sms:
            with anyio.move_on_after(0.5):
                await sms.send("hi", to=numbers(), sender="Shop", on_outcome=outcomes.append)

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    sent = {phone for batch in requests for phone in batch}
    assert len(requests) == 9
    indices = [o.index for o in outcomes]
    assert sorted(indices) == list(range(pulled[0]))  # each read, once
    assert pulled[0] >= 1_200  # nine sent, then at least one waiting, one queued, one read
    assert {o.phone for o in outcomes if o.status is Status.ACCEPTED} == sent
    assert all(o.status is Status.FAILED for o in outcomes if o.phone not in sent)


async def test_a_gateway_check_that_fails_leaves_no_entry_without_an_outcome(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A defect in a gateway's pre-send check (it raises) sends nothing of the chunk: every
    entry read ends failed with the reason, once, and the defect is logged."""
    from smsbridge._smsclub.adapter import SmsClubGateway

    def broken(self: object, batch: Batch, job: object) -> None:
        raise TypeError("a defect")

    monkeypatch.setattr(SmsClubGateway, "check", broken)
    transport = MockTransport(accept_all)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        report = await sms.send("hi", to=ua_numbers(150), sender="Shop")
    assert transport.requests == []
    assert sorted(o.index for o in report.outcomes) == list(range(150))
    assert {(o.status, o.reason) for o in report.outcomes} == {
        (Status.FAILED, "not sent: the entry could not be read: TypeError")
    }
    assert "could not be read" in caplog.text
    # indexed, each ends under the caller's index and with its number (they were the
    # positions, and the index shown as the number)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        pairs: list[Any] = [(1000 + i, n) for i, n in enumerate(ua_numbers(3))]
        report = await sms.send("hi", to=pairs, sender="Shop", indexed=True)
    assert {(o.index, o.phone, o.status) for o in report.outcomes} == {
        (index, phone, Status.FAILED) for index, phone in pairs
    }


async def test_entries_that_cannot_be_read_each_end_with_the_reason(clock: FakeClock) -> None:
    """An indexed send given something other than (index, entry) pairs: each such entry is
    rejected with the reason (index -1: it has none to show), its neighbours go. A number
    whose own ``str`` fails: nothing of its chunk is sent, and every entry read ends failed."""

    class Broken(str):
        def __str__(self) -> str:
            raise RuntimeError("boom")

    class Lying(tuple):  # type: ignore[type-arg]
        def __len__(self) -> int:
            raise RuntimeError("boom")

    transport = MockTransport(accept_all)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        pairs: list[Any] = [(i, n) for i, n in enumerate(ua_numbers(150))]
        pairs[60] = ("bad",)
        pairs[61] = "380501234567"
        pairs[62] = (62, "380500000062", "extra")
        pairs[63] = [63, "380500000063"]  # a list is a pair (as json.loads gives them)
        pairs[64] = Lying((64, "380500000064"))
        report = await sms.send("hi", to=pairs, sender="Shop", indexed=True)
        assert (report.total, report.accepted, report.rejected) == (150, 146, 4)
        assert {(o.index, o.phone, o.reason) for o in report.outcomes if o.index < 0} == {
            (-1, phone, "the entry is not an (index, entry) pair")
            for phone in (
                "('bad',)",
                "380501234567",
                "(62, '380500000062', 'extra')",
                "(64, '380500000064')",
            )
        }
        assert [
            phone for body in transport.requests for phone in json.loads(body.body)["phone"]
        ] == [p[1] for i, p in enumerate(pairs) if i not in (60, 61, 62, 64)]
        transport.requests.clear()
        # an index read before is rejected, however long (an int too long for str() failed
        # its whole chunk), and its neighbours go
        huge = 10**5000
        numbers = list(ua_numbers(5))
        pairs = [(0, numbers[0]), (huge, numbers[1]), (huge, numbers[2]), (0, numbers[3])]
        pairs.append((3, numbers[4]))
        report = await sms.send("hey", to=pairs, sender="Shop", indexed=True)
        assert (report.accepted, report.rejected) == (3, 2)
        assert {(o.phone, o.reason) for o in report.outcomes if o.status is Status.REJECTED} == {
            (
                numbers[2],
                "its index (int too long to show) repeats an earlier entry's in this send",
            ),
            (numbers[3], "its index 0 repeats an earlier entry's in this send"),
        }
        transport.requests.clear()
        entries: list[Any] = [*ua_numbers(3), Broken("+38 050 000 00 09")]
        report = await sms.send("hi", to=entries, sender="Shop")
        assert report.total == 4 and report.failed == 4
        assert "(Broken that cannot be shown)" in {o.phone for o in report.outcomes}


def test_a_request_that_waited_past_its_reservation_does_not_go_beside_another_send() -> None:
    """A's request is told to come back in 200 s, longer than its reservation lasts (120 s
    and 65 s of slack). At 190 s send B of the same text to the same number finds it free and
    takes it; both wait out the account's Retry-After. Right before A's retry is written, A
    reserves its keys again, finds B holding the number, and does not write: the number gets
    the text once more, from B."""
    loop = VirtualLoop(World())
    written: list[tuple[float, list[str]]] = []

    def handler(request: HttpRequest) -> HttpResponse:
        phones = json.loads(request.body)["phone"]
        written.append((loop.time(), phones))
        if len(written) == 1:
            return HttpResponse(
                429, b'{"status": 429, "message": "slow down"}', {"retry-after": "200"}
            )
        return accept_all(request)

    async def main() -> tuple[Report, Report]:
        async with SmsClub(TOKEN, transport=MockTransport(handler), clock=LoopClock()) as sms:
            a = asyncio.ensure_future(sms.send("Sale", to=["380501234567"], sender="Shop"))
            await asyncio.sleep(190)
            b = await sms.send("Sale", to=["380501234567"], sender="Shop")
            return await a, b

    try:
        started = loop.time()
        a, b = loop.run_until_complete(main())
    finally:
        loop.close()
    assert [phones for _, phones in written] == [["380501234567"]] * 2
    assert 200 <= written[1][0] - started < 203
    assert (a.failed, a.accepted, b.accepted) == (1, 0, 1)
    assert "another send of the same text to this number holds it now" in str(a.outcomes[0])


class _Lapsing(MemoryWindow):
    """A store whose leases lapse (on a virtual loop's time), and whose calls first await
    ``reach`` (a store out of reach for a while, or slow on every call)."""

    instant = False
    leases_lapse = True

    def __init__(self, loop: VirtualLoop, reach: Callable[[], Awaitable[None]]) -> None:
        super().__init__(clock=LoopClock())
        self.loop, self.reach = loop, reach
        self.leases: dict[str, tuple[str, float]] = {}

    async def reserve(self, keys: Any, holder: str, indices: Any) -> list[Claim]:
        await self.reach()
        return await super().reserve(keys, holder, indices)

    async def hold(self, name: str, run: str, seconds: float) -> bool:
        await self.reach()
        held, now = self.leases.get(name), self.loop.time()
        if held is None or held[1] <= now or held[0] == run:
            self.leases[name] = (run, now + seconds)
            return True
        return False

    async def unhold(self, name: str, run: str) -> None:
        if self.leases.get(name, ("", 0.0))[0] == run:
            del self.leases[name]


def test_a_keyed_run_whose_lease_went_stale_while_renewing_its_keys_does_not_write() -> None:
    """The renewal of a request's keys is a trip to the store, which may hang longer than a
    keyed run's lease holds. Here the store is out of reach from 9 s to 30.2 s; the run's
    retry (after a 10 s Retry-After) renews its keys meanwhile, and another run of the same
    key takes the lapsed lease at 21 s. The retry is not written: the lease is checked after
    the renewal, and the run learns it was taken over."""
    loop = VirtualLoop(World())
    start = loop.time()
    cut = (start + 9.0, start + 30.2)

    async def reach() -> None:
        if cut[0] <= loop.time() < cut[1]:  # as Redis's patience: back once it is
            await asyncio.sleep(cut[1] - loop.time())

    window = _Lapsing(loop, reach)
    written: list[float] = []

    def handler(request: HttpRequest) -> HttpResponse:
        written.append(loop.time() - start)
        if len(written) == 1:
            return HttpResponse(429, b'{"status": 429, "message": "slow"}', {"retry-after": "10"})
        return accept_all(request)

    async def main() -> Report:
        async with SmsClub(
            TOKEN, transport=MockTransport(handler), clock=LoopClock(), window=window
        ) as sms:
            send = asyncio.ensure_future(
                sms.send("Sale", to=["380501234567"], sender="Shop", idempotency_key="order-1")
            )
            await asyncio.sleep(21)
            (name,) = window.leases
            window.leases[name] = ("another-run", loop.time() + 3600)
            return await send

    try:
        report = loop.run_until_complete(main())
    finally:
        loop.close()
    assert written == [0.0]
    assert [o.status for o in report.outcomes] == [Status.FAILED]
    assert report.error is not None and "took it over" in str(report.error)


def test_a_try_the_gateway_acted_on_late_holds_its_number_a_ttl_from_then() -> None:
    """A's try is written at 0 s, reaches the gateway only at 19 s (held up on the way) and
    is not answered within the 20 s read timeout. Its retry waits 150 s. Send B of the same
    text to the same number, on another account sharing the duplicate window, starts at
    130 s. A's reservation outlasts the TTL by the read timeout and 5 s (until 145 s), so B
    finds the number held, and it reaches the gateway no sooner than 120 s after A's try
    did. With 5 s of slack the key was free at 125 s, and B went 111 s after A."""
    loop = VirtualLoop(World())
    start = loop.time()
    processed: list[tuple[str, float]] = []

    async def held_up(request: HttpRequest) -> HttpResponse:
        await asyncio.sleep(19)
        processed.append(("A", loop.time() - start))
        await asyncio.sleep(1)
        raise TransportTimeoutError("no answer in time")

    def on_time(request: HttpRequest) -> HttpResponse:
        processed.append(("B", loop.time() - start))
        return accept_all(request)

    window = MemoryWindow(slack=25.0, clock=LoopClock())  # as the client makes its own

    async def main() -> tuple[Report, Report]:
        async with (
            SmsClub(
                TOKEN,
                transport=MockTransport(held_up),
                clock=LoopClock(),
                window=window,
                timeouts=Timeouts(read=20.0),
                retry=RetryPolicy(attempts=2, backoff=150.0, max_backoff=150.0),
            ) as first,
            SmsClub(
                TOKEN[::-1],
                transport=MockTransport(on_time),
                clock=LoopClock(),
                window=window,
                timeouts=Timeouts(read=20.0),
            ) as second,
        ):
            a = asyncio.ensure_future(first.send("Sale", to=["380501234567"], sender="Shop"))
            await asyncio.sleep(130)
            b = await second.send("Sale", to=["380501234567"], sender="Shop")
            return await a, b

    try:
        a, b = loop.run_until_complete(main())
    finally:
        loop.close()
    assert processed[0] == ("A", 19.0)
    assert all(later - 19.0 >= 120 for _, later in processed[1:]), processed
    assert [o.status for o in a.outcomes] == [Status.UNCERTAIN]
    # B goes once A's reservation ends, or finds A settled first (the back-off is jittered)
    assert [o.status for o in b.outcomes] in ([Status.ACCEPTED], [Status.SUPPRESSED])


@pytest.mark.parametrize(
    ("read", "guard"), [(60.0, 40.0), (20.0, 80.0), (5.0, 95.0), (100.0, None)]
)
def test_the_duplicate_guard_relied_on_leaves_room_for_a_repeat_held_up_on_the_way(
    read: float, guard: float | None
) -> None:
    """A repeat may reach the gateway as late as its writer waits for an answer: SMS Club's
    2 minutes are relied on less 20 s and the read timeout, or not at all."""
    sms = SmsClub(TOKEN, transport=MockTransport(accept_all), timeouts=Timeouts(read=read))
    assert sms.repeat_guard == guard


def test_a_window_whose_reservations_a_request_on_its_way_could_outlive_is_refused() -> None:
    """A request may reach the gateway as late as the read timeout after it was written: a
    shared window whose slack is shorter would let its reservation lapse first."""
    window = MemoryWindow(slack=10.0)
    with pytest.raises(ConfigurationError, match=r"slack \(10 s\) is shorter than the read"):
        SmsClub(TOKEN, transport=MockTransport(accept_all), window=window)
    with pytest.raises(ConfigurationError, match=r"give the window a slack of at least 10\.5 s"):
        SmsClub(
            TOKEN, transport=MockTransport(accept_all), window=window, timeouts=Timeouts(read=5.5)
        )
    SmsClub(TOKEN, transport=MockTransport(accept_all), window=window, timeouts=Timeouts(read=5.0))


def test_a_window_written_before_commit_took_extra_still_serves() -> None:
    """A user's window whose ``commit`` has no ``extra`` (written to the protocol before it):
    a send cancelled with a request on the wire still gives its recipient its outcome
    (uncertain) and commits it, a TTL from the commit."""
    loop = VirtualLoop(World())
    commits: list[tuple[Any, ...]] = []

    class Older(MemoryWindow):
        async def commit(  # type: ignore[override]
            self, keys: Any, holder: str, indices: Any
        ) -> None:
            commits.append((list(keys), holder, list(indices)))
            await super().commit(keys, holder, indices)

    async def hanging(request: HttpRequest) -> HttpResponse:
        await asyncio.sleep(30)
        return accept_all(request)

    outcomes: list[Outcome] = []

    async def main() -> None:
        window = Older(clock=LoopClock())
        async with SmsClub(
            TOKEN,
            transport=MockTransport(hanging),
            clock=LoopClock(),
            window=window,  # type: ignore[arg-type]
        ) as sms:
            task = asyncio.ensure_future(
                sms.send("hi", to=["380501234567"], sender="Shop", on_outcome=outcomes.append)
            )
            await asyncio.sleep(1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert [o.status for o in outcomes] == [Status.UNCERTAIN]
    assert len(commits) == 1


def test_a_state_factory_written_before_the_slack_was_given_still_serves() -> None:
    """A user's factory without ``window_slack`` builds its state as before; the client then
    checks the window it made."""

    def factory(
        *,
        provider: str,
        account: str,
        secret: bytes,
        limit: int,
        period: float,
        margin: float,
        window_ttl: float,
        clock: Any,
    ) -> Any:
        class State:
            limiter = SlidingWindowLimiter(limit, period, clock=clock)
            window = MemoryWindow(window_ttl, clock=clock)

            async def aclose(self) -> None:
                pass

        return State()

    sms = SmsClub(TOKEN, transport=MockTransport(accept_all), state=factory)  # type: ignore[arg-type]
    assert sms.window is not None and sms.window.slack == 65.0
    with pytest.raises(ConfigurationError, match="shorter than the read timeout"):
        SmsClub(
            TOKEN,
            transport=MockTransport(accept_all),
            state=factory,  # type: ignore[arg-type]
            timeouts=Timeouts(read=120.0),
        )


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_a_timeout_that_is_no_number_of_seconds_is_refused(bad: float) -> None:
    """Zero, negative, infinite or NaN: a ConfigurationError naming the timeout."""
    with pytest.raises(ConfigurationError, match="Timeouts: read must be a positive number"):
        Timeouts(read=bad)


async def test_a_ready_hook_kept_past_its_try_lets_nothing_be_written(clock: FakeClock) -> None:
    """A transport that keeps a try's ``ready`` hook and awaits it again in the next try is
    told ``NotWritten``: that try is over and its rate slot given back (the hook once acted
    on the next try's state, or on a closed slot)."""
    late: list[str] = []

    class Keeping:
        def __init__(self) -> None:
            self.hooks: list[Any] = []

        async def send(self, request: HttpRequest, ready: Any = None) -> HttpResponse:
            self.hooks.append(ready)
            if len(self.hooks) == 1:
                await ready()
                raise ConnectError("refused")  # nothing was processed: tried again
            try:
                await self.hooks[0]()
            except NotWritten as e:
                late.append(e.reason)
            await ready()
            return accept_all(request)

        async def aclose(self) -> None:
            pass

    async with SmsClub(TOKEN, transport=Keeping(), clock=clock) as sms:
        report = await sms.send("hi", to=["380501234567"], sender="Shop")
    assert (report.accepted, report.requests) == (1, 2)
    assert late == ["not sent: the try this hook was given for has ended"]


class _Waiting:
    """A transport that honours a request's own time limit: the gateway processes the first
    request and its answer never comes (the writer waits its read timeout, on the fake
    clock); when each try was made and its time limit are kept."""

    time_limits = True

    def __init__(
        self, gateway: GuardedGateway, clock: FakeClock, honours: bool = True, late: float = 0.0
    ) -> None:
        self.gateway, self.clock, self.time_limits, self.late = gateway, clock, honours, late
        self.tries: list[tuple[float, float | None]] = []  # when called, its time limit
        self.written = 0

    async def send(self, request: HttpRequest, ready: Any = None) -> HttpResponse:
        self.tries.append((self.clock.now(), request.time_limit))
        if len(self.tries) > 1:
            await self.clock.sleep(self.late)  # its turn comes late (its own timer too)
        if ready is not None:
            await ready()
        self.written += 1
        answer = self.gateway(request)
        if len(self.tries) == 1:
            await self.clock.sleep(60.0)
            raise TransportTimeoutError("no answer in time")
        return answer

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize("honours", [True, False])
async def test_a_timed_out_request_is_repeated_awaited_what_is_left_of_the_guard(
    clock: FakeClock, honours: bool
) -> None:
    """SMS Club, the default 60 s read timeout: the first request went and its answer never
    came. A repeat written 60-odd seconds after it would be refused within the gateway's
    guard only if it reaches the gateway within 100 s of the first (120 s less the margin);
    a held-up repeat may arrive as late as its writer waits. A transport that waits as long
    as it is told gets the repeat with a read timeout of what is left: the gateway refuses
    it (453), so the recipients went, accepted. A transport that always waits 60 s does not
    get the repeat (40 s of the guard would be needed with 60 s of waiting): uncertain."""
    numbers = list(ua_numbers(2))
    gateway = GuardedGateway(HttpResponse(200, b"{}"))
    transport = _Waiting(gateway, clock, honours)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        report = await sms.send("hi", to=numbers, sender="Shop")
    assert gateway.sent == numbers  # once each, by the first request
    if not honours:
        assert (report.uncertain, len(transport.tries)) == (2, 1)
        assert report.outcomes[0].reason == "no answer in time"
        return
    assert report.accepted == 2
    (first, none), (repeat, read) = transport.tries[0], transport.tries[-1]
    assert none is None and read is not None
    assert repeat - first >= 60 and read >= 4 and repeat - first + read <= 100


@pytest.mark.parametrize(
    ("read", "guard", "limited"),
    [(60, 96.0, True), (99, 96.0, True), (100, None, False), (180, None, False)],
)
def test_nothing_relies_on_the_guard_where_a_first_try_may_be_held_up_past_it(
    read: float, guard: float | None, limited: bool
) -> None:
    """A first try may reach the gateway as late as its writer waits: with a read timeout of
    100 s or more (SMS Club's 2-minute guard less its margin), a repeat could reach the
    gateway first, and that long before the first try, where no guard refuses either (a
    journal's resume once repeated such a batch: the number got the text twice)."""
    sms = SmsClub(TOKEN, timeouts=Timeouts(read=read, total=read + 10))
    assert sms.repeat_guard == guard
    assert (sms._stretch(sms._window) is not None) is limited


async def test_a_slow_announcement_does_not_let_the_reservation_lapse_before_the_write() -> None:
    """The reservation is renewed right before the write, after the observer's ``before``
    (the journal's intent) however long it took: a 10 s ``before`` then a request held up
    59 s on its way, whose commit the store lost, kept the number held only 116 s past the
    gateway's act (another send of the text then went within the TTL). Now 120 s or more."""
    clock = FakeClock(1000.0)
    arrivals: list[float] = []

    class LostCommit(MemoryWindow):
        async def commit(self, *args: Any, **kwargs: Any) -> None:
            raise StateBackendError("the store is out of reach (simulated)")

    class HeldUp:
        async def send(self, request: HttpRequest, ready: Any = None) -> HttpResponse:
            if ready is not None:
                await ready()
            if not arrivals:
                arrivals.append(clock.now() + 59.0)  # reaches the gateway 59 s on
                await clock.sleep(60.0)
                raise TransportTimeoutError("no answer in time")
            arrivals.append(clock.now())
            return accept_all(request)

        async def aclose(self) -> None:
            pass

    class SlowBefore:
        async def before(self, batch: Batch) -> None:
            await clock.sleep(10.0)

        async def unsent(self, batch: Batch) -> None:
            pass

        async def after(self, batch: Batch, statuses: Any, details: Any) -> None:
            pass

    window = LostCommit(120.0, slack=65.0, clock=clock)
    to = ["380500000001"]
    async with SmsClub(
        TOKEN, transport=HeldUp(), clock=clock, window=window, repeat_guard=False
    ) as sms:
        await sms.send("hi", to=to, sender="Shop", observer=SlowBefore())
        while len(arrivals) < 2:
            clock.advance(0.5)
            await sms.send("hi", to=to, sender="Shop", keep="none")
    assert arrivals[1] - arrivals[0] >= 120


def test_a_store_too_slow_to_keep_the_keys_fresh_ends_the_try_unsent() -> None:
    """A window's store that takes 12 s a call, with a lease that lapses: the hook renews
    the keys, waits for the lease to be fresh, renews again after that wait (the renewal must
    be fresh at the write), and the lease has gone stale again meanwhile. It once went round
    for ever; now it gives up after a few rounds: the recipient fails, not sent."""
    loop = VirtualLoop(World())
    written: list[float] = []

    async def slow() -> None:
        await asyncio.sleep(12)

    def handler(request: HttpRequest) -> HttpResponse:
        written.append(loop.time())
        return accept_all(request)

    async def main() -> Report:
        async with SmsClub(
            TOKEN,
            transport=MockTransport(handler),
            clock=LoopClock(),
            window=_Lapsing(loop, slow),
        ) as sms:
            return await asyncio.wait_for(
                sms.send("Sale", to=["380501234567"], sender="Shop", idempotency_key="k1"),
                timeout=3600,
            )

    try:
        report = loop.run_until_complete(main())
    finally:
        loop.close()
    assert written == []
    assert [(o.status, o.reason) for o in report.outcomes] == [
        (
            Status.FAILED,
            "not sent: the duplicate window's store answered too slowly to keep "
            "the reservation fresh up to the write",
        )
    ]


async def test_a_repeat_whose_turn_comes_after_its_time_limit_is_not_written(
    clock: FakeClock,
) -> None:
    """The repeat's time limit is checked on the client's own clock at the write too: a
    transport whose timer runs late (a loop blocked by a hook, say) does not write a repeat
    whose limit has run out. The recipients stay uncertain: the first try may have gone."""
    numbers = list(ua_numbers(2))
    gateway = GuardedGateway(HttpResponse(200, b"{}"))
    transport = _Waiting(gateway, clock, late=45.0)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        report = await sms.send("hi", to=numbers, sender="Shop")
    assert (report.uncertain, transport.written) == (2, 1)
    assert "duplicate guard has run out" in (report.outcomes[0].reason or "")


@pytest.mark.parametrize("indexed", [False, True])
async def test_a_send_cancelled_while_its_async_input_waits_settles_what_it_had_read(
    clock: FakeClock, indexed: bool
) -> None:
    """An async input gives 50 numbers and one that can never go, then waits: the send holds
    them until a request's worth has come. Cancelled then, the 51 got no outcome at all
    (read, and lost: the chunk being filled was nobody's to settle). Now each ends failed,
    not sent, and the one that could never go rejected with its reason."""
    numbers = list(ua_numbers(50))
    all_read = asyncio.Event()

    async def source() -> AsyncIterator[Any]:
        for i, number in enumerate(numbers):
            yield (1000 + i, number) if indexed else number
        yield (1000, numbers[0]) if indexed else "12"  # this one could never go
        all_read.set()
        await asyncio.Event().wait()  # nothing more, for now

    outcomes: list[Outcome] = []
    transport = MockTransport(accept_all)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        send = asyncio.ensure_future(
            sms.send("hi", to=source(), sender="Shop", indexed=indexed, on_outcome=outcomes.append)
        )
        await all_read.wait()
        send.cancel()
        with pytest.raises(asyncio.CancelledError):
            await send
    assert transport.requests == []
    never = outcomes.pop(next(n for n, o in enumerate(outcomes) if o.status is Status.REJECTED))
    assert never.reason == (
        "its index 1000 repeats an earlier entry's in this send"
        if indexed
        else "wrong length for +1: 1 digits after the country code, need 10"
    )
    assert sorted(o.phone for o in outcomes) == numbers
    assert {(o.status, o.reason) for o in outcomes} == {
        (Status.FAILED, "not sent: the send was cancelled")
    }
    first = 1000 if indexed else 0
    assert sorted(o.index for o in outcomes) == list(range(first, first + 50))


async def test_a_stop_ends_the_reading_of_an_async_input_at_the_next_entry(
    clock: FakeClock,
) -> None:
    """A stop was looked for once a request's worth had been read: an async input that
    gives numbers as they come (a queue) was read on for up to 99 more after the stop, each
    then failed. Now the send reads the entry it was waiting for, and no more."""
    numbers = list(ua_numbers(55))
    read: list[str] = []
    five_read, go_on = asyncio.Event(), asyncio.Event()

    async def source() -> AsyncIterator[str]:
        for n, number in enumerate(numbers):
            if n == 5:
                five_read.set()
                await go_on.wait()
            read.append(number)
            yield number

    stop = anyio.Event()
    transport = MockTransport(accept_all)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        send = asyncio.ensure_future(sms.send("hi", to=source(), sender="Shop", stop=stop))
        await five_read.wait()
        stop.set()
        go_on.set()
        report = await send
    assert read == numbers[:6]
    assert report.stopped and (report.total, report.failed) == (6, 6)
    assert transport.requests == []


async def test_a_send_cancelled_again_while_it_settles_what_it_read_settles_all_of_it(
    clock: FakeClock,
) -> None:
    """A cancel shield holds against cancel scopes, not against ``task.cancel()``: a caller
    whose code cancelled the send's task a second time while the send settled what it had
    read (a timeout inside a task group, say) stopped the settling, and the rest of what was
    read got no outcome (1 of 50 here). Now the settling ends whatever the caller does."""
    numbers = list(ua_numbers(50))
    all_read = asyncio.Event()
    outcomes: list[Outcome] = []

    async def note(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if len(outcomes) == 1:
            send.cancel()  # again
        await asyncio.sleep(0)

    transport = MockTransport(accept_all)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        waiting = then_waiting(numbers, all_read)
        send = asyncio.ensure_future(sms.send("hi", to=waiting, sender="Shop", on_outcome=note))
        await all_read.wait()
        send.cancel()
        with pytest.raises(asyncio.CancelledError):
            await send
    assert sorted(o.phone for o in outcomes) == numbers
    assert {(o.status, o.reason) for o in outcomes} == {
        (Status.FAILED, "not sent: the send was cancelled")
    }


async def test_a_stop_ends_a_wait_on_an_async_input_that_gives_nothing_more(
    clock: FakeClock,
) -> None:
    """An async input gives 30 numbers and then waits for ever (a queue nobody fills): the
    send holds them until a request's worth has come. A stop took effect only when the input
    gave its next entry, so the send never ended. Now the stop ends the wait: the 30 read end
    failed, not sent, and the send returns."""
    numbers = list(ua_numbers(30))
    all_read = asyncio.Event()
    closed: list[bool] = []

    async def source() -> AsyncIterator[str]:
        try:
            for number in numbers:
                yield number
            all_read.set()
            await asyncio.Event().wait()
            yield "380509999999"  # never read
        except BaseException:
            closed.append(True)
            raise

    stop = anyio.Event()
    transport = MockTransport(accept_all)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        send = asyncio.ensure_future(sms.send("hi", to=source(), sender="Shop", stop=stop))
        await all_read.wait()
        stop.set()
        with anyio.fail_after(5):
            report = await send
    assert report.stopped and (report.total, report.failed) == (30, 30)
    assert sorted(o.phone for o in report.outcomes) == numbers
    assert {o.reason for o in report.outcomes} == {"not sent: the send was stopped"}
    assert transport.requests == [] and closed == [True]


async def test_a_resumed_entry_is_not_sent_again_where_the_dead_run_sent_its_number_for_another(
    clock: FakeClock,
) -> None:
    """The same number at rows 0 and 20 of a campaign. The dead run's try of row 0 may have
    gone; its reservation lapsed while that try waited to be repeated, row 20 took the key
    and went, and the run died. The resumed run repeated row 0 under its own id, taking the
    key it found sent for its own earlier try: had that try not gone, the number got the
    text twice, a minute apart (the simulator's seed 219952). Now row 0 ends uncertain, and
    is not sent again."""
    number = "79160000000"
    report, transport = await _resumed(
        clock, [(0, number)], indexed=True, earlier=[((20, number), True)], maybe_sent={0: None}
    )
    assert transport.requests == []
    ((index, status, reason),) = [(o.index, o.status, o.reason) for o in report.outcomes]
    assert (index, status) == (0, Status.UNCERTAIN)
    assert "sent the same text to this number for another entry" in (reason or "")


async def test_two_resumed_rows_of_one_number_are_not_both_sent_again(clock: FakeClock) -> None:
    """The same number at rows 0 and 20, both in flight when a run died: the resumed run
    sends row 0 again under its own id, and row 20 then found the key held and took it as
    its own earlier try's, so both went again. Now the row that finds the key sent for the
    other one ends uncertain, and only one request carries the number."""
    number = "79160000000"

    def gateway(request: HttpRequest) -> HttpResponse:
        phones = [p for m in json.loads(request.body)["message"] for p in m["phones"]]
        info = [{"state": "send", "id_sms": n} for n, _ in enumerate(phones)]
        return HttpResponse(200, json.dumps({"information": info}).encode())

    transport = MockTransport(gateway)
    async with Webcom(
        TOKEN, base_url="http://127.0.0.1:9", transport=transport, clock=clock, batch_size=1
    ) as w:
        to: Any = [(0, number), (20, number)]
        report = await w.send(
            "hi",
            to=to,
            sender="Shop",
            indexed=True,
            idempotency_key=b"campaign",
            earlier=(),
            maybe_sent={0: None, 20: None},
        )
    assert len(transport.requests) == 1
    assert sorted((o.index, o.status) for o in report.outcomes) == [
        (0, Status.ACCEPTED),
        (20, Status.UNCERTAIN),
    ]


@pytest.mark.parametrize("in_flight", [0, 20])
async def test_a_resumed_row_whose_number_the_dead_run_sent_for_another_row_in_either_order(
    clock: FakeClock, in_flight: int
) -> None:
    """A journal's resume gives the rows that were in flight in ``earlier`` as sent too (the
    window must hold them): rows 0 and 20 of one number, one accepted, the other in flight.
    The key was noted for the last row given, so with row 20 in flight it counted as row
    20's own, and row 20 went again. A key given for two rows is now nobody's own."""
    number = "79160000000"
    report, transport = await _resumed(
        clock,
        [(in_flight, number)],
        indexed=True,
        earlier=[((0, number), True), ((20, number), True)],
        maybe_sent={in_flight: None},
    )
    assert transport.requests == []
    assert [(o.index, o.status) for o in report.outcomes] == [(in_flight, Status.UNCERTAIN)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"earlier": 5}, "earlier= takes (entry, sent) pairs, got int"),
        ({"earlier": [1, 2]}, "earlier= takes ((index, entry), sent) pairs"),
        ({"earlier": [((-1, "79160000000"), True)]}, "an index is not a whole number"),
        ({"earlier": [(("7", "79160000000"), True)]}, "an index is not a whole number"),
        ({"earlier": [((1, "79160000000"), "yes")]}, "not True or False"),
        ({"maybe_sent": {"0": None}}, "maybe_sent= maps indices"),
        ({"maybe_sent": {0: float("nan")}}, "maybe_sent= maps indices"),
        ({"maybe_sent": {0: 10**400}}, "maybe_sent= maps indices"),
    ],
)
async def test_a_resume_told_an_earlier_run_badly_is_refused_before_anything_goes(
    clock: FakeClock, options: dict[str, Any], message: str
) -> None:
    """earlier= and maybe_sent= (what a journal tells a resumed send) that are not what they
    must be: a typed error naming them, and no request (it was a traceback from inside the
    send, or a verdict read off junk)."""
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        await _resumed(clock, [(0, "79160000000")], indexed=True, **options)


async def test_a_resume_without_indices_does_not_send_a_number_its_dead_run_sent(
    clock: FakeClock,
) -> None:
    """Without indices, ``earlier`` cannot say which row each entry was: row 0 (in flight)
    took the key given for either as its own and went again, though the dead run had sent
    row 1 the same text. Any key it gives is nobody's own now: row 0 ends uncertain."""
    number = "79160000000"
    report, transport = await _resumed(
        clock, [number, number], earlier=[(number, True), (number, True)], maybe_sent={0: None}
    )
    assert transport.requests == []
    assert sorted((o.index, o.status) for o in report.outcomes) == [
        (0, Status.UNCERTAIN),
        (1, Status.SUPPRESSED),
    ]


async def _resumed(clock: FakeClock, to: Any, **options: Any) -> tuple[Report, MockTransport]:
    """A Webcom send run as a journal resumes one (``earlier=``, ``maybe_sent=``...), to a
    gateway that would refuse it all; its report and what was written."""
    transport = MockTransport(lambda request: HttpResponse(500, b""))
    async with Webcom(TOKEN, base_url="http://127.0.0.1:9", transport=transport, clock=clock) as w:
        report = await w.send("hi", to=to, sender="Shop", idempotency_key=b"campaign", **options)
    return report, transport


async def test_a_failed_commit_does_not_skip_the_release_of_the_same_request() -> None:
    """One request, one number accepted and one refused, and the store does not take the
    commit: the refused number's release is still tried (a store out of reach keeps it to do
    later); it was skipped, and its reservation held the number until it lapsed."""
    released: list[list[int]] = []

    class LostCommit(MemoryWindow):
        async def commit(self, *args: Any, **kwargs: Any) -> None:
            raise StateBackendError("the store is out of reach (simulated)")

        async def release(self, keys: Any, holder: str, indices: Any) -> None:
            released.append(list(indices))
            await super().release(keys, holder, indices)

    def one_refused(request: HttpRequest) -> HttpResponse:
        phones = json.loads(request.body)["phone"]
        info = {f"id-{p}": p for p in phones[:1]}
        refused = dict.fromkeys(phones[1:], "This number is in the black list")
        body = {"success_request": {"info": info, "add_info": refused}}
        return HttpResponse(200, json.dumps(body).encode())

    window = LostCommit(120.0)
    async with SmsClub(TOKEN, transport=MockTransport(one_refused), window=window) as sms:
        report = await sms.send("hi", to=["380500000001", "380500000002"], sender="Shop")
    assert (report.accepted, report.rejected) == (1, 1)
    assert released == [[1]]


class _Freezing(MemoryWindow):
    """A shared store (its calls suspend) that, once ``frozen``, never answers an update."""

    instant = False

    def __init__(self) -> None:
        super().__init__(clock=LoopClock())
        self.frozen = False

    async def commit(self, *args: Any, **kwargs: Any) -> None:
        if self.frozen:
            await asyncio.sleep(3600)
        await super().commit(*args, **kwargs)

    async def release(self, *args: Any, **kwargs: Any) -> None:
        if self.frozen:
            await asyncio.sleep(3600)
        await super().release(*args, **kwargs)


def test_a_send_cancelled_with_its_store_frozen_settles_its_requests_in_flight_together() -> None:
    """Eight requests on the wire (the gateway answers in 0.4 s) when the store freezes and
    the send is cancelled: each ends uncertain, and the send returns after the stopping
    send's one wait for its store (3 s), not one such wait for each request (24 s, virtual
    time: Redis frozen under a timeout round a web request's send held it that long)."""
    loop = VirtualLoop(World())
    window = _Freezing()
    written: list[str] = []
    all_on_the_wire = asyncio.Event()

    async def slow(request: HttpRequest) -> HttpResponse:
        written.extend(json.loads(request.body)["phone"])
        if len(written) == 80:
            all_on_the_wire.set()
        await asyncio.sleep(0.4)
        return accept_all(request)

    async def main() -> tuple[list[Outcome], float]:
        outcomes: list[Outcome] = []
        async with SmsClub(
            TOKEN,
            transport=MockTransport(slow),
            clock=LoopClock(),
            window=window,
            limiter=SlidingWindowLimiter(1000, clock=LoopClock()),
            concurrency=8,
            batch_size=10,
        ) as sms:
            send = asyncio.ensure_future(
                sms.send("Sale", to=ua_numbers(80), sender="Shop", on_outcome=outcomes.append)
            )
            await all_on_the_wire.wait()
            window.frozen = True
            send.cancel()
            cancelled = loop.time()
            with contextlib.suppress(asyncio.CancelledError):
                await send
            return outcomes, loop.time() - cancelled

    try:
        outcomes, took = loop.run_until_complete(main())
    finally:
        loop.close()
    assert sorted(o.index for o in outcomes) == list(range(80))
    assert {o.status for o in outcomes} == {Status.UNCERTAIN}
    assert 3.0 <= took < 3.5
