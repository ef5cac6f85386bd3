"""The duplicate window and the id ranges shared through Redis."""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
from collections.abc import Awaitable, Callable, Hashable, Sequence
from functools import partial
from hashlib import blake2b
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from .._core.clock import Clock
from .._core.errors import ConfigurationError, StateBackendError
from .._core.gateway import Batch
from .._core.window import SLACK, Claim, extra_hold, key_fields
from .._resp import Pipe, Run
from .patience import Patience
from .scripts import CLAIM, COMMIT, HOLD, RELEASE, RESERVE, UNHOLD

__all__ = ["RedisRanges", "RedisWindow", "key_head"]


class RedisWindow:
    """The duplicate window in Redis: one Lua script per batch to reserve, commit or release.

    Entries are fields of a few hashes per account (one per bucket of the server's clock, a
    bucket as long as an entry lives, see the scripts), named by a keyed BLAKE2b (16 bytes) of
    :func:`~smsbridge._core.window.key_fields` under a key derived from the account's
    credentials, so neither numbers nor texts are stored, and all processes of the account
    compute the same fields. Values name the holder and recipient, so a retry of a
    reservation the server carried out after the client gave up finds it its own.

    Every process of an account should use the same ``ttl``: a window looks back as far as
    its own entries live.

    Args:
        client: a Redis client (``register_script``).
        namespace: the account's key prefix.
        secret: the key of the fields' hash (the client derives it from the credentials).
        ttl: seconds a sent (text, number) pair stays blocked.
        slack: seconds a reservation outlasts the TTL (see
            :class:`~smsbridge.MemoryWindow`).
        outage: seconds to keep retrying while Redis is unreachable before giving up.
        patience: waits out an outage for this and the account's other state in Redis,
            so that it is counted once for all of them (``outage`` is then unused).
        clock: time source for the waits between tries.
    """

    def __init__(
        self,
        client: Any,
        namespace: str,
        secret: bytes,
        ttl: float = 120.0,
        *,
        slack: float = SLACK,
        outage: float = 30.0,
        clock: Clock | None = None,
        patience: Patience | None = None,
    ) -> None:
        if not (ttl > 0 and math.isfinite(ttl)) or not (slack >= 0 and math.isfinite(slack)):
            raise ConfigurationError("ttl must be positive and slack not negative")
        if ttl > _LONGEST:  # an entry's "until" is 13 digits of milliseconds
            raise ConfigurationError("window_ttl through Redis is at most a year (31,536,000 s)")
        if ttl < 0.001:  # whole milliseconds there: less would hold nothing
            raise ConfigurationError(
                "window_ttl through Redis is at least a millisecond (0 turns the window off)"
            )
        self.ttl = ttl
        self.slack = slack
        # buckets twice the TTL, at least 2^17 ms, a power of two, so that processes of the
        # account whose TTL is nearly the same share them whatever their slack (their read
        # timeouts); an entry lives at most a bucket, so it is in the current one or the one
        # before, and a call reads those two whoever wrote it
        self._span = max(1 << 17, 1 << (int(2 * ttl * 1000) - 1).bit_length())
        longest = self._span / 1000 - ttl
        if slack > longest:
            raise ConfigurationError(
                f"a duplicate window of {ttl:g} s through Redis holds a reservation at most "
                f"{longest:g} s past the TTL, and this client's read timeout and 5 s make "
                f"{slack:g}: give a read timeout of at most {longest - 5:g} s, or a longer "
                "window_ttl"
            )
        self._hashes = (f"{namespace}:w:{self._span.bit_length() - 1}:",)
        self._framed = isinstance(client, Pipe)  # smsbridge's own connection frames the fields once
        self._blake = partial(blake2b, key=secret[:64], digest_size=_DIGEST)
        self._ttl_ms = int(ttl * 1000)
        self._reserve_ms = int((ttl + slack) * 1000)
        self._reserve = client.register_script(RESERVE)
        self._commit = client.register_script(COMMIT)
        self._release = client.register_script(RELEASE)
        self._hold = client.register_script(HOLD)
        self._unhold = client.register_script(UNHOLD)
        self._leases = f"{namespace}:run:"
        self._patience = patience or Patience(outage, clock)
        # releases Redis did not take (out of reach past the outage): a reservation made
        # then, or carried out when a frozen Redis woke, would hold its keys until it lapses
        # (TTL and slack), and the next send of them would wait that long
        self._unreleased: list[tuple[Sequence[Hashable], str, Sequence[int]]] = []
        self._unreleased_keys = 0
        self._replaying: asyncio.Future[None] | None = None  # while they are being done

    def __repr__(self) -> str:
        return f"RedisWindow({self._hashes[0][:-3]!r}, ttl={self.ttl})"

    def keys(self, sender: str, text: str | None, batch: Batch) -> list[Hashable]:
        """A 16-byte keyed hash per recipient (the field of its entry)."""
        base = self._blake()  # the secret's block taken in once, the state copied
        copy = base.copy
        out = _Fields()
        append = out.append
        if batch.texts is None and batch.parameters is None:  # one text for all: hashed once
            base.update(key_head(sender, text or "", ()))
            for phone in batch.phones:
                h = copy()
                h.update(phone.encode())
                append(h.digest())
        else:
            for sender_, text_, params, phone in key_fields(sender, text, batch):
                h = copy()
                h.update(key_head(sender_, text_, params, phone))
                append(h.digest())
        out.framed()
        return out

    async def reserve(
        self, keys: Sequence[Hashable], holder: str, indices: Sequence[int]
    ) -> list[Claim]:
        """Claim each key for its recipient; see :class:`~smsbridge._core.window.Claim`."""
        if len(keys) != len(indices):
            raise ValueError("one index per key")
        if self._unreleased or self._replaying is not None:
            await self._release_unreleased()
        text = await self._claims(keys, holder, indices)
        if self._unreleased and text.count("0") != len(text):
            # left for Redis was out of reach; it answered now, and what holds these keys
            # may be among them: done, then asked again (what this run holds stays its own)
            await self._release_unreleased()
            text = await self._claims(keys, holder, indices)
        return list(map(_CLAIMS.__getitem__, text))

    async def _claims(self, keys: Sequence[Hashable], holder: str, indices: Sequence[int]) -> str:
        """The reservation's answer, a digit per key (see ``_CLAIMS``)."""
        replies = await self._call(self._reserve, self._reserve_ms, holder, keys, indices)
        return "".join(r.decode() if isinstance(r, bytes) else str(r) for r in replies)

    async def commit(
        self,
        keys: Sequence[Hashable],
        holder: str,
        indices: Sequence[int],
        extra: float = 0.0,
    ) -> None:
        """Hold for a full TTL (and ``extra`` seconds, at most the slack) from now."""
        if keys:
            more = round(extra_hold(extra, self.slack) * 1000)
            await self._call(self._commit, self._ttl_ms + more, holder, keys, indices)

    async def release(self, keys: Sequence[Hashable], holder: str, indices: Sequence[int]) -> None:
        """Drop the reservations that are still this run's (a bare send key: any run's of
        that send); see :meth:`~smsbridge.DuplicateWindow.release`."""
        if not keys:
            return
        try:
            await self._call(self._release, self._reserve_ms, holder, keys, indices)
        except (StateBackendError, asyncio.CancelledError) as e:
            # out of reach, or given up on (refused, it would be refused again): a run's own
            # (not a bare send key's: a later run of the send may hold them by then) are
            # dropped when Redis answers again, before this window's next reserve
            if (
                "/" in holder
                and not isinstance(e.__cause__, ResponseError)
                and self._unreleased_keys + len(keys) <= _UNRELEASED
            ):
                self._unreleased.append((keys, holder, indices))
                self._unreleased_keys += len(keys)
            raise

    async def _release_unreleased(self) -> None:
        """Drop the reservations whose release failed, one try each, unless Redis is still
        out of reach as far as this account knows (they wait for the next reserve then, or
        lapse). A reserve that comes meanwhile waits for them: it could find their keys held
        (and an earlier run's reservation is taken over as uncertain)."""
        while (replaying := self._replaying) is not None:
            await asyncio.shield(replaying)
        if not self._unreleased or self._patience.out_of_reach():
            return
        pending, self._unreleased, self._unreleased_keys = self._unreleased, [], 0
        replaying = self._replaying = asyncio.get_running_loop().create_future()
        try:
            while pending:
                keys, holder, indices = pending[-1]
                with contextlib.suppress(ResponseError):  # refused: would be again; they lapse
                    await self._call(
                        self._release, self._reserve_ms, holder, keys, indices, once=True
                    )
                pending.pop()
        except (RedisError, OSError):
            pass
        finally:  # also when cancelled: what is left is tried again
            self._replaying = None
            replaying.set_result(None)
            if pending:
                self._unreleased[:0] = pending
                self._unreleased_keys += sum(len(p[0]) for p in pending)

    async def _call(
        self,
        script: Callable[..., Awaitable[Any]],
        ms: int,
        holder: str,
        keys: Sequence[Hashable],
        indices: Sequence[int],
        *,
        once: bool = False,
    ) -> list[Any]:
        """The script's replies over the batch, a thousand recipients a call (Lua's
        ``unpack`` takes no more than a few thousand at once); ``once``: no second try."""
        replies = []
        whole = len(keys) <= _CHUNK  # a batch as packed: no copies held across the call
        for at in range(0, len(keys), _CHUNK):
            chunk = keys if whole else keys[at : at + _CHUNK]
            chosen = indices if whole else indices[at : at + _CHUNK]
            args: list[Any] = [ms, holder, _joined(chosen), "", self._span]
            if self._framed:
                args.append(chunk.run() if type(chunk) is _Fields else Run(chunk))  # type: ignore[arg-type]
            else:
                args += chunk
            if once:
                replies.append(await script(self._hashes, args))
            else:
                replies.append(await self._patience.call(script, self._hashes, args))
        return replies

    async def hold(self, name: str, run: str, seconds: float) -> bool:
        """Take or renew the lease ``name`` for ``run`` (see
        :meth:`~smsbridge.DuplicateWindow.hold`); on the server's clock."""
        taken = await self._patience.call(
            self._hold, [self._leases + name], [run, math.ceil(seconds * 1000)]
        )
        return bool(int(taken))

    async def unhold(self, name: str, run: str) -> None:
        """Drop the lease ``name`` if ``run`` holds it."""
        await self._patience.call(self._unhold, [self._leases + name], [run])


