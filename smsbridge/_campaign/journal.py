"""The campaign journal: what was meant, and what happened, for every recipient.

SQLite (WAL, ``synchronous=FULL``, file mode 0600). Before a batch's first request its
recipients are written down as an *intent*; once their outcomes are known they are written
and the intent is closed, in one transaction. After a crash, an intent still open is a batch
that may or may not have reached the gateway: its recipients are recorded ``uncertain``,
unless the gateway makes a repeat safe (Webcom's ``client_id_sms``: the resumed run sends them
again with the same ids, kept in the journal as the campaign's send key).

A journal belongs to one campaign: provider, sender, text or template, and a digest of the
input. Opening it for another is refused.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import msgspec

from .._core.errors import ConfigurationError
from .._core.models import Counts, Outcome, Status

__all__ = ["FINAL", "SQLITE_FILES", "Campaign", "Journal", "JournalSummary"]

FINAL = (
    Status.ACCEPTED.value,
    Status.REJECTED.value,
    Status.SUPPRESSED.value,
    Status.UNCERTAIN.value,
)
"""Outcomes a resumed run never sends again; ``failed`` ones (surely unsent) are retried."""

SQLITE_FILES = ("-wal", "-shm", "-journal")
"""What SQLite keeps beside a database, after its name: its log, its shared memory, its
rollback journal."""

# a journal's tables, of every version
_TABLES = frozenset({"campaign", "intents", "outcomes", "maybe_sent", "id_ranges", "runs"})


def _missing(db: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """The columns of :data:`_ADDED` a journal of an older version lacks."""
    return [
        (table, column, kind)
        for table, column, kind in _ADDED
        if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    ]


def _add(db: sqlite3.Connection, columns: list[tuple[str, str, str]]) -> None:
    for table, column, kind in columns:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _unusable(path: Path, error: sqlite3.DatabaseError) -> ConfigurationError:
    """Why a journal cannot be opened, as the one line the command says."""
    text = str(error)
    if isinstance(error, sqlite3.OperationalError):
        if "locked" in text:
            return ConfigurationError(
                f"the journal {path} is in use by another program ({text}): try again once "
                "it is done"
            )
        # the disk full or failing, the file or its directory not writable: no verdict on
        # what the file is
        return ConfigurationError(f"the journal {path} could not be used: {text}")
    return ConfigurationError(f"{path} is not a journal: {text}")


def _foreign(db: sqlite3.Connection) -> str | None:
    """Why a database holds something other than a journal, if it does: tables of other
    names (SQLite's own ``sqlite_*`` aside), views or triggers alone, or tables of a
    journal's names without the columns every journal's have. An empty database is a new
    journal."""
    objects = db.execute(
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND type != 'index'"
    ).fetchall()
    tables = {name for kind, name in objects if kind == "table"}
    if tables - _TABLES:
        return f"it holds other tables ({', '.join(sorted(tables - _TABLES))})"
    if len(tables) < len(objects):  # a journal has no view nor trigger
        return f"it holds {', '.join(sorted({kind + 's' for kind, _ in objects} - {'tables'}))}"
    if tables and "intents" not in tables:
        return f"it holds no journal's intents ({', '.join(sorted(tables))})"
    if tables:
        # (cid, name, type, notnull, default, pk): a journal's intents are keyed by their id
        columns = {row[1]: row for row in db.execute("PRAGMA table_info(intents)")}
        if not {"id", "indices", "open"} <= columns.keys() or columns["id"][5] != 1:
            return "its intents are not a journal's"
    return None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaign (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key TEXT NOT NULL,
    description TEXT NOT NULL,
    send_key BLOB NOT NULL,
    total INTEGER,
    created REAL NOT NULL,
    reading TEXT
);
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    indices BLOB NOT NULL,
    open INTEGER NOT NULL DEFAULT 1,
    at REAL,
    gateway TEXT
);
CREATE INDEX IF NOT EXISTS intents_open ON intents (open);
CREATE TABLE IF NOT EXISTS outcomes (
    idx INTEGER PRIMARY KEY,
    phone TEXT NOT NULL,
    status TEXT NOT NULL,
    message_id TEXT,
    reason TEXT,
    at REAL,
    gateway TEXT
);
CREATE TABLE IF NOT EXISTS maybe_sent (
    idx INTEGER PRIMARY KEY,
    at REAL,
    gateway TEXT
);
CREATE TABLE IF NOT EXISTS id_ranges (
    key BLOB PRIMARY KEY,
    start INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL,
    requests INTEGER NOT NULL DEFAULT 0,
    stopped INTEGER NOT NULL DEFAULT 0,
    by_gateway TEXT
);
"""


_ADDED = (
    ("outcomes", "at", "REAL"),
    ("intents", "at", "REAL"),
    ("maybe_sent", "at", "REAL"),
    ("outcomes", "gateway", "TEXT"),
    ("intents", "gateway", "TEXT"),
    ("maybe_sent", "gateway", "TEXT"),
    ("runs", "by_gateway", "TEXT"),
    ("intents", "endpoint", "TEXT"),
    ("maybe_sent", "endpoint", "TEXT"),
    ("maybe_sent", "phone", "TEXT"),
    ("campaign", "reading", "TEXT"),
)


class Campaign(msgspec.Struct, frozen=True, kw_only=True):
    """What identifies a campaign: a digest over its inputs, and a readable description;
    ``reading``, how its input is read where that is not in the digest (which columns of a
    file), checked on a resume unless the journal began without it (an earlier version)."""

    key: str
    description: str
    total: int
    reading: str | None = None


class JournalSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A journal's state: counts over every run, recipients in all, and what is left."""

    description: str
    counts: Counts
    total: int | None
    left: int | None
    runs: int
    open_intents: int


class Journal:
    """A campaign journal in one SQLite file; use from one thread at a time. With
    ``exclusive``, the journal is held for one run at a time (a lock on the file, which the
    operating system drops with a killed process): a second run is a
    :class:`ConfigurationError`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        clock: Callable[[], float] = time.time,
        exclusive: bool = False,
    ) -> None:
        self.path = Path(path)
        self._now = clock
        self._lock: int | None = None
        self._run: int | None = None
        self._announced: dict[str, int] = {}  # this run's requests so far, by gateway
        # index -> (its open intent, that intent's pending recipients, the intent's time)
        self._open: dict[int, tuple[int, set[int], float]] = {}
        if not self.path.exists():
            if not create:
                raise ConfigurationError(f"no journal at {self.path}")
            if self.path.is_symlink():
                raise ConfigurationError(
                    f"{self.path} is a link to nothing: give a journal that exists, or a new name"
                )
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
        elif not create:
            self._db = self._reader = self._looked_at()
            return
        if exclusive:  # one run at a time: two would both send what neither had settled
            self._lock = os.open(self.path, os.O_RDONLY)
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._lock)
                raise ConfigurationError(
                    f"another run is using the journal {self.path}: wait for it to end"
                ) from None
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            why = _foreign(self._db)
            if why is not None:  # another program's database: left as it is
                self._db.close()
                raise sqlite3.DatabaseError(why)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            # a journal written before these had times, gateways, requests by gateway
            _add(self._db, _missing(self._db))
        except sqlite3.DatabaseError as e:
            if self._lock is not None:
                os.close(self._lock)
            raise _unusable(self.path, e) from None
        # a second connection for reads from another thread while writes go on (WAL)
        self._reader = sqlite3.connect(self.path, check_same_thread=False)

    def _beside(self, end: str) -> Path:
        """A file SQLite keeps beside the journal (``-wal``...): beside the file its name
        links to, where it is a link."""
        return Path(f"{os.path.realpath(self.path)}{end}")

    def _idle(self) -> bool:
        """Whether no run has the journal open: none holds its lock (a run's, on the file
        itself, whatever name it was given), and no log of SQLite's is beside the file it
        names (a link's target: where SQLite keeps them)."""
        if any(self._beside(end).exists() for end in SQLITE_FILES):
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # a run holds it
            return False
        finally:
            os.close(fd)  # the lock goes with it
        return True

    def _looked_at(self) -> sqlite3.Connection:
        """The journal opened to be read only: nothing in the file changes (a journal of an
        older version is brought up to date in a copy in memory)."""
        # any bytes of the name (os.fsencode), and an empty authority however many slashes
        # the path begins with (file://tmp/x would name a host)
        uri = f"file://{quote(os.fsencode(self.path.absolute()))}?mode=ro"
        if self._idle():
            # no run has it open: read as it stands, SQLite writes nothing beside it either
            # (a look at a WAL journal left its -wal and -shm)
            uri += "&immutable=1"
        try:
            copied = False
            try:
                db = sqlite3.connect(uri, uri=True, check_same_thread=False)
                db.execute("SELECT 1 FROM sqlite_master LIMIT 1")
            except sqlite3.OperationalError as e:
                # on a medium it cannot write, SQLite cannot open a WAL journal even to read
                # it (its index of the log is a file beside it): read a copy (only then: a
                # journal in use is not copied, which could catch it half written)
                if "unable to open" not in str(e) and "readonly" not in str(e):
                    raise
                db, copied = self._copied(), True
            why = _foreign(db)
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if why is None and "campaign" not in tables:
                why = "it is empty" if not tables else "it holds no campaign"
            if why is not None:
                db.close()
                raise sqlite3.DatabaseError(why)
            missing = _missing(db)
            if missing and not copied:  # brought up to date in memory, not in the file
                copy = sqlite3.connect(":memory:", check_same_thread=False)
                db.backup(copy)
                db.close()
                db = copy
            _add(db, missing)
        except sqlite3.DatabaseError as e:
            raise _unusable(self.path, e) from None
        except OSError as e:  # the copy could not be made
            raise ConfigurationError(
                f"the journal {self.path} could not be used: {e.strerror or e}"
            ) from None
        return db

    def _copied(self) -> sqlite3.Connection:
        """A copy of the journal (and of its log, if a run left one) in memory."""
        with tempfile.TemporaryDirectory(prefix="smsbridge-journal-") as place:
            copy = Path(place) / "journal"
            shutil.copyfile(self.path, copy)
            log = self._beside("-wal")
            if log.exists():
                shutil.copyfile(log, f"{copy}-wal")
            source = sqlite3.connect(copy)
            try:
                db = sqlite3.connect(":memory:", check_same_thread=False)
                source.backup(db)
            finally:
                source.close()
        return db

    def close(self) -> None:
        """Close the database (and give up the run's hold on it, if it has one)."""
        self._reader.close()
        self._db.close()
        lock, self._lock = self._lock, None
        if lock is not None:
            os.close(lock)  # the lock goes with it; a killed run's goes with its process

    # ----------------------------------------------------------------- campaign

    def bind(self, campaign: Campaign, send_key: bytes) -> bytes:
        """Tie the journal to ``campaign`` (first use) or check it is that one; returns the
        campaign's send key (the first run's, on a resume)."""
        row = self._db.execute(
            "SELECT key, description, send_key, reading FROM campaign"
        ).fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO campaign (id, key, description, send_key, total, created, reading) "
                "VALUES (1, ?, ?, ?, ?, ?, ?)",
                (
                    campaign.key,
                    campaign.description,
                    send_key,
                    campaign.total,
                    self._now(),
                    campaign.reading,
                ),
            )
            return send_key
        key, description, stored_key, reading = row
        if key != campaign.key:
            raise ConfigurationError(
                f"journal {self.path} belongs to another campaign ({description}); this one is "
                f"{campaign.description}. Use a new journal file for a new campaign."
            )
        if reading is not None and reading != campaign.reading:
            raise ConfigurationError(
                f"journal {self.path} read its input's {reading}; this run would read "
                f"{campaign.reading or 'the usual columns'}: give the same columns to resume"
            )
        return bytes(stored_key)

    def recover(
        self,
        *,
        retry_safe: bool,
        guard: float | None = None,
        gateway: str | None = None,
        endpoint: str | None = None,
    ) -> tuple[int, int]:
        """Settle the intents a previous run left open; returns how many recipients they held,
        and how many of them go again.

        Their recipients become ``uncertain`` (they may have been sent); where a repeat is
        safe they are left without an outcome so this run sends them again, through the same
        gateway: with the same ids (``retry_safe``), or within the gateway's duplicate guard,
        ``guard`` seconds from the intent (its refusal of the repeat then says the first one
        went). With ``gateway``, only the intents of that gateway (a routed campaign recovers
        each gateway by its own rules); without, all of them. With ``endpoint`` (the URL and
        account this run sends to), a repeat goes only where the first copy went: what was
        written to another endpoint, or to one not noted, is ``uncertain``, and so is what an
        earlier resume left to be sent again there and did not settle.
        """
        query = "SELECT id, indices, at, gateway, endpoint FROM intents WHERE open = 1"
        if gateway is None:
            rows = self._db.execute(query).fetchall()
        else:
            rows = self._db.execute(query + " AND gateway = ?", (gateway,)).fetchall()
        affected = again = 0
        now = self._now()
        with self._transaction():
            for intent_id, blob, at, on, written_to in rows:
                indices, phones = msgspec.json.decode(blob, type=tuple[list[int], list[str]])
                affected += len(indices)
                guarded = guard is not None and at is not None and now - at < guard
                elsewhere = endpoint is not None and written_to != endpoint
                if (retry_safe or guarded) and not elsewhere:
                    # sent again; should that fail, they are still uncertain
                    again += len(indices)
                    self._db.executemany(
                        "INSERT OR IGNORE INTO maybe_sent (idx, at, gateway, endpoint, phone) "
                        "VALUES (?, ?, ?, ?, ?)",
                        [
                            (i, None if retry_safe else at, on, written_to, phone)
                            for i, phone in zip(indices, phones, strict=True)
                        ],
                    )
                else:
                    self._uncertain(zip(indices, phones, strict=True), on, now, elsewhere)
                self._db.execute("UPDATE intents SET open = 0 WHERE id = ?", (intent_id,))
            if endpoint is not None:  # left to be sent again, by a resume to another endpoint
                done = ",".join("?" * len(FINAL))
                stale = self._db.execute(
                    "SELECT idx, COALESCE(phone, ''), gateway FROM maybe_sent "  # noqa: S608
                    "WHERE (endpoint IS NULL OR endpoint != ?) AND (? IS NULL OR gateway = ?) "
                    f"AND idx NOT IN (SELECT idx FROM outcomes WHERE status IN ({done}))",
                    (endpoint, gateway, gateway, *FINAL),
                ).fetchall()
                affected += len(stale)
                by_gateway: dict[str | None, list[tuple[int, str]]] = {}
                for index, phone, on in stale:
                    by_gateway.setdefault(on, []).append((index, phone))
                for on, recipients in by_gateway.items():
                    self._uncertain(recipients, on, now, True)
        return affected, again

    def _uncertain(
        self, recipients: Iterable[tuple[int, str]], gateway: str | None, now: float, moved: bool
    ) -> None:
        """In flight when a run died, and not to be repeated: ``uncertain`` (over ``failed``
        only: a final outcome stays)."""
        reason = (
            "in flight when an earlier run stopped, to another URL or account than this run's: "
            "may have been sent"
            if moved
            else "in flight when an earlier run stopped: may have been sent"
        )
        self._db.executemany(
            "INSERT INTO outcomes (idx, phone, status, reason, at, gateway) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(idx) DO UPDATE SET "
            "status = excluded.status, reason = excluded.reason, at = excluded.at, "
            "gateway = excluded.gateway WHERE outcomes.status = 'failed'",
            [(i, phone, Status.UNCERTAIN.value, reason, now, gateway) for i, phone in recipients],
        )

    def id_range(self, key: bytes) -> int | None:
        """The start of the id block ``key`` that an earlier run claimed, if any."""
        row = self._db.execute("SELECT start FROM id_ranges WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def keep_id_range(self, key: bytes, start: int) -> None:
        """Remember the id block ``key`` claimed at ``start``, durably, before any id of it
        is used."""
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO id_ranges (key, start) VALUES (?, ?)", (key, start)
            )

    def maybe_sent(self) -> dict[int, tuple[str | None, float | None]]:
        """Recipients an earlier run may have sent (in flight when it died) that are sent
        again, through the gateway they were in flight on (should this run fail them, they
        are still ``uncertain``): that gateway, and how long ago their request was about to
        be written where the repeat rests on the gateway's duplicate guard (``None`` where it
        rests on ids)."""
        done = ",".join("?" * len(FINAL))
        now = self._now()
        return {
            index: (gateway, None if at is None else now - at)
            for index, at, gateway in self._db.execute(
                "SELECT idx, at, gateway FROM maybe_sent WHERE idx NOT IN "  # noqa: S608
                f"(SELECT idx FROM outcomes WHERE status IN ({done}))",
                FINAL,
            )
        }

    def settled_since(self, seconds: float) -> tuple[set[int], set[int]]:
        """Recipients settled in the last ``seconds``: those ``accepted`` or ``uncertain``
        (a resumed run holds their messages in its duplicate window, as the dead run's window
        did), and those ``failed`` or ``rejected`` (a reservation the dead run left for them
        is dropped)."""
        rows = self._reader.execute(
            "SELECT idx, status FROM outcomes WHERE at >= ?", (self._now() - seconds,)
        )
        sent: set[int] = set()
        unsent: set[int] = set()
        for index, status in rows:
            if status in (Status.ACCEPTED.value, Status.UNCERTAIN.value):
                sent.add(index)
            elif status in (Status.FAILED.value, Status.REJECTED.value):
                unsent.add(index)
        return sent, unsent

    def quiet_for(self, span: float) -> float:
        """Seconds to wait before this run's first request so that no window of ``span``
        holds requests of an earlier run and of this one: ``span`` after an earlier run that
        died (its last request is unknown), ``span`` after the finish of one that ended."""
        row = self._db.execute(
            "SELECT started, finished FROM runs WHERE id < COALESCE(?, 1 << 62) "
            "ORDER BY id DESC LIMIT 1",
            (self._run,),
        ).fetchone()
        if row is None:
            return 0.0
        finished = row[1]
        if finished is None:
            return span  # it died; its last request may have been a moment ago
        return max(0.0, float(finished) + span - self._now())

    # ----------------------------------------------------------------- runs

    def start_run(self) -> None:
        """Note the start of a run."""
        self._run = self._db.execute(
            "INSERT INTO runs (started) VALUES (?)", (self._now(),)
        ).lastrowid
        self._announced = {}

    def finish_run(
        self, requests: int, stopped: bool, by_gateway: Mapping[str, int] | None = None
    ) -> None:
        """Note the end of the current run and the requests it made (on each gateway, for a
        routed campaign). Until then a run counts the requests it announced (:meth:`intend`;
        not their retries), in all and by gateway, which is what a run killed leaves."""
        spread = None if by_gateway is None else msgspec.json.encode(dict(by_gateway)).decode()
        self._db.execute(
            "UPDATE runs SET finished = ?, requests = ?, stopped = ?, by_gateway = ? WHERE id = ?",
            (self._now(), requests, int(stopped), spread, self._run),
        )

    # ----------------------------------------------------------------- batches

    def intend(
        self,
        indices: Sequence[int],
        phones: Sequence[str],
        gateway: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        """Write down (durably) a batch about to be sent through ``gateway`` to ``endpoint``
        (its URL and account). Recipients an
        open intent already holds (a part of a request that may have gone, sent again) move
        to this one, which keeps the earliest time: a repeat's safety is counted from the
        first copy."""
        blob = msgspec.json.encode((list(indices), list(phones)))
        at = self._now()
        closing: list[int] = []
        for index in indices:
            entry = self._open.get(index)
            if entry is not None:
                parent, pending, since = entry
                at = min(at, since)
                pending.discard(index)
                if not pending:
                    closing.append(parent)
        with self._transaction():
            intent_id = self._db.execute(
                "INSERT INTO intents (indices, at, gateway, endpoint) VALUES (?, ?, ?, ?)",
                (blob, at, gateway, endpoint),
            ).lastrowid
            self._db.executemany(
                "UPDATE intents SET open = 0 WHERE id = ?", [(i,) for i in closing]
            )
            if self._run is not None:  # counted as it goes: a run killed never finishes
                if gateway is not None:
                    self._announced[gateway] = self._announced.get(gateway, 0) + 1
                spread = msgspec.json.encode(self._announced).decode() if self._announced else None
                self._db.execute(
                    "UPDATE runs SET requests = requests + 1, by_gateway = ? WHERE id = ?",
                    (spread, self._run),
                )
        assert intent_id is not None
        pending = set(indices)
        for index in indices:
            self._open[index] = (intent_id, pending, at)

    def unsent(self, indices: Sequence[int]) -> None:
        """Close the intent of a batch the gateway proved it did not process: its recipients
        are pending again (a resume sends them)."""
        closing: set[int] = set()
        for index in indices:
            entry = self._open.pop(index, None)
            if entry is not None:
                intent_id, pending, _ = entry
                pending.discard(index)
                closing.add(intent_id)
        self._db.executemany("UPDATE intents SET open = 0 WHERE id = ?", [(i,) for i in closing])

    def record(
        self,
        indices: Sequence[int],
        phones: Sequence[str],
        statuses: Sequence[Status],
        details: Sequence[str | None],
        gateway: str | None = None,
    ) -> None:
        """Write outcomes, and close the intents they complete, in one transaction."""
        at = self._now()
        rows = [
            (
                i,
                p,
                s.value,
                d if s is Status.ACCEPTED else None,
                None if s is Status.ACCEPTED else d,
                at,
                gateway,
            )
            for i, p, s, d in zip(indices, phones, statuses, details, strict=True)
        ]
        closing: list[int] = []
        for index in indices:
            entry = self._open.pop(index, None)
            if entry is not None:
                intent_id, pending, _ = entry
                pending.discard(index)
                if not pending:
                    closing.append(intent_id)
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO outcomes "
                "(idx, phone, status, message_id, reason, at, gateway) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._db.executemany(
                "UPDATE intents SET open = 0 WHERE id = ?", [(i,) for i in closing]
            )

    def done_between(self, low: int, high: int) -> set[int]:
        """Indices in ``[low, high)`` whose outcome is final (on the reading connection)."""
        marks = ",".join("?" * len(FINAL))
        rows = self._reader.execute(
            f"SELECT idx FROM outcomes WHERE idx >= ? AND idx < ? AND status IN ({marks})",  # noqa: S608
            (low, high, *FINAL),
        )
        return {row[0] for row in rows}

    # ----------------------------------------------------------------- reading

    def summary(self) -> JournalSummary:
        """Counts over every run, and what is left."""
        by_status = dict(
            self._db.execute("SELECT status, COUNT(*) FROM outcomes GROUP BY status").fetchall()
        )
        requests = self._db.execute(
            "SELECT COALESCE(SUM(requests), 0), COUNT(*) FROM runs"
        ).fetchone()
        campaign = self._db.execute("SELECT description, total FROM campaign").fetchone()
        open_intents = self._db.execute("SELECT COUNT(*) FROM intents WHERE open = 1").fetchone()[0]
        counts = Counts(
            accepted=by_status.get("accepted", 0),
            rejected=by_status.get("rejected", 0),
            suppressed=by_status.get("suppressed", 0),
            failed=by_status.get("failed", 0),
            uncertain=by_status.get("uncertain", 0),
            requests=requests[0],
        )
        total = campaign[1] if campaign else None
        final = sum(by_status.get(s, 0) for s in FINAL)
        return JournalSummary(
            description=campaign[0] if campaign else "(empty journal)",
            counts=counts,
            total=total,
            left=None if total is None else total - final,
            runs=requests[1],
            open_intents=open_intents,
        )

    def by_gateway(self) -> dict[str, Counts]:
        """Each gateway's counts over every run: the outcomes it gave (a recipient counted
        where it ended) and the requests made on it."""
        counts: dict[str, dict[str, int]] = {}
        for gateway, status, n in self._db.execute(
            "SELECT gateway, status, COUNT(*) FROM outcomes WHERE gateway IS NOT NULL "
            "GROUP BY gateway, status"
        ):
            counts.setdefault(gateway, {})[status] = n
        for (spread,) in self._db.execute(
            "SELECT by_gateway FROM runs WHERE by_gateway IS NOT NULL"
        ):
            for gateway, requests in msgspec.json.decode(spread, type=dict[str, int]).items():
                per = counts.setdefault(gateway, {})
                per["requests"] = per.get("requests", 0) + requests
        return {gateway: Counts(**per) for gateway, per in sorted(counts.items())}

    def outcomes(
        self, statuses: Iterable[str] = (*FINAL, Status.FAILED.value)
    ) -> Iterator[Outcome]:
        """The outcomes with these statuses (all by default), in input order, streamed."""
        wanted = list(statuses)
        marks = ",".join("?" * len(wanted))
        rows = self._reader.execute(
            f"SELECT idx, phone, status, message_id, reason, gateway FROM outcomes "  # noqa: S608
            f"WHERE status IN ({marks}) ORDER BY idx",
            wanted,
        )
        for index, phone, status, message_id, reason, gateway in rows:
            yield Outcome(
                index=index,
                phone=phone,
                status=Status(status),
                message_id=message_id,
                reason=reason,
                gateway=gateway,
            )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
