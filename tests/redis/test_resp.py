"""The pipelined Redis connection: URLs, one socket shared by every account of a process,
replies matched in order whatever the callers do, and every failure a redis-py error that
closes the socket for a fresh one."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from smsbridge import ConfigurationError, StateBackendError
from smsbridge._redis.patience import Patience
from smsbridge._resp import Pipe, Run, pack, parse_url
from smsbridge.testing import FakeClock


class Resp:
    """A Redis stand-in on loopback: records every command it reads and answers each with
    ``answer(command)`` (bytes to send, or ``None`` to stay silent)."""

    def __init__(self, answer: Callable[[list[bytes]], bytes | None]) -> None:
        self.answer = answer
        self.commands: list[list[bytes]] = []
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.read = asyncio.Event()  # set once a command has been read
        self.ended = 0  # connections the client closed

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        with contextlib.suppress(
            asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError, ValueError
        ):
            while True:
                count = int((await reader.readline())[1:])
                command = []
                for _ in range(count):
                    size = int((await reader.readline())[1:])
                    command.append((await reader.readexactly(size + 2))[:-2])
                self.commands.append(command)
                self.read.set()
                reply = self.answer(command)
                if reply is not None:
                    writer.write(reply)
        self.ended += 1

    def names(self) -> list[bytes]:
        return [c[0] for c in self.commands]


@contextlib.asynccontextmanager
async def resp(answer: Callable[[list[bytes]], bytes | None]) -> AsyncIterator[tuple[Resp, str]]:
    fake = Resp(answer)
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield fake, f"redis://127.0.0.1:{port}/0"
    finally:
        for writer in fake.writers:
            writer.close()
        server.close()


def echo(command: list[bytes]) -> bytes:
    """Answers each command with its last argument."""
    return b"$%d\r\n%s\r\n" % (len(command[-1]), command[-1])


# ----------------------------------------------------------------------------- URLs


def test_urls() -> None:
    e = parse_url("redis://user:p%40ss@redis.example:6380/3")
    assert (e.host, e.port, e.db, e.username, e.password, e.tls) == (
        "redis.example",
        6380,
        3,
        "user",
        "p@ss",
        None,
    )
    assert "p@ss" not in repr(e) and "p%40ss" not in repr(e)
    e = parse_url("redis://:secret@localhost")
    assert (e.host, e.port, e.db, e.username, e.password) == ("localhost", 6379, 0, None, "secret")
    e = parse_url("unix:///run/redis.sock?db=2")
    assert (e.path, e.db) == ("/run/redis.sock", 2)
    e = parse_url("rediss://h/0?ssl_cert_reqs=none")
    assert e.tls is not None and not e.tls.check_hostname


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://h:6379/0", "scheme 'http'"),
        ("h:6379", "scheme"),
        ("redis://:hunter2@h:port/0", "cannot be parsed"),
        ("redis://:hunter2@h/zero", "database must be a number"),
        ("redis://:hunter2@h/0?socket_timeout=5", "unknown option(s) socket_timeout"),
        ("redis://:hunter2@h/0?ssl_cert_reqs=none", "need rediss://"),
        ("rediss://:hunter2@h/0?ssl_cert_reqs=maybe", "none, optional or required"),
        ("unix://", "socket path"),
        ("redis://:hunter2@exa..mple:6379/0", "not a valid one"),
        ("redis://:hunter2@h:0/0", "port 0"),
        ("rediss://:hunter2@h/0?ssl_ca_certs=/nonexistent/ca.pem", "ssl_ca_certs cannot be read"),
    ],
)
def test_bad_urls_say_why_and_never_the_password(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_url(url)
    assert says in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_pack() -> None:
    assert pack(["SET", b"k\x00", 12]) == b"*3\r\n$3\r\nSET\r\n$2\r\nk\x00\r\n$2\r\n12\r\n"
    fields = [bytes([n]) * 16 for n in range(5)]
    assert pack(["HMGET", "h", Run(fields), 7]) == pack(["HMGET", "h", *fields, 7])
    assert pack(["X", Run([])]) == pack(["X"])
    with pytest.raises(ValueError, match="one length"):
        Run([b"ab", b"abc"])
    # a head framed once, then the arguments of each call
    whole = pack(["EVALSHA", "f" * 40, 2, "k1", "k2", 7, Run(fields), ""])
    head = pack(["EVALSHA", "f" * 40, 2, "k1", "k2"]).split(b"\r\n", 1)[1]
    assert pack([7, Run(fields), ""], head, 5) == whole


# ----------------------------------------------------------------------------- one socket


async def test_every_pipe_of_a_url_shares_one_socket_and_replies_come_back_in_order() -> None:
    async with resp(echo) as (fake, url):
        pipes = [Pipe(url) for _ in range(5)]
        replies = await asyncio.gather(
            *(pipe.execute("ECHO", f"{n}-{i}") for n, pipe in enumerate(pipes) for i in range(40))
        )
        assert replies == [f"{n}-{i}".encode() for n in range(5) for i in range(40)]
        assert fake.connections == 1
        for pipe in pipes[:-1]:
            await pipe.aclose()
        assert await pipes[-1].execute("ECHO", "still") == b"still"  # others closing leaves it
        await pipes[-1].aclose()
        await asyncio.sleep(0.05)
        assert await pipes[0].execute("ECHO", "again") == b"again"  # a closed pipe reopens
        assert fake.connections == 2
        await pipes[0].aclose()


async def test_a_caller_cancelled_while_waiting_leaves_the_others_their_own_replies() -> None:
    async with resp(echo) as (fake, url):
        pipe = Pipe(url)
        assert await pipe.execute("ECHO", "open") == b"open"
        first = asyncio.ensure_future(pipe.execute("ECHO", "first"))
        second = asyncio.ensure_future(pipe.execute("ECHO", "second"))
        await asyncio.sleep(0)  # both sent
        first.cancel()
        assert await second == b"second"
        assert await pipe.execute("ECHO", "third") == b"third"
        assert [c[-1] for c in fake.commands] == [b"open", b"first", b"second", b"third"]
        assert first.cancelled()
        await pipe.aclose()


async def test_an_error_reply_fails_its_command_alone() -> None:
    def answer(command: list[bytes]) -> bytes:
        return b"-ERR no such thing\r\n" if command[-1] == b"bad" else echo(command)

    async with resp(answer) as (_, url):
        pipe = Pipe(url)
        bad = asyncio.ensure_future(pipe.execute("ECHO", "bad"))
        good = asyncio.ensure_future(pipe.execute("ECHO", "good"))
        with pytest.raises(ResponseError, match="no such thing"):
            await bad
        assert await good == b"good"
        await pipe.aclose()


# ----------------------------------------------------------------------------- failures


async def test_a_reply_that_never_comes_fails_every_waiting_command_and_a_new_socket_follows() -> (
    None
):
    silent = {"on": True}

    def answer(command: list[bytes]) -> bytes | None:
        return None if silent["on"] else echo(command)

    async with resp(answer) as (fake, url):
        pipe = Pipe(url, timeout=0.2)
        waiting = [asyncio.ensure_future(pipe.execute("ECHO", str(i))) for i in range(3)]
        for future in waiting:
            with pytest.raises(RedisTimeoutError, match=r"no reply from Redis within 0.2 s"):
                await future
        silent["on"] = False
        assert await pipe.execute("ECHO", "back") == b"back"
        assert fake.connections == 2  # the late replies of the first socket can never be misread
        await pipe.aclose()


async def test_a_connection_dropped_by_the_server_fails_its_commands_and_reconnects() -> None:
    drop = {"on": True}

    async with resp(lambda command: None if drop["on"] else echo(command)) as (fake, url):
        pipe = Pipe(url)
        waiting = asyncio.ensure_future(pipe.execute("ECHO", "lost"))
        await fake.read.wait()
        drop["on"] = False
        fake.writers[0].close()
        with pytest.raises(RedisConnectionError, match="connection to Redis lost"):
            await waiting
        assert await pipe.execute("ECHO", "next") == b"next"
        await pipe.aclose()


async def test_garbage_from_the_server_is_a_connection_error_not_a_misread_reply() -> None:
    async with resp(lambda command: b"?what\r\n") as (_, url):
        pipe = Pipe(url)
        with pytest.raises(RedisConnectionError, match="protocol error"):
            await pipe.execute("PING")
        await pipe.aclose()


async def test_nobody_listening_is_a_connection_error_naming_the_host_not_the_password() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    pipe = Pipe(f"redis://:hunter2@127.0.0.1:{port}/0")
    with pytest.raises(RedisConnectionError) as caught:
        await pipe.execute("PING")
    assert f"127.0.0.1:{port}" in str(caught.value) and "hunter2" not in str(caught.value)
    await pipe.aclose()


async def test_password_and_database_are_sent_first() -> None:
    async with resp(lambda command: b"+OK\r\n") as (fake, url):
        pipe = Pipe(url.replace("//", "//app:s3cret@").replace("/0", "/4"))
        assert await pipe.execute("PING") == b"OK"
        assert fake.commands == [[b"AUTH", b"app", b"s3cret"], [b"SELECT", b"4"], [b"PING"]]
        await pipe.aclose()


async def test_a_refused_password_fails_the_command_and_leaves_no_socket_open() -> None:
    async with resp(lambda command: b"-WRONGPASS invalid password\r\n") as (fake, url):
        pipe = Pipe(url.replace("//", "//:nope@"))
        for _ in range(2):
            with pytest.raises(ResponseError, match="WRONGPASS"):
                await pipe.execute("PING")
        assert fake.connections == 2 and fake.names() == [b"AUTH", b"AUTH"]
        await pipe.aclose()


# ----------------------------------------------------------------------------- real Redis


async def test_scripts_run_by_sha_and_are_sent_whole_when_redis_forgot_them(
    redis_url: str,
) -> None:
    pipe = Pipe(redis_url)
    script = pipe.register_script("return {KEYS[1], ARGV[1]}")
    assert await script(["k"], ["a"]) == [b"k", b"a"]
    assert await pipe.execute("SCRIPT", "FLUSH") == b"OK"
    assert await script(["k"], [2]) == [b"k", b"2"]
    assert await script(["k"], [3]) == [b"k", b"3"]
    # the command's head is framed once for a tuple of keys, and again for other keys
    keyless = pipe.register_script("return {#KEYS, ARGV[1]}")
    assert await keyless(args=["a"]) == [0, b"a"]  # no keys at all, first: the one () tuple
    assert await keyless((), ["b"]) == [0, b"b"]
    one, two = ("k1",), ("k2", "k3")
    assert await script(one, [4]) == [b"k1", b"4"]
    assert await script(one, [5]) == [b"k1", b"5"]
    assert await script(two, [6]) == [b"k2", b"6"]
    assert await script(["k4"], [7]) == [b"k4", b"7"]
    assert await script(one, [8]) == [b"k1", b"8"]
    assert await script(("k5",), [9]) == [b"k5", b"9"]
    with pytest.raises(ResponseError):
        await pipe.register_script("return redis.call('NOPE')")([], [])
    await pipe.aclose()


async def test_a_set_up_whose_caller_was_cancelled_is_not_handed_out_once_it_broke() -> None:
    """The first command is cancelled while the socket's SELECT is unanswered; the set-up
    finishes anyway and serves later commands; when that socket breaks, the next command
    gets a new one, not the broken one its forgotten set-up made."""
    quiet = {"on": True}

    def answer(command: list[bytes]) -> bytes | None:
        if command[0] == b"SELECT":
            return None if quiet["on"] else b"+OK\r\n"
        return echo(command)

    async with resp(answer) as (fake, url):
        pipe = Pipe(url.replace("/0", "/4"))
        first = asyncio.ensure_future(pipe.execute("ECHO", "first"))
        await fake.read.wait()
        first.cancel()
        quiet["on"] = False
        fake.writers[0].write(b"+OK\r\n")  # SELECT answered, nobody waiting for the set-up
        await asyncio.sleep(0.05)
        assert await pipe.execute("ECHO", "second") == b"second"
        fake.writers[0].close()
        await asyncio.sleep(0.05)
        assert await pipe.execute("ECHO", "third") == b"third"
        assert fake.connections == 2
        await pipe.aclose()


async def test_a_socket_set_up_after_its_last_user_closed_is_closed_at_once() -> None:
    async with resp(lambda c: None if c[0] == b"SELECT" else echo(c)) as (fake, url):
        pipe = Pipe(url.replace("/0", "/4"))
        first = asyncio.ensure_future(pipe.execute("PING"))
        await fake.read.wait()
        first.cancel()
        await pipe.aclose()
        fake.writers[0].write(b"+OK\r\n")
        for _ in range(100):
            if fake.ended:
                break
            await asyncio.sleep(0.01)
        assert fake.ended == 1  # the client hung up: no socket left behind


async def test_each_command_failed_by_a_lost_socket_raises_its_own_error() -> None:
    """One error object raised in many tasks would collect every task's frames."""
    async with resp(lambda c: None) as (fake, url):
        pipe = Pipe(url)
        waiting = [asyncio.ensure_future(pipe.execute("ECHO", str(i))) for i in range(3)]
        await fake.read.wait()
        fake.writers[0].close()
        errors = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(e, RedisConnectionError) for e in errors)
        assert len({id(e) for e in errors}) == 3
        await pipe.aclose()


