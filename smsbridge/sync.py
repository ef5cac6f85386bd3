"""Blocking clients, for code that runs no event loop: Django views, Celery tasks, scripts.

::

    from smsbridge.sync import SmsClub

    sms = SmsClub(token=...)  # once per process (module level is fine); share it
    report = sms.send("Your order shipped", to=phones, sender="Shop")

:class:`SmsClub`, :class:`SmsPlus` and :class:`Webcom` take the arguments of the async classes
of the same names and have their methods, which block and return the same results (and raise
the same errors).

**One loop thread.** Every blocking client of the process runs on one event loop, on a daemon
thread (``smsbridge-sync``) started by the first call. A client makes its async twin on that
loop at its first call (or ``with``), so its arguments and ``SMSBRIDGE_*`` settings are read,
and checked, then: a client built at import time in a Celery or gunicorn parent opens in each
forked child, where it is used. A client used before a fork opens again in the child (also
one another thread was opening or sending through at the fork); a limiter or window shared
by clients starts over there from the starts and keys it holds, none of its parent's waiters.

**Threads.** Any number of threads may call one client at once: their sends share its
limiter, duplicate window and connection pool, as concurrent sends of one async client do.

**Input and callbacks.** Iterables that are not lists, tuples, sets, mappings or strings
(generators, Django querysets) are read into a list in the calling thread first, so a
queryset is evaluated there and not on the loop, where Django forbids it; for a stream of
millions, use the async client. ``on_outcome`` and ``observer`` run on the loop thread: keep
them quick, and do not call a blocking client or the Django ORM from them. ``stop=`` is
refused: interrupt the call instead (below).

**Closing.** ``with SmsClub(...) as sms:`` closes on exit (``with`` opens a closed client
again); ``close()`` closes now; a client collected while open is closed on the loop, and at
interpreter exit every client still open is closed and the loop thread stops. A call on a
closed client raises :class:`~smsbridge.ConfigurationError`, as does any call made from a
running event loop (an ``async def``, or a callback on the loop): it would block that loop,
so async code uses the async client.

**Interrupts.** When the waiting thread is interrupted during a send (``KeyboardInterrupt``
on Ctrl-C, a Celery soft time limit, any exception a signal handler raises), the send is
stopped as by its ``stop`` event: nothing more is written, the requests in flight finish
(they may have been processed, so they are not cut off), what was read but not sent is
``failed`` ("not sent") and what was not read gets no outcome. Then the interrupt is raised,
with the send's counts added as a note. A second
interrupt while it winds down cancels it at once: its requests in flight are abandoned and
whether they went is unknown. An interrupted call that is not a send (``status``,
``balance``...) is cancelled at once.

**Following deliveries.** ``for status in sms.track(report.message_ids()):`` blocks between
rounds and gives each id's final :class:`~smsbridge.MessageStatus` once, as the async
``track`` does; ``feed`` takes webhook reports from any thread.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import datetime
import functools
import os
import threading
import weakref
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, Unpack, overload

import anyio

from ._core import forks
from ._core.client import Client, ClientOptions, check_options
from ._core.errors import ConfigurationError, InvalidInputError, SmsBridgeError
from ._core.models import MessageStatus, Report
from ._core.phones import PhoneRules
from ._core.tracking import DeliveryTracker, HasState, statuses_of
from ._smsclub.adapter import MAX_BATCH
from ._smsclub.client import SmsClub as _SmsClub
from ._smsplus.adapter import DEFAULT_BATCH as _SMSPLUS_BATCH
from ._smsplus.client import SmsPlus as _SmsPlus
from ._webcom.adapter import DEFAULT_BATCH as _WEBCOM_BATCH
from ._webcom.client import MOSCOW
from ._webcom.client import Webcom as _Webcom

__all__ = ["SmsClub", "SmsPlus", "Tracker", "Webcom"]

A = TypeVar("A", bound=Client[Any])
P = ParamSpec("P")
T = TypeVar("T")


class _Work(concurrent.futures.Future[T]):
    """A coroutine's run on the loop, as the future that a calling thread waits on.

    It is made before the coroutine is handed to the loop, so an interrupt of the calling
    thread at any point of the handing over finds it: :meth:`withdraw` then tells whether the
    coroutine had begun (and keeps it from beginning if not), and :meth:`cancel` cancels it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._task: asyncio.Task[T] | None = None
        self._beginning = threading.Lock()

    def begin(self, work: Callable[[], Coroutine[Any, Any, T]]) -> None:
        """Run ``work()`` (on the loop), unless it was withdrawn or cancelled first. The
        coroutine is made here: none is left unawaited in the calling thread if an
        interrupt comes as it is handed over."""
        with self._beginning:
            if not self.set_running_or_notify_cancel():
                return
            self._task = task = self._loop.create_task(work())
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[T]) -> None:
        if task.cancelled():
            broken = self._loop in _broken_loops  # cancelled as the loop ended under it
            self.set_exception(_ended_loop() if broken else concurrent.futures.CancelledError())
        elif (error := task.exception()) is not None:
            self.set_exception(error.carried if isinstance(error, _Carried) else error)
        else:
            self.set_result(task.result())

    def withdraw(self) -> bool:
        """Keep the coroutine from beginning, if it has not: whether it was kept."""
        with self._beginning:
            return super().cancel()

    def cancel(self) -> bool:
        """Withdraw the coroutine, or cancel it where it runs (without waiting for it)."""
        with self._beginning:
            if super().cancel():
                return True
            task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(RuntimeError):  # the loop is gone: so is the task
                self._loop.call_soon_threadsafe(task.cancel)
        return False


