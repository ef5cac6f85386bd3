"""The blocking clients of ``smsbridge.sync``, called from plain functions and threads, against
the fakes over loopback: one shared loop thread, a shared limiter and window across threads,
typed refusals (from an event loop, after ``close``), Ctrl-C, exit and fork."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

import smsbridge
from smsbridge import (
    Balance,
    ConfigurationError,
    DeliveryState,
    InvalidInputError,
    MessageStatus,
    Outcome,
    Report,
    Status,
)
from smsbridge import sync as blocking
from smsbridge.sync import SmsClub, SmsPlus, Webcom
from smsbridge.testing import FakeProcess, FakeSmsClub, FakeSmsPlus, FakeWebcom

from .helpers import TOKEN, ThreadedFake, clean_env, ua_numbers

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake() -> Iterator[FakeSmsClub]:
    """A fake SMS Club served from a thread of its own, with no rate limit of its own."""
    with ThreadedFake(FakeSmsClub(tokens=[TOKEN], rate_limit=None)) as served:
        yield served


@contextlib.contextmanager
def fake_process(*args: str) -> Iterator[tuple[FakeProcess, BlockingPortal]]:
    """A fake gateway in a process of its own, driven from plain code through a portal."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(FakeProcess(*args)) as served,
    ):
        yield served, portal


def ids_by_phone(report: Report) -> dict[str, str | None]:
    return {o.phone: o.message_id for o in report.outcomes}