class RedisRanges:
    """An account's id ranges in Redis: one counter for every process and host of the account,
    and each block's start remembered for ``remember`` seconds (30 days), so that a send
    repeated with the same key gets the same ids.

    Args:
        client: a ``redis.asyncio.Redis``.
        namespace: the account's key prefix.
        outage: seconds to keep retrying while Redis is unreachable before giving up.
        patience: waits out an outage for this and the account's other state in Redis,
            so that it is counted once for all of them (``outage`` is then unused).
        clock: time source for the waits between tries.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        namespace: str,
        *,
        remember: float = 30 * 86400.0,
        outage: float = 30.0,
        clock: Clock | None = None,
        patience: Patience | None = None,
    ) -> None:
        self._counter = f"{namespace}:ids"
        self._prefix = f"{namespace}:ids:"
        self._remember = int(remember)
        self._claim = client.register_script(CLAIM)
        self._patience = patience or Patience(outage, clock)

    async def claim(self, key: bytes, count: int, size: int) -> int:
        """See :meth:`~smsbridge._core.ranges.IdRanges.claim`."""
        keys = [self._counter, self._prefix + key.hex()]
        # a counter Redis lost (a restart without persistence, a flush) starts again from a
        # random point, as in memory, not from 0: ids handed out before would be repeated,
        # and a gateway answers a repeated id with the old message, sending nothing
        args = [count, size, self._remember, secrets.randbelow(size)]
        start = await self._patience.call(self._claim, keys, args)
        return int(start)


class _Fields(list[Hashable]):
    """A batch's fields, as :meth:`RedisWindow.keys` made them, framed for the wire at once,
    for its reservation and its commit alike. The core never changes a batch's keys; a list
    grown or cut since is framed again (a part of it, sliced, is a plain list)."""

    __slots__ = ("_run",)

    def __init__(self) -> None:
        super().__init__()
        self._run: Run | None = None

    def framed(self) -> None:
        """Frame the fields made (each 16 bytes: framed without a step per field)."""
        digests: list[bytes] = self  # type: ignore[assignment]
        head = _FIELD_HEAD
        framed = head + (b"\r\n" + head).join(digests) + b"\r\n" if digests else b""
        self._run = Run.of(framed, len(digests))

    def run(self) -> Run:
        """The fields, framed."""
        run = self._run
        if run is None or run.count != len(self):
            run = self._run = Run(self)  # type: ignore[arg-type]
        return run


_DIGEST = 16  # bytes of a field's hash
_FIELD_HEAD = b"$%d\r\n" % _DIGEST  # a field's framing before it (as Run frames a string)
_CHUNK = 1000  # recipients per window call
_UNRELEASED = 100_000  # keys of failed releases kept to drop later (the rest lapse)
_EXACT = 10**13  # indices a run in Lua may reach: its numbers are doubles, written by %.14g
_LONGEST = 365 * 86400.0  # seconds a window entry may hold

_CLAIMS = {"0": Claim.OURS, "1": Claim.SENT, "2": Claim.PENDING, "3": Claim.EARLIER}


def _joined(indices: Sequence[int]) -> str:
    """Recipients' indices as the window scripts read them: ``"<first>+<count>"`` for a run
    of consecutive ones (a batch as it was packed), else comma-separated."""
    count = len(indices)
    if count > 2:
        first = indices[0]
        if (
            type(first) is int  # not True, whose run Lua would read as one index
            and first >= 0
            and indices[-1] - first == count - 1
            and first + count < _EXACT  # Lua's numbers write it digit for digit
            and list(range(first, first + count)) == indices
        ):
            return f"{first}+{count}"
    return ",".join(map(str, indices))


def key_head(sender: str, text: str, params: tuple[str, ...], phone: str = "") -> bytes:
    """What a recipient's field hashes: the key fields as unambiguous bytes (NUL between
    fields, US between parameters, or each counted where those would not tell two sets of
    parameters apart), then its number (or nothing: the head several numbers share). A text
    no gateway can carry (a lone surrogate) is rejected before any key is made; should one
    come, it still hashes (as every version did) rather than break the send."""
    values = "\x1f".join(params)
    if params and (
        values.count("\x1f") >= len(params) or "\x1e" in values or (not values and len(params) == 1)
    ):
        # what the US join cannot tell apart (no parameter from one empty one, a US inside
        # a parameter from two): each length-counted, after an RS no US join begins with
        values = "\x1e" + "".join(f"{len(p)}:{p}" for p in params)
    joined = f"{sender}\x00{text}\x00{values}\x00{phone}"
    return joined.encode("utf-8", "surrogatepass")