# asyncio.run closes its loop, not the sockets on it: the first loop's socket is left to the
# collector (which warns), in smsbridge as in any asyncio client
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_pipe_left_open_when_its_event_loop_ended_works_in_the_next() -> None:
    """A script that runs twice (two ``asyncio.run``) with one client it never closed."""
    server = RedisLike()
    pipe = Pipe(server.url)
    assert asyncio.run(pipe.execute("ECHO", "one")) == b"one"
    assert asyncio.run(pipe.execute("ECHO", "two")) == b"two"
    asyncio.run(pipe.aclose())
    server.stop()
    gc.collect()  # the first loop's socket, collected here under this test's warning filter


class RedisLike:
    """:class:`Resp` answering with :func:`echo`, on a thread of its own (for tests that run
    event loops of their own)."""

    def __init__(self) -> None:
        import threading

        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            fake = Resp(echo)
            server = self._loop.run_until_complete(asyncio.start_server(fake.serve, "127.0.0.1", 0))
            self.url = f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
            ready.set()
            self._loop.run_forever()
            for writer in fake.writers:
                writer.close()
            server.close()
            self._loop.run_until_complete(server.wait_closed())
            self._loop.run_until_complete(asyncio.sleep(0.01))  # the closes carried out
            self._loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(5)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.mark.parametrize(
    ("reply", "waits"),
    [
        ("ERR user_script:9: too many results to unpack", False),
        ("NOPERM this user has no permissions to run the 'evalsha' command", False),
        ("LOADING Redis is loading the dataset in memory", True),
        ("BUSY Redis is busy running a script", True),
        ("READONLY You can't write against a read only replica.", True),
        ("MISCONF Redis is configured to save RDB snapshots, but it's unable to persist", True),
        ("NOREPLICAS Not enough good replicas to write.", True),
        ("ERR max number of clients reached", True),
        (
            "ERR Error running script (call to f_1a2b): @user_script:3: -OOM command not allowed",
            True,
        ),
    ],
)
async def test_an_error_reply_that_will_recur_stops_at_once_one_that_may_pass_is_waited_out(
    reply: str, waits: bool
) -> None:
    clock = FakeClock(0.0)
    patience = Patience(30.0, clock)

    async def refused(keys: object, args: object) -> None:
        raise ResponseError(reply)

    with pytest.raises(StateBackendError) as caught:
        await patience.call(refused, (), ())
    assert reply in str(caught.value)
    assert clock.now() >= 30.0 if waits else clock.now() == 0.0