def run_python(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` from the project's root, without any SMSBRIDGE_ setting."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def test_a_plain_function_sends_250_numbers_each_once_with_the_reported_ids(
    fake: FakeSmsClub,
) -> None:
    """No event loop in sight: a generator of 250 numbers, three requests, each number in the
    gateway's record once, under the id the report gives it."""
    with SmsClub(TOKEN, base_url=fake.url, rate=1000) as sms:
        report = sms.send("Sale today", to=ua_numbers(250), sender="Shop")
    assert report.counts().accepted == 250
    assert report.requests == 3
    assert fake.sent_counts() == dict.fromkeys(ua_numbers(250), 1)
    assert {m.phone: m.id for m in fake.sent} == ids_by_phone(report)


@pytest.mark.realtime
def test_eight_threads_share_one_client_its_limiter_and_every_number_goes_once() -> None:
    """Eight threads send different lists on one client at once, against a gateway in its own
    process that answers 429 past 8 requests a second: 16 requests, all in, none refused,
    its busiest second holding 8, so the eight sends shared one limiter."""
    with fake_process("smsclub", "--token", TOKEN, "--rate-limit", "8") as (served, portal):
        lists = [list(ua_numbers(150, start=1000 * n)) for n in range(8)]
        together = threading.Barrier(8)
        with SmsClub(TOKEN, base_url=served.url, rate=8) as sms:

            def task(phones: list[str]) -> Report:
                together.wait(timeout=10)
                return sms.send("Sale today", to=phones, sender="Shop")

            with ThreadPoolExecutor(max_workers=8) as pool:
                reports = list(pool.map(task, lists))
        record = portal.call(served.record)
    assert [r.accepted for r in reports] == [150] * 8
    assert sum(r.requests for r in reports) == 16
    assert record.sent_counts() == dict.fromkeys([p for phones in lists for p in phones], 1)
    assert {m.phone: m.id for m in record.sent} == {
        phone: id_ for r in reports for phone, id_ in ids_by_phone(r).items()
    }
    assert record.count(429) == 0
    assert record.busiest_window(1.0) == 8


def test_the_same_text_to_the_same_number_from_two_threads_goes_once(fake: FakeSmsClub) -> None:
    """The duplicate window is the client's, so it holds across threads."""
    together = threading.Barrier(2)
    with SmsClub(TOKEN, base_url=fake.url) as sms:

        def task(_: int) -> Status:
            together.wait(timeout=10)
            report = sms.send("Your code is 1234", to=["380501234567"], sender="Shop")
            return report.outcomes[0].status

        with ThreadPoolExecutor(max_workers=2) as pool:
            statuses = sorted(pool.map(task, range(2)))
    assert statuses == [Status.ACCEPTED, Status.SUPPRESSED]
    assert fake.sent_counts() == {"380501234567": 1}


def test_status_balance_and_senders_block_and_return_the_same_structs(fake: FakeSmsClub) -> None:
    with SmsClub(TOKEN, base_url=fake.url) as sms:
        report = sms.send("Hi", to=["380501234567", "380501234568"], sender="Shop")
        ids = report.message_ids()
        statuses = sms.status(i for i in ids)  # a generator: read in this thread
        assert [s.message_id for s in statuses] == ids
        assert {s.state for s in statuses} == {DeliveryState.ENROUTE}
        assert sms.balance() == Balance(money=Decimal("1000.0000"), currency="UAH")
        assert sms.senders() == ["Shop"]


def test_the_smsplus_and_webcom_twins() -> None:
    smsplus = FakeSmsPlus(tokens=[TOKEN], templates={3: "Hi {1}, order {2}"}, rate_limit=None)
    with ThreadedFake(smsplus), SmsPlus(TOKEN, base_url=smsplus.url) as sms:
        assert [t.id for t in sms.templates()] == [3]
        report = sms.send_template(3, sender="Shop", to=[("994501234567", ("Aysel", "A-1"))])
        assert report.accepted == 1
        assert [m.text for m in smsplus.sent] == ["Hi Aysel, order A-1"]
    webcom = FakeWebcom(tokens=[TOKEN])
    with ThreadedFake(webcom), Webcom(TOKEN, base_url=webcom.url) as sms:
        report = sms.send_personal(
            [("380501234567", "One"), ("380501234568", "Two")], sender="Shop"
        )
        assert report.accepted == 2
        assert [s.message_id for s in sms.status(report.message_ids())] == report.message_ids()
        assert isinstance(sms.balance(), Balance)


async def test_a_call_from_a_running_event_loop_raises_instead_of_blocking_it(
    fake: FakeSmsClub,
) -> None:
    sms = SmsClub(TOKEN, base_url=fake.url)
    with pytest.raises(ConfigurationError, match=r"running event loop: .*smsbridge.SmsClub"):
        sms.send("Hi", to=["380501234567"], sender="Shop")
    with pytest.raises(ConfigurationError, match="running event loop"):
        sms.balance()
    with pytest.raises(ConfigurationError, match="running event loop"), sms:
        pass
    assert fake.requests == []
    assert repr(sms) == "smsbridge.sync.SmsClub(not opened yet)"


def test_a_call_from_a_callback_on_the_loop_thread_raises_too(fake: FakeSmsClub) -> None:
    """A callback runs on the loop: a blocking call there would wait for itself forever."""
    with SmsClub(TOKEN, base_url=fake.url) as sms:

        def note(outcome: Outcome) -> None:
            sms.balance()

        with pytest.raises(ConfigurationError, match="running event loop"):
            sms.send("Hi", to=["380501234567"], sender="Shop", on_outcome=note)
        assert sms.balance().currency == "UAH"  # and the client still works


def test_after_close_a_call_raises_until_with_opens_it_again(fake: FakeSmsClub) -> None:
    sms = SmsClub(TOKEN, base_url=fake.url)
    assert sms.send("Hi", to="380501234567", sender="Shop").accepted == 1  # opens it
    sms.close()
    sms.close()
    with pytest.raises(ConfigurationError, match=r"SmsClub is closed"):
        sms.send("Hi", to="380501234568", sender="Shop")
    with pytest.raises(ConfigurationError, match=r"SmsClub is closed"):
        sms.balance()
    assert repr(sms) == "smsbridge.sync.SmsClub(closed)"
    with sms:
        assert sms.send("Hi", to="380501234568", sender="Shop").accepted == 1
    assert len(fake.sent) == 2


def test_arguments_are_checked_at_the_first_call_and_stop_is_refused(
    fake: FakeSmsClub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMSBRIDGE_SMSCLUB_TOKEN", raising=False)
    sms = SmsClub(base_url=fake.url)  # nothing starts, nothing is read yet
    with pytest.raises(ConfigurationError, match="no SMS Club credentials"):
        sms.balance()
    with (
        SmsClub(TOKEN, base_url=fake.url) as sms,
        pytest.raises(InvalidInputError, match="interrupt the call instead"),
    ):
        sms.send("Hi", to="380501234567", sender="Shop", stop=object())  # type: ignore[arg-type]
    assert fake.requests == []


def test_ctrl_c_during_a_send_stops_it_and_nothing_more_is_sent(fake: FakeSmsClub) -> None:
    """SIGINT reaches the waiting thread after the first outcome: the send stops (the 5
    requests the limiter lets start at once at most, of 30), winds down, and only then does
    KeyboardInterrupt propagate, with the counts as a note; the client goes on working."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip(
            "Python delivers SIGINT to the main thread only, and this runner runs tests in another"
        )
    main = threading.main_thread().ident
    assert main is not None
    outcomes: list[Outcome] = []

    def note(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if len(outcomes) == 1:
            signal.pthread_kill(main, signal.SIGINT)

    # Python's own Ctrl-C, whatever an earlier test on this worker left installed
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    with SmsClub(TOKEN, base_url=fake.url, batch_size=1, concurrency=1, rate=5) as sms:
        try:
            with pytest.raises(KeyboardInterrupt) as interrupted:
                sms.send("Sale today", to=list(ua_numbers(30)), sender="Shop", on_outcome=note)
        finally:
            signal.signal(signal.SIGINT, previous)
        sent = len(fake.sent)
        assert 1 <= sent <= 5
        assert len(fake.requests) == sent
        accepted = [o for o in outcomes if o.status is Status.ACCEPTED]
        assert len(accepted) == sent
        assert {o.status for o in outcomes} <= {Status.ACCEPTED, Status.FAILED}
        (note_,) = interrupted.value.__notes__
        assert note_.startswith(f"smsbridge: the send was stopped: Counts(accepted={sent}, ")
        assert sms.balance().currency == "UAH"


def printed(script: str) -> list[str]:
    """The lines ``python -c script`` printed; it must end well."""
    result = run_python("-c", script)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_a_client_left_open_is_closed_at_exit_without_a_warning() -> None:
    """A script leaves its client open: at exit (warnings as errors) nothing is printed to
    stderr, the client is closed and the loop thread is gone."""
    script = """
import atexit, threading

def after():  # registered before smsbridge.sync's own: runs after it
    print(sorted(t.name for t in threading.enumerate()), "closed" in repr(sms._client))

atexit.register(after)

from smsbridge.sync import SmsClub
from smsbridge.testing import FakeSmsClub
from tests.helpers import TOKEN, ThreadedFake

fake = ThreadedFake(FakeSmsClub(tokens=[TOKEN], rate_limit=None))
with fake:
    sms = SmsClub(TOKEN, base_url=fake.fake.url)
    print(sms.send("Hi", to=["380501234567"], sender="Shop").accepted)
    print("smsbridge-sync" in {t.name for t in threading.enumerate()})
"""
    result = run_python("-W", "error", "-c", script)
    assert result.stderr == ""
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "1",
        "True",
        "['MainThread'] True",
    ]


def test_a_callback_raising_systemexit_ends_its_call_and_not_the_loop() -> None:
    """``sys.exit(3)`` in ``on_outcome`` ends that call with SystemExit(3) itself, once its
    recipients have their outcomes (it came out as an exception group, and ended the loop
    every blocking client of the process runs on). Where one still ends the loop (an event
    hook's, raised inside the send's machinery), a call another thread was waiting on ends
    with a SmsBridgeError, not never, and the next calls of every client run on a new loop
    (before, every blocking call of the process failed from then on)."""
    script = """
import sys, threading, time
from smsbridge import SmsBridgeError
from smsbridge.sync import SmsClub
from smsbridge.testing import FakeSmsClub
from tests.helpers import TOKEN, ThreadedFake

seen = []

def leave(outcome):
    seen.append(outcome.status.value)
    sys.exit(3)

def hook(event):
    if type(event).__name__ == "RequestSent":
        raise SystemExit(4)

with ThreadedFake(FakeSmsClub(tokens=[TOKEN], rate_limit=None)) as fake:
    sms = SmsClub(TOKEN, base_url=fake.url)
    other = SmsClub(TOKEN, base_url=fake.url)
    try:
        sms.send("One", to=["380501234567", "380501234566"], sender="Shop", on_outcome=leave)
    except SystemExit as e:
        print("first", e.code, seen)
    loop = sms._on
    print("same loop", other.send("Hi", to="380501234560", sender="Shop").accepted, sms._on is loop)
    sent = other.send("Hi", to="380501234561", sender="Shop")
    waited = []

    def follow():
        try:
            list(other.track(sent.message_ids(), every=60, deadline=120))
            waited.append("done")
        except SmsBridgeError as e:
            waited.append(e.maybe_processed)

    follower = threading.Thread(target=follow)
    follower.start()
    time.sleep(0.5)
    watched = SmsClub(TOKEN, base_url=fake.url, on_event=hook)
    try:
        watched.send("Two", to="380501234568", sender="Shop")
    except BaseException as e:
        print("watched", "SystemExit" in repr(e))
    follower.join(10)
    print("other", waited, follower.is_alive())
    other.close()
    print("again", sms.send("Three", to="380501234569", sender="Shop").accepted)
"""
    assert printed(script) == [
        "first 3 ['accepted', 'accepted']",
        "same loop 1 True",
        "watched True",
        "other [True] False",
        "again 1",
    ]


def test_a_client_used_before_a_fork_opens_again_in_the_child() -> None:
    """The child of a fork has no loop thread: its client opens again on a loop of its own
    instead of waiting forever on the parent's (a prefork worker's child, say)."""
    script = """
import os
from smsbridge.sync import SmsClub
from smsbridge.testing import FakeSmsClub
from tests.helpers import TOKEN, ThreadedFake

with ThreadedFake(FakeSmsClub(tokens=[TOKEN], rate_limit=None)) as fake:
    sms = SmsClub(TOKEN, base_url=fake.url)
    print("parent", sms.send("One", to="380501234567", sender="Shop").accepted, flush=True)
    child = os.fork()
    if child == 0:
        print("child", sms.send("Two", to="380501234568", sender="Shop").accepted, flush=True)
        sms.close()
        os._exit(0)
    os.waitpid(child, 0)
    print("parent", sms.send("Three", to="380501234569", sender="Shop").accepted)
    print(sorted(m.text for m in fake.sent))
"""
    assert printed(script) == [
        "parent 1",
        "child 1",
        "parent 1",
        "['One', 'Three', 'Two']",
    ]


def test_a_client_closed_first_thing_in_a_forked_child_returns() -> None:
    """A child whose first call is ``close`` (a worker's shutdown hook) closes nothing of the
    parent's and returns; so does a tracking begun in the parent, stepped in the child. Both
    waited forever on the parent's loop, which no thread runs in the child."""
    script = """
import os, signal
from smsbridge import ConfigurationError
from smsbridge.sync import SmsClub
from smsbridge.testing import FakeSmsClub
from tests.helpers import TOKEN, ThreadedFake

with ThreadedFake(FakeSmsClub(tokens=[TOKEN], rate_limit=None)) as fake:
    sms = SmsClub(TOKEN, base_url=fake.url)
    report = sms.send("One", to="380501234567", sender="Shop")
    tracking = sms.track(report.message_ids(), deadline=30)
    child = os.fork()
    if child == 0:
        signal.alarm(10)
        sms.close()
        try:
            next(tracking)
        except ConfigurationError as e:
            print("child:", e, flush=True)
        tracking.close()
        os._exit(0)
    _, status = os.waitpid(child, 0)
    print("child exit", os.waitstatus_to_exitcode(status))
    print("parent", sms.send("Two", to="380501234568", sender="Shop").accepted)
    tracking.close()
    sms.close()
"""
    assert printed(script) == [
        "child: this tracking was begun in the parent process; track the ids again here",
        "child exit 0",
        "parent 1",
    ]


def test_the_example_task_runs_against_the_fake() -> None:
    """examples/sync_send.py, warnings as errors: its counts, and nothing on stderr."""
    result = run_python("-W", "error", str(ROOT / "examples" / "sync_send.py"))
    assert result.stderr == ""
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "Counts(accepted=2, rejected=1, suppressed=0, failed=0, uncertain=0, requests=1)",
        "Counts(accepted=0, rejected=0, suppressed=1, failed=0, uncertain=0, requests=0)",
        "4 threads at once: 40 accepted",
    ]


@pytest.mark.parametrize("name", [n for n in blocking.__all__ if n != "Tracker"])
def test_each_twin_takes_the_arguments_and_has_the_methods_of_its_async_class(name: str) -> None:
    """Nothing drifts: the constructor's parameters (names, kinds, defaults, annotations) and
    the public async methods are the async class's (``aclose`` is ``close``)."""
    twin, original = getattr(blocking, name), getattr(smsbridge, name)
    assert inspect.signature(twin.__init__) == inspect.signature(original.__init__)
    assert inspect.getdoc(blocking)
    assert inspect.getdoc(twin)
    methods = {
        n for n, f in inspect.getmembers(original) if inspect.iscoroutinefunction(f) and n[0] != "_"
    }
    twins = {n for n in vars(twin) if n[0] != "_"} | {"close"}
    assert twins == methods - {"aclose"} | {"close"}
    assert all(getattr(twin, n).__doc__ for n in twins)


def test_track_gives_each_id_once_as_it_becomes_final(fake: FakeSmsClub) -> None:
    """The blocking track: one id delivered by the first poll, one settled by a report fed
    from the calling thread, one still on its way at the deadline; each comes out once, in
    that order."""
    with SmsClub(TOKEN, base_url=fake.url) as sms:
        ids = sms.send("Sale", to=list(ua_numbers(3)), sender="Shop").message_ids()
        fake.states[ids[0]] = "DELIVRD"
        with sms.track(ids, every=0.05, deadline=0.3) as tracker:
            first = next(tracker)
            tracker.feed([MessageStatus(message_id=ids[1], state=DeliveryState.UNDELIV)])
            rest = list(tracker)
            assert tracker.pending == 0
    assert (first.message_id, first.state) == (ids[0], DeliveryState.DELIVRD)
    assert [(s.message_id, s.state) for s in rest] == [
        (ids[1], DeliveryState.UNDELIV),
        (ids[2], DeliveryState.ENROUTE),
    ]


def test_feed_checks_its_reports_in_the_calling_thread(fake: FakeSmsClub) -> None:
    """A report of the user's own type with an id and a state (no ``raw``) settles its id,
    its state's name as the raw word; an entry that is no report is an InvalidInputError
    raised in the calling thread, and none of that call's reports is taken (before, the
    error went to the loop's log and the id came out ENROUTE at the deadline)."""

    @dataclass
    class Report_:
        message_id: str
        state: DeliveryState

    with SmsClub(TOKEN, base_url=fake.url) as sms:
        ids = sms.send("Sale", to=list(ua_numbers(2)), sender="Shop").message_ids()
        with sms.track(ids, every=0.05, deadline=0.3) as tracker:
            with pytest.raises(InvalidInputError, match="feed takes delivery reports"):
                tracker.feed([Report_(ids[1], DeliveryState.UNDELIV), object()])  # type: ignore[list-item]
            for bad in (None, 5, Report_(ids[1], DeliveryState.UNDELIV)):
                with pytest.raises(InvalidInputError, match="feed takes a list"):
                    tracker.feed(bad)  # type: ignore[arg-type]
            tracker.feed([Report_(ids[0], DeliveryState.DELIVRD)])  # type: ignore[list-item]
            seen = list(tracker)
    assert [(s.message_id, s.state, s.raw) for s in seen] == [
        (ids[0], DeliveryState.DELIVRD, "DELIVRD"),
        (ids[1], DeliveryState.ENROUTE, seen[1].raw),
    ]


def test_bytes_of_any_kind_are_no_list_of_numbers(fake: FakeSmsClub) -> None:
    """``to=bytearray(...)`` or a memoryview is refused as the async client refuses it,
    not read byte by byte as a dozen recipients."""
    with SmsClub(TOKEN, base_url=fake.url) as sms:
        for given in (b"380501234567", bytearray(b"380501234567"), memoryview(b"380501234567")):
            with pytest.raises(InvalidInputError, match="iterable of phone numbers"):
                sms.send("hi", to=given, sender="Shop")
    assert fake.record().sent == []


def test_track_stops_cleanly_from_another_thread_and_after_an_interrupt(
    fake: FakeSmsClub,
) -> None:
    """close() from another thread ends an iteration blocked in a long wait at once; feed()
    called on the loop thread (from on_outcome) does not wait; after an interrupt the next
    step says the tracking ended with ids pending, never a quiet end; bad ids and settings
    are typed errors."""
    with SmsClub(TOKEN, base_url=fake.url) as sms:
        ids = sms.send("Sale", to=list(ua_numbers(2)), sender="Shop").message_ids()
        tracker = sms.track(ids, every=60, deadline=600)
        threading.Timer(0.3, tracker.close).start()
        assert list(tracker) == []  # ended by close(), not by the 60 s wait

        fed = sms.track(ids, every=60, deadline=600)
        sms.send(  # its callback runs on the loop thread
            "Other",
            to=["380509999999"],
            sender="Shop",
            on_outcome=lambda _: fed.feed(
                [MessageStatus(message_id=ids[0], state=DeliveryState.DELIVRD)]
            ),
        )
        assert next(fed).message_id == ids[0]  # given out before the 60 s wait ends
        fed.close()

        if threading.current_thread() is threading.main_thread():
            main = threading.main_thread().ident
            assert main is not None
            interrupted = sms.track(ids, every=60, deadline=600)
            previous = signal.signal(signal.SIGINT, signal.default_int_handler)
            try:
                threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT)).start()
                with pytest.raises(KeyboardInterrupt):
                    list(interrupted)
            finally:
                signal.signal(signal.SIGINT, previous)
            with pytest.raises(ConfigurationError, match="interrupted with 2 ids pending"):
                next(interrupted)

        for bad in (None, b"12", 3.5):
            with pytest.raises(InvalidInputError, match="message ids"):
                sms.track(bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="every must be positive seconds"):
            sms.track(ids, every="x")  # type: ignore[arg-type]


def test_ctrl_c_as_the_send_is_handed_to_the_loop_stops_it(
    fake: FakeSmsClub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C can come while the loop is woken for a call, once the call is already handed
    over: the send then runs, and must not be closed from the calling thread (that threw
    GeneratorExit into it, outside its loop). It is stopped, and waited for as an interrupt
    during the send is (KeyboardInterrupt was raised while the send still ran, with no
    counts): what the limiter let start at once goes, KeyboardInterrupt propagates with the
    counts, and the client goes on working."""
    real = blocking._Loop.submit
    interrupted = [False]

    def handed_then_interrupted(self: Any, work: Any, into: Any = None) -> Any:
        future = real(self, work, into)
        if not interrupted[0]:
            interrupted[0] = True
            time.sleep(0.2)  # the loop thread has begun the send by now
            raise KeyboardInterrupt
        return future

    with SmsClub(TOKEN, base_url=fake.url, batch_size=1, concurrency=1, rate=5) as sms:
        monkeypatch.setattr(blocking._Loop, "submit", handed_then_interrupted)
        with pytest.raises(KeyboardInterrupt) as caught:
            sms.send("Sale today", to=list(ua_numbers(30)), sender="Shop")
        monkeypatch.setattr(blocking._Loop, "submit", real)
        (note,) = caught.value.__notes__
        assert note.startswith("smsbridge: the send was stopped: Counts(accepted=")
        assert sms.balance().currency == "UAH"
        report = sms.send("Other news", to=list(ua_numbers(2)), sender="Shop")
        assert report.accepted == 2
    sale = [m for m in fake.sent if m.text == "Sale today"]
    assert 1 <= len(sale) <= 5  # what the limiter let start at once, of 30


@pytest.mark.parametrize("blocking_client", [SmsClub, SmsPlus, Webcom])
def test_a_blocking_client_refuses_an_option_of_the_wrong_kind_when_made(
    blocking_client: Any,
) -> None:
    """Not at its first call, possibly in a worker long after start-up (it opens its async
    twin only then)."""
    with pytest.raises(ConfigurationError, match="window_ttl must be"):
        blocking_client("tok", window_ttl="120")
    with pytest.raises(ConfigurationError, match="takes no rate_limit"):
        blocking_client("tok", rate_limit=5)


def test_a_fork_while_another_thread_opens_a_client_leaves_the_child_one_it_can_open() -> None:
    """A thread of the parent is in a client's first call, waiting for it to open (the loop
    busy in another send's callback), when the process forks: the child's first call on that
    client opens it and returns. The child inherited the client's lock held, by a thread it
    does not have, and waited for ever."""
    script = """
import os, signal, threading, time
from smsbridge.sync import SmsClub
from smsbridge.testing import FakeSmsClub
from tests.helpers import TOKEN, ThreadedFake

with ThreadedFake(FakeSmsClub(tokens=[TOKEN], rate_limit=None)) as fake:
    busy, sms = SmsClub(TOKEN, base_url=fake.url), SmsClub(TOKEN, base_url=fake.url)
    stuck, gate = threading.Event(), threading.Event()
    hold = threading.Thread(
        target=busy.send, args=("x",), kwargs=dict(to="380501234567", sender="Shop",
        on_outcome=lambda o: (stuck.set(), gate.wait(20))))  # the loop thread waits here
    hold.start()
    stuck.wait(10)
    opening = threading.Thread(target=sms.balance)
    opening.start()
    while not sms._lock.locked():  # it waits for the loop to open the client
        time.sleep(0.01)
    child = os.fork()
    if child == 0:
        signal.alarm(10)
        print("child", sms.balance().currency, flush=True)
        os._exit(0)
    gate.set()
    _, status = os.waitpid(child, 0)
    print("child exit", os.waitstatus_to_exitcode(status))
    opening.join(); hold.join(); busy.close(); sms.close()
"""
    assert printed(script) == ["child UAH", "child exit 0"]


def test_a_limiter_and_a_window_carried_into_a_forked_child_start_over_there() -> None:
    """Shared by clients and in use when the process forks (the limiter's slots pending and
    a task queued for it, a keyed send's lease held), in the child they hold none of that:
    the parent's tasks are not there to give it back. The child's first slot waited for
    ever, and its keyed send found the lease taken."""
    script = """
import asyncio, os, signal
from smsbridge import MemoryWindow, SlidingWindowLimiter

limiter, window = SlidingWindowLimiter(2, period=1.0), MemoryWindow()

async def parent():
    await limiter.acquire(); await limiter.acquire()  # both pending: none started
    queued = asyncio.ensure_future(limiter.acquire())  # waits for one, holding the lock
    await asyncio.sleep(0)
    assert await window.hold("send", "run-in-parent", 60)
    return queued

loop = asyncio.new_event_loop()
queued = loop.run_until_complete(parent())
child = os.fork()
if child == 0:
    signal.alarm(10)
    async def main():
        slot = await asyncio.wait_for(limiter.acquire(), 5)
        print("child slot", slot.start(), await window.hold("send", "run-in-child", 60))
    asyncio.run(main())
    os._exit(0)
_, status = os.waitpid(child, 0)
print("child exit", os.waitstatus_to_exitcode(status))
print("parent lease", loop.run_until_complete(window.hold("send", "another", 60)))
queued.cancel()
"""
    assert printed(script) == ["child slot True True", "child exit 0", "parent lease False"]


def test_a_tracker_keeps_the_client_it_was_made_from(fake: FakeSmsClub) -> None:
    """``for status in SmsClub(...).track(ids)``: the client made for the tracking alone is
    not collected, and so closed, under it (every id came out; before, the next poll
    failed saying the client was closed, and advised ``async with``)."""
    with SmsClub(TOKEN, base_url=fake.url) as sms:
        ids = sms.send("Sale", to=list(ua_numbers(2)), sender="Shop").message_ids()
    fake.states[ids[0]] = "DELIVRD"
    seen = []
    for status in SmsClub(TOKEN, base_url=fake.url).track(ids, every=0.05, deadline=0.3):
        gc.collect()
        seen.append((status.message_id, status.state))
    assert seen == [(ids[0], DeliveryState.DELIVRD), (ids[1], DeliveryState.ENROUTE)]


def test_a_tracker_whose_client_was_closed_says_so_in_blocking_terms(fake: FakeSmsClub) -> None:
    sms = SmsClub(TOKEN, base_url=fake.url)
    ids = sms.send("Sale", to=list(ua_numbers(2)), sender="Shop").message_ids()
    tracker = sms.track(ids, every=0.05, deadline=None)
    sms.close()
    with pytest.raises(ConfigurationError, match=r"SmsClub was closed with 2 ids pending: open"):
        next(tracker)


def test_two_threads_iterating_one_tracker_take_its_steps_in_turn(fake: FakeSmsClub) -> None:
    """Each id comes out once, to one of the threads, and neither fails (one got "anext():
    asynchronous generator is already running", the other a tracking said interrupted)."""
    with SmsClub(TOKEN, base_url=fake.url) as sms:
        ids = sms.send("Sale", to=list(ua_numbers(4)), sender="Shop").message_ids()
        tracker = sms.track(ids, every=0.05, deadline=0.3)
        got: list[str] = []

        def iterate() -> None:
            got.extend(status.message_id for status in tracker)

        threads = [threading.Thread(target=iterate) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert sorted(got) == sorted(ids)


def test_a_tracker_closed_from_a_callback_on_the_loop_leaves_the_send_its_report(
    fake: FakeSmsClub,
) -> None:
    """``close()`` from ``on_outcome`` (the loop's thread) returns at once; the send it ran in
    returns its report (before, close raised that ``track`` blocks, and the send raised that
    in place of its report)."""
    with SmsClub(TOKEN, base_url=fake.url) as sms:
        ids = sms.send("Sale", to=list(ua_numbers(1)), sender="Shop").message_ids()
        tracker = sms.track(ids, every=60, deadline=600)
        report = sms.send(
            "Other", to="380509999999", sender="Shop", on_outcome=lambda o: tracker.close()
        )
        assert report.accepted == 1
        assert list(tracker) == []


def test_with_refused_in_async_code_leaves_a_closed_client_closed(fake: FakeSmsClub) -> None:
    sms = SmsClub(TOKEN, base_url=fake.url)
    sms.close()

    async def enter() -> None:
        with sms:
            pass

    with pytest.raises(ConfigurationError, match="blocks and was called from a running"):
        asyncio.run(enter())
    with pytest.raises(ConfigurationError, match="is closed"):
        sms.balance()


def test_an_interrupt_while_a_client_first_opens_leaves_no_client_open() -> None:
    """Ctrl-C while a client's first call waits for it to open (the loop busy in another
    send's callback): once it has opened it is closed again, not left open on the loop,
    unreachable (one more HTTP session for each interrupt)."""
    script = """
import signal, threading, time
from smsbridge import sync as blocking
from smsbridge.sync import SmsClub
from smsbridge.testing import FakeSmsClub
from tests.helpers import TOKEN, ThreadedFake

signal.signal(signal.SIGINT, signal.default_int_handler)
main = threading.get_ident()
with ThreadedFake(FakeSmsClub(tokens=[TOKEN], rate_limit=None)) as fake:
    busy, sms = SmsClub(TOKEN, base_url=fake.url), SmsClub(TOKEN, base_url=fake.url)
    stuck, gate = threading.Event(), threading.Event()
    hold = threading.Thread(
        target=busy.send, args=("x",), kwargs=dict(to="380501234567", sender="Shop",
        on_outcome=lambda o: (stuck.set(), gate.wait(20))))
    hold.start()
    stuck.wait(10)
    def interrupt():
        while not sms._lock.locked():
            time.sleep(0.01)
        signal.pthread_kill(main, signal.SIGINT)
    threading.Thread(target=interrupt).start()
    try:
        sms.balance()
    except KeyboardInterrupt:
        print("interrupted")
    gate.set()
    hold.join()
    busy.close()
    for _ in range(500):  # the loop closes what opened after the interrupt
        if not blocking._current.clients:
            break
        time.sleep(0.01)
    print("open on the loop", len(blocking._current.clients))
    print(sms.balance().currency)
    sms.close()
"""
    assert printed(script) == ["interrupted", "open on the loop 0", "UAH"]