class _Loop:
    """The event loop of every blocking client of this process, on a daemon thread."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.clients: set[Client[Any]] = set()  # open async clients; touched on the loop only
        self.works: set[_Work[Any]] = set()  # calls not yet done, from any thread
        self.ended = False  # the loop ended (stopped, or killed by what a callback raised)
        self._stopping: asyncio.Event | None = None
        started: concurrent.futures.Future[asyncio.AbstractEventLoop] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._serve, args=(started,), name="smsbridge-sync", daemon=True
        )
        self._thread.start()
        self.loop = started.result()

    def _serve(self, started: concurrent.futures.Future[asyncio.AbstractEventLoop]) -> None:
        async def main() -> None:
            self._stopping = asyncio.Event()
            started.set_result(asyncio.get_running_loop())
            await self._stopping.wait()
            for client in list(self.clients):
                with contextlib.suppress(Exception):
                    await self.release(client)

        runner = asyncio.Runner()
        try:
            runner.run(main())
        except BaseException as e:
            # a SystemExit or KeyboardInterrupt raised on the loop (by a callback of some
            # call) ends it: the next call starts another, and the calls still waiting on
            # this one end now, not never, saying why
            if not started.done():
                started.set_exception(e)
            _broke(runner)
            self.ended = True  # before its calls end: one made then goes to a new loop
        finally:
            try:
                runner.close()  # cancels what still runs (calls of daemon threads), closes
            except BaseException:  # a callback raising again as those calls settle
                _broke(runner)
            finally:
                self.ended = True
                for work in list(self.works):
                    with contextlib.suppress(concurrent.futures.InvalidStateError):
                        work.set_exception(_ended_loop())

    def submit(
        self, work: Callable[[], Coroutine[Any, Any, T]], into: _Work[T] | None = None
    ) -> _Work[T]:
        """Run ``work()`` on the loop; ``into`` is the future it is run as, made beforehand
        where an interrupt of the calling thread must always find it."""
        if self.pid != os.getpid():  # a parent's loop, in a forked child: no thread runs it
            raise RuntimeError("the event loop of smsbridge.sync is the parent process's")
        future = _Work[T](self.loop) if into is None else into
        self.works.add(future)
        future.add_done_callback(self.works.discard)
        try:
            self.loop.call_soon_threadsafe(future.begin, work)
        except RuntimeError:  # the loop closed
            self.works.discard(future)
            if not self.ended:
                raise
            raise _ended_loop() from None
        return future

    async def open(self, make: Callable[[], A]) -> A:
        client = make()
        await client.__aenter__()
        self.clients.add(client)
        return client

    async def release(self, client: Client[Any]) -> None:
        self.clients.discard(client)
        await client.aclose()

    def release_soon(self, client: Client[Any]) -> None:
        """Close ``client`` without waiting (from any thread, the loop's too)."""
        if self.pid == os.getpid() and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self.submit(lambda: self.release(client))

    def stop(self) -> None:
        """Close every client still open, then end the loop and its thread."""
        if self._stopping is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join()


_lock = threading.Lock()
_current: _Loop | None = None
_broken_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_forked: list[_Loop] = []  # a parent's loop (and its clients): never collected in the child
_exited = False


class _Carried(Exception):
    """A KeyboardInterrupt or SystemExit on its way to the calling thread."""

    def __init__(self, carried: BaseException) -> None:
        super().__init__(repr(carried))
        self.carried = carried


def _broke(runner: asyncio.Runner) -> None:
    """The runner's loop ended under its calls: they end saying so (:func:`_ended_loop`)."""
    with contextlib.suppress(RuntimeError):  # never began
        _broken_loops.add(runner.get_loop())


def _ended_loop() -> SmsBridgeError:
    return SmsBridgeError(
        "smsbridge.sync: the event loop ended under this call (a callback of a call raised "
        "SystemExit or KeyboardInterrupt); whether its requests in flight went is unknown; "
        "the next call runs on a new loop",
        maybe_processed=True,
    )


def _loop() -> _Loop:
    global _current
    with _lock:
        if _exited:
            raise ConfigurationError("smsbridge.sync: the interpreter is exiting")
        if _current is not None and _current.pid != os.getpid():
            _forked.append(_current)
            _current = None
        if _current is not None and _current.ended:  # its clients open again on the next
            _current = None
        if _current is None:
            _current = _Loop()
        return _current


def _shutdown() -> None:
    global _current, _exited
    with _lock:
        loop, _current, _exited = _current, None, True
    if loop is not None and loop.pid == os.getpid():
        loop.stop()


def _after_fork() -> None:
    global _lock
    _lock = threading.Lock()  # a thread of the parent may have held it


atexit.register(_shutdown)
os.register_at_fork(after_in_child=_after_fork)


def _close_opened(loop: _Loop, opening: concurrent.futures.Future[Any]) -> None:
    """Close a client whose opening nobody waited for (its caller was interrupted)."""
    if not opening.cancelled() and opening.exception() is None:
        loop.release_soon(opening.result())


def _on_loop(loop: _Loop) -> bool:
    """Whether this thread is the one running ``loop``."""
    try:
        return asyncio.get_running_loop() is loop.loop
    except RuntimeError:
        return False


def _outside_loop(what: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise ConfigurationError(
        f"smsbridge.sync.{what} blocks and was called from a running event loop: in async "
        f"code use smsbridge.{what.split('.')[0]} with await (or run this in a thread)"
    )


def _read(value: object) -> object:
    """A lazy iterable as a list, read in the calling thread; anything else as it is."""
    if isinstance(value, Iterable) and not isinstance(
        value,
        str
        | bytes
        | bytearray
        | memoryview
        | list
        | tuple
        | range
        | AbstractSet
        | Mapping
        | AsyncIterable,
    ):
        return list(value)
    return value


class _Stop:
    """A send's ``stop`` event: made on the loop, set from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event: anyio.Event | None = None
        self._asked = False

    def event(self) -> anyio.Event:
        """The event (on the loop)."""
        self._event = anyio.Event()
        if self._asked:
            self._event.set()
        return self._event

    def _set(self) -> None:
        self._asked = True
        if self._event is not None:
            self._event.set()

    def set(self) -> None:
        """Stop the send (from any thread)."""
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._set)


class _Method(Generic[A, P, T]):
    """A method of the async client, as a blocking method of its twin."""

    def __init__(self, method: Callable[Concatenate[A, P], Awaitable[T]], *, sends: bool) -> None:
        self._method = method
        self._sends = sends
        self.__name__ = method.__name__
        self.__wrapped__ = method
        self.__doc__ = f"Blocking :meth:`smsbridge.{method.__qualname__}`.\n\n{method.__doc__}"

    @overload
    def __get__(self, obj: None, owner: type[object]) -> Self: ...

    @overload
    def __get__(self, obj: _Blocking[Any], owner: type[object]) -> Callable[P, T]: ...

    def __get__(self, obj: _Blocking[Any] | None, owner: type[object]) -> Self | Callable[P, T]:
        if obj is None:
            return self
        method, sends = self._method, self._sends

        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            return obj._call(method, args, kwargs, sends=sends)

        call.__doc__ = self.__doc__
        return functools.update_wrapper(call, method, updated=(), assigned=("__name__",))


def _send(method: Callable[Concatenate[A, P], Awaitable[T]]) -> _Method[A, P, T]:
    return _Method(method, sends=True)


def _plain(method: Callable[Concatenate[A, P], Awaitable[T]]) -> _Method[A, P, T]:
    return _Method(method, sends=False)


class _Blocking(Generic[A]):
    """What the blocking clients share: their async twin on the loop, opened at first use."""

    def __init__(self, make: Callable[[], A]) -> None:
        self._make = make
        self._lock = threading.Lock()
        forks.on_fork(self)
        self._client: A | None = None
        self._on: _Loop | None = None
        self._closed = False
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def _forked(self) -> None:
        """In a forked child: a thread of the parent may have held the lock (opening the
        client); the child, one thread as it comes out of the fork, has none of them."""
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._client else "not opened yet"
        return f"smsbridge.sync.{type(self).__name__}({state})"

    def _open(self, what: str, *, reopen: bool = False) -> tuple[_Loop, A]:
        _outside_loop(f"{type(self).__name__}.{what}")  # before the lock: a loop must not wait
        with self._lock:
            if self._closed and not reopen:
                raise ConfigurationError(
                    f"this smsbridge.sync.{type(self).__name__} is closed: make a new one, or "
                    f"open it again with `with`"
                )
            loop = _loop()
            if self._client is None or self._on is not loop:  # not yet, or before a fork
                make = self._make
                opening = loop.submit(lambda: loop.open(make))
                try:
                    client = opening.result()
                except BaseException:
                    # interrupted while it opens: once open, it is closed (not left open on
                    # the loop, unreachable, until the interpreter exits)
                    opening.add_done_callback(functools.partial(_close_opened, loop))
                    raise
                self._client, self._on = client, loop
                self._finalizer = weakref.finalize(self, loop.release_soon, client)
                self._finalizer.atexit = False  # _shutdown closes it
            self._closed = False  # a closed one opened again by `with`, once it is open
            return loop, self._client

    def _call(
        self,
        method: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        sends: bool,
    ) -> T:
        name = getattr(method, "__name__", "call")
        _outside_loop(f"{type(self).__name__}.{name}")
        if sends and kwargs.get("stop") is not None:
            raise InvalidInputError(
                "stop= is not taken by the blocking clients: interrupt the call instead "
                "(KeyboardInterrupt stops the send), or use the async client"
            )
        loop, client = self._open(name)
        given = tuple(_read(a) for a in args)
        options = {k: _read(v) for k, v in kwargs.items() if k != "stop"}
        stop = _Stop(loop.loop) if sends else None

        async def run() -> T:
            if stop is not None:
                options["stop"] = stop.event()
            try:
                return await method(client, *given, **options)
            except (KeyboardInterrupt, SystemExit) as e:  # a callback's, once the send
                # settled: to the calling thread, not out of the loop every client runs on
                raise _Carried(e) from None

        future = _Work[T](loop.loop)
        try:
            loop.submit(run, future)
            return future.result()
        except BaseException as interrupt:  # the call's own error, or this thread interrupted
            if future.withdraw():  # interrupted as it was handed over, before it began
                raise
            if future.done() or stop is None:
                future.cancel()
                raise
            stop.set()
            try:
                with contextlib.suppress(Exception):  # its own error after the stop: not news
                    done = future.result()  # the requests in flight finish
                    if isinstance(done, Report):
                        interrupt.add_note(f"smsbridge: the send was stopped: {done.counts()}")
            finally:
                future.cancel()  # a second interrupt: abandon it
            raise

    def __enter__(self) -> Self:
        """Open the client now (a closed one opens again)."""
        self._open("__enter__", reopen=True)
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the client (:meth:`close`)."""
        self.close()

    def close(self) -> None:
        """Close the HTTP session (and Redis connections). Calls raise
        :class:`~smsbridge.ConfigurationError` until the client is opened again with
        ``with``; calls still running in other threads may fail."""
        _outside_loop(f"{type(self).__name__}.close")
        with self._lock:
            self._closed = True
            client, loop, self._client, self._on = self._client, self._on, None, None
            if self._finalizer is not None:
                self._finalizer.detach()
        if client is not None and loop is not None and loop is _current and not loop.ended:
            # the loop stopped meanwhile (or ended under a callback): what it held went with it
            with contextlib.suppress(RuntimeError, SmsBridgeError):
                loop.submit(lambda: loop.release(client)).result()


class Tracker:
    """A blocking :class:`~smsbridge.DeliveryTracker`: iterate it for each id's
    :class:`~smsbridge.MessageStatus` once, when final or at the deadline (each step blocks
    until the next status is known); :meth:`feed` takes delivery reports from any thread
    (the loop's own included) without waiting; :meth:`close`, from any thread or by leaving
    a ``with``, stops following and ends an iteration blocked in another thread. An interrupt
    of the waiting thread (Ctrl-C) abandons the round under way and ends the tracking: the
    next step raises :class:`~smsbridge.ConfigurationError` saying so (track the ids still
    pending again), so that no caller takes the end for "all settled". Threads iterating one
    tracker take its steps in turn. The tracker keeps its client open while it is followed,
    even one made for it alone (``for s in SmsClub(...).track(ids)``)."""

    def __init__(
        self, loop: _Loop, tracker: DeliveryTracker, owner: str, client: _Blocking[Any]
    ) -> None:
        self._loop = loop
        self._tracker = tracker
        self._owner = owner
        self._client = client  # not collected (and so closed) while its tracking goes on
        self._steps = tracker.__aiter__()
        self._step: concurrent.futures.Future[MessageStatus] | None = None
        self._stepping = threading.Lock()
        self._closed = False
        self._broken: str | None = None

    @property
    def pending(self) -> int:
        """Ids not yet given out."""
        return self._tracker.pending

    def feed(self, reports: Iterable[HasState]) -> None:
        """States heard another way (a webhook's delivery reports): see
        :meth:`smsbridge.DeliveryTracker.feed`. Returns at once."""
        given = statuses_of(reports)  # checked here: an error is the caller's, not the loop's
        with contextlib.suppress(RuntimeError):  # the loop is gone: so is the tracking
            self._loop.loop.call_soon_threadsafe(self._tracker.feed, given)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> MessageStatus:
        _outside_loop(f"{self._owner}.track")
        with self._stepping:  # one step at a time: the async iteration takes no two at once
            return self._next()

    def _next(self) -> MessageStatus:
        if self._closed:
            raise StopIteration
        if self._broken is not None:
            raise ConfigurationError(self._broken)
        if self._loop.pid != os.getpid():
            raise ConfigurationError(
                "this tracking was begun in the parent process; track the ids again here"
            )

        async def step() -> MessageStatus:
            return await anext(self._steps)

        # made before the step is handed over: an interrupt at any point finds it
        self._step = future = _Work[MessageStatus](self._loop.loop)
        try:
            self._loop.submit(step, future)
            return future.result()
        except StopAsyncIteration:
            raise StopIteration from None
        except concurrent.futures.CancelledError:
            if self._closed:  # closed from another thread meanwhile
                raise StopIteration from None
            raise
        except BaseException as e:
            future.cancel()  # interrupted while waiting: that round is abandoned, and with it
            self._broken = (  # the iteration
                f"this tracking was interrupted with {self.pending} ids pending: track them again"
            )
            if isinstance(e, ConfigurationError) and self._client._closed:
                self._broken = (
                    f"this tracking's {self._owner} was closed with {self.pending} ids "
                    f"pending: open it again (`with`) and track them again"
                )
                raise ConfigurationError(self._broken) from None
            raise
        finally:
            self._step = None

    def close(self) -> None:
        """Stop following (the round under way, if any, is abandoned). From the loop's own
        thread (a callback of a send) it returns at once, the tracking closed soon after."""
        on_loop = _on_loop(self._loop)
        if not on_loop:
            _outside_loop(f"{self._owner}.track")
        self._closed = True
        step = self._step
        if step is not None:
            step.cancel()
        steps = self._steps

        async def close() -> None:
            closing = getattr(steps, "aclose", None)
            if closing is not None:
                with contextlib.suppress(RuntimeError):  # still running: ends as it is cancelled
                    await closing()

        if self._loop.ended:  # the loop is gone (or ended under a callback): so is the tracking
            return
        with contextlib.suppress(RuntimeError, SmsBridgeError):
            closing = self._loop.submit(close)
            if not on_loop:  # the loop's own thread cannot wait for it
                closing.result()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Tracking(_Blocking[A]):
    """A blocking client whose gateway has a status call."""

    def track(
        self,
        message_ids: Iterable[str | int] | str | int,
        *,
        every: float = 30.0,
        deadline: float | None = 3600.0,
    ) -> Tracker:
        """Follow sent messages until each reaches a final state (see the async client's
        ``track``): ``for status in sms.track(report.message_ids()): ...``."""
        loop, client = self._open("track")
        tracker = client.track(message_ids, every=every, deadline=deadline)  # read here
        return Tracker(loop, tracker, type(self).__name__, self)


class SmsClub(_Tracking[_SmsClub]):
    """Blocking :class:`smsbridge.SmsClub`: the same arguments, methods and results.

    ::

        with SmsClub(token=...) as sms:
            report = sms.send("Your order shipped", to=phones, sender="Shop")
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        batch_size: int = MAX_BATCH,
        integration_id: int | None = None,
        phones: PhoneRules | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        check_options(_SmsClub.spec.title, options)  # now, not at the first call
        super().__init__(
            lambda: _SmsClub(
                token,
                batch_size=batch_size,
                integration_id=integration_id,
                phones=phones,
                **options,
            )
        )

    send = _send(_SmsClub.send)
    send_message = _send(_SmsClub.send_message)
    plan = _send(_SmsClub.plan)
    send_personal = _send(_SmsClub.send_personal)
    status = _plain(_SmsClub.status)
    balance = _plain(_SmsClub.balance)
    senders = _plain(_SmsClub.senders)
    register_sender = _plain(_SmsClub.register_sender)
    sender_status = _plain(_SmsClub.sender_status)


class SmsPlus(_Blocking[_SmsPlus]):
    """Blocking :class:`smsbridge.SmsPlus`: the same arguments, methods and results.

    ::

        with SmsPlus(token=...) as sms:
            report = sms.send_template(3, sender="Shop", to=[("994501234567", ("Aysel",))])
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        batch_size: int = _SMSPLUS_BATCH,
        phones: PhoneRules | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        check_options(_SmsPlus.spec.title, options)
        super().__init__(lambda: _SmsPlus(token, batch_size=batch_size, phones=phones, **options))

    send_template = _send(_SmsPlus.send_template)
    send_message = _send(_SmsPlus.send_message)
    plan = _send(_SmsPlus.plan)
    templates = _plain(_SmsPlus.templates)


class Webcom(_Tracking[_Webcom]):
    """Blocking :class:`smsbridge.Webcom`: the same arguments, methods and results.

    ::

        with Webcom(token=...) as sms:  # or login=..., password=...
            report = sms.send("Sale today", to=phones, sender="Shop")
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        login: str | None = None,
        password: str | None = None,
        batch_size: int = _WEBCOM_BATCH,
        status_batch: int = 1,
        phones: PhoneRules | None = None,
        validity_tz: datetime.tzinfo = MOSCOW,
        client_id_bits: int = 31,
        **options: Unpack[ClientOptions],
    ) -> None:
        check_options(_Webcom.spec.title, options)
        super().__init__(
            lambda: _Webcom(
                token,
                login=login,
                password=password,
                batch_size=batch_size,
                status_batch=status_batch,
                phones=phones,
                validity_tz=validity_tz,
                client_id_bits=client_id_bits,
                **options,
            )
        )

    send = _send(_Webcom.send)
    send_message = _send(_Webcom.send_message)
    plan = _send(_Webcom.plan)
    send_personal = _send(_Webcom.send_personal)
    status = _plain(_Webcom.status)
    balance = _plain(_Webcom.balance)