async def test_an_outage_is_counted_once_for_every_call_that_shares_it() -> None:
    """The patience counts from the outage's first failure, whichever call saw it: a call
    begun while Redis is still out after another gave up tries once (a stopped send's
    settling does not wait an outage per call); one begun after a quiet spell as long as
    the outage, or after Redis answered again, waits the whole outage."""
    clock = FakeClock(0.0)
    patience = Patience(30.0, clock)
    up = False

    async def call(keys: object, args: object) -> str:
        if up:
            return "OK"
        await clock.sleep(2.0)  # the socket's timeout
        raise RedisTimeoutError("no reply (test)")

    with pytest.raises(StateBackendError):
        await patience.call(call, (), ())
    assert 30.0 <= clock.now() < 33.0
    gave_up = clock.now()
    with pytest.raises(StateBackendError):
        await patience.call(call, (), ())
    assert clock.now() == gave_up + 2.0  # one try
    await clock.sleep(31.0)  # quiet
    began = clock.now()
    with pytest.raises(StateBackendError):
        await patience.call(call, (), ())
    assert clock.now() - began >= 30.0
    up = True
    assert await patience.call(call, (), ()) == "OK"
    up = False
    began = clock.now()
    with pytest.raises(StateBackendError):
        await patience.call(call, (), ())
    assert clock.now() - began >= 30.0
