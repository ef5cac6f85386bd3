"""A routed campaign's journal: intents name their gateway, a recovery settles each gateway
by its own rules and leaves the rest to a last conservative pass, and the counts per gateway
add up over every run. A journal written before gateways were kept opens and reads."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest

from smsbridge import ConfigurationError, Message, Router, SmsClub
from smsbridge._campaign import Campaign, Journal, recover_in_flight, run_routed_campaign
from smsbridge._campaign.run import endpoint_of
from smsbridge._core.models import Status
from smsbridge.testing import FakeSmsClub

from ..helpers import TOKEN

CAMPAIGN = Campaign(key="k", description="route UA=smsclub,webcom", total=6)


def test_each_gateway_recovers_by_its_own_rules(tmp_path: Path) -> None:
    now = [1000.0]
    journal = Journal(tmp_path / "c.journal", clock=lambda: now[0])
    journal.bind(CAMPAIGN, b"key")
    journal.start_run()
    journal.intend([0, 1], ["a", "b"], "webcom")
    journal.intend([2, 3], ["c", "d"], "smsclub")
    journal.intend([4], ["e"], "smsplus")
    journal.record([5], ["f"], [Status.ACCEPTED], ["m5"], "webcom")
    journal.close()  # the run dies with three requests in flight

    now[0] += 30
    journal = Journal(tmp_path / "c.journal", clock=lambda: now[0])
    journal.bind(CAMPAIGN, b"other")
    # Webcom repeats safely by its ids; SMS Club within its guard; SMSPlus is not in this run
    assert journal.recover(retry_safe=True, gateway="webcom") == (2, 2)
    assert journal.recover(retry_safe=False, guard=120.0, gateway="smsclub") == (2, 2)
    assert journal.recover(retry_safe=False) == (1, 0)
    assert journal.maybe_sent() == {0: ("webcom", None), 1: ("webcom", None)} | {
        2: ("smsclub", 30.0),
        3: ("smsclub", 30.0),
    }
    outcomes = {o.index: (o.status, o.gateway) for o in journal.outcomes()}
    assert outcomes == {4: (Status.UNCERTAIN, "smsplus"), 5: (Status.ACCEPTED, "webcom")}

    journal.start_run()
    journal.record([0, 1], ["a", "b"], [Status.ACCEPTED] * 2, ["m0", "m1"], "webcom")
    journal.record([2, 3], ["c", "d"], [Status.ACCEPTED] * 2, [None, None], "smsclub")
    journal.finish_run(7, False, {"webcom": 3, "smsclub": 4})
    by_gateway = journal.by_gateway()
    # the dead run's one announced request on each counts too
    assert (by_gateway["webcom"].accepted, by_gateway["webcom"].requests) == (3, 3 + 1)
    assert (by_gateway["smsclub"].accepted, by_gateway["smsclub"].requests) == (2, 4 + 1)
    assert journal.summary().left == 0 and journal.maybe_sent() == {}
    journal.close()


def test_a_journal_from_before_gateways_were_kept_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.journal"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE intents (id INTEGER PRIMARY KEY AUTOINCREMENT, indices BLOB NOT NULL,"
            " open INTEGER NOT NULL DEFAULT 1);"
            "CREATE TABLE maybe_sent (idx INTEGER PRIMARY KEY);"
            "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL NOT NULL,"
            " finished REAL, requests INTEGER NOT NULL DEFAULT 0,"
            " stopped INTEGER NOT NULL DEFAULT 0);"
            "INSERT INTO intents (indices) VALUES ('[[0],[\"a\"]]');"
        )
    journal = Journal(path)
    assert journal.recover(retry_safe=True) == (1, 1)
    assert journal.maybe_sent() == {0: (None, None)}
    assert journal.by_gateway() == {}
    journal.close()


async def test_in_flight_on_a_gateway_this_run_lacks_is_uncertain_not_sent_elsewhere(
    tmp_path: Path,
) -> None:
    """An earlier run had 100 UA recipients in flight on Webcom and died; this run has only
    SMS Club for UA. Those 100 end uncertain (they may have arrived through Webcom), SMS
    Club never sees them, and the other 100 go through SMS Club."""
    numbers = [f"38050{i:07d}" for i in range(200)]
    journal = Journal(tmp_path / "c.journal")
    journal.bind(CAMPAIGN, b"key")
    journal.start_run()
    journal.intend(list(range(100)), numbers[:100], "webcom")
    journal.close()
    journal = Journal(tmp_path / "c.journal")
    journal.bind(CAMPAIGN, b"key")
    assert journal.recover(retry_safe=True, gateway="webcom") == (100, 100)

    async def inline(function: Any, *args: Any) -> Any:
        return function(*args)

    async with (
        FakeSmsClub(tokens=[TOKEN], rate_limit=None) as fake,
        SmsClub(TOKEN, base_url=fake.url) as club,
    ):
        router = Router({"UA": [club]})
        report = await run_routed_campaign(
            router,
            Message(sender="Shop", text="Sale"),
            lambda: iter(enumerate(numbers)),
            journal=journal,
            send_key=b"key",
            stop=anyio.Event(),
            offload=inline,
        )
        sent = {m.phone for m in fake.record().sent}
    assert (report.uncertain, report.accepted) == (100, 100)
    assert sent == set(numbers[100:])
    outcomes = {o.index: o for o in journal.outcomes()}
    assert {outcomes[i].status for i in range(100)} == {Status.UNCERTAIN}
    assert all("webcom" in (outcomes[i].reason or "") for i in range(100))
    assert {outcomes[i].gateway for i in range(100)} == {"webcom"}  # where it may have gone
    journal.close()


def test_in_flight_recipients_are_sent_again_only_to_the_endpoint_they_went_to(
    tmp_path: Path,
) -> None:
    """A dead run had two recipients in flight on SMS Club at one URL. Resumed against the
    same URL and account (a trailing slash aside), they go again within the duplicate guard
    (its 453 tells); against another URL, with another token, or from a journal that did not
    note where they went, the endpoint knows nothing of the first copy: uncertain. So are
    those a resume to the first endpoint left to be sent again, should the next resume go
    elsewhere before they settle."""
    first = SmsClub(TOKEN, base_url="http://127.0.0.1:1")

    def dead_run(name: str, endpoint: str | None = endpoint_of(first)) -> Journal:
        journal = Journal(tmp_path / name)
        journal.bind(CAMPAIGN, b"key")
        journal.start_run()
        journal.intend([0, 1], ["380500000000", "380500000001"], "smsclub", endpoint)
        return journal

    same = dead_run("same.journal")
    assert recover_in_flight(same, SmsClub(TOKEN, base_url="http://127.0.0.1:1/")) == (2, 2)
    assert set(same.maybe_sent()) == {0, 1}
    elsewhere = SmsClub(TOKEN, base_url="http://127.0.0.1:2/")
    assert recover_in_flight(same, elsewhere) == (2, 0)  # the next resume went elsewhere
    assert {o.status for o in same.outcomes()} == {Status.UNCERTAIN}
    assert same.maybe_sent() == {}
    same.close()
    for name, client, noted in [
        ("moved.journal", elsewhere, endpoint_of(first)),
        (
            "token.journal",
            SmsClub("another-token", base_url="http://127.0.0.1:1/"),
            endpoint_of(first),
        ),
        ("unnoted.journal", first, None),
    ]:
        journal = dead_run(name, noted)
        assert recover_in_flight(journal, client) == (2, 0)
        assert {o.status for o in journal.outcomes()} == {Status.UNCERTAIN}
        journal.close()


def test_a_journal_serves_one_run_at_a_time(tmp_path: Path) -> None:
    """While a run holds a journal, a second run on it is refused (two would both send what
    neither had settled); once the first closes it, the next run may go. Reading the journal
    (``smsbridge journal``) needs no hold."""
    path = tmp_path / "c.journal"
    first = Journal(path, exclusive=True)
    with pytest.raises(ConfigurationError, match="another run is using the journal"):
        Journal(path, exclusive=True)
    Journal(path, create=False).close()
    first.close()
    Journal(path, exclusive=True).close()


def test_another_programs_database_is_no_journal_and_stays_as_it_was(tmp_path: Path) -> None:
    """A SQLite file of another program is refused, unchanged (it was given the journal's
    tables and switched to WAL, and read as an empty journal); a journal another program
    holds locked is said to be in use, not to be no journal (one might delete it)."""
    foreign = tmp_path / "app.db"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE users (id INTEGER)")
    db.commit()
    db.close()
    before = foreign.read_bytes()
    for create in (True, False):
        with pytest.raises(ConfigurationError, match=r"is not a journal: it holds other tables"):
            Journal(foreign, create=create)
    assert foreign.read_bytes() == before
    # tables of a journal's names, not a journal's (it was given columns and WAL), a view alone
    for name, schema, says in (
        ("runs.db", "CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT)", "no journal's"),
        ("outcomes.db", "CREATE TABLE intents (id INTEGER, what TEXT)", "not a journal's"),
        ("view.db", "CREATE VIEW v AS SELECT 1", "it holds views"),
        (
            "intents.db",
            "CREATE TABLE intents (id INTEGER, indices TEXT, open INT); CREATE VIEW v AS SELECT 1",
            "it holds views",
        ),
        ("keyless.db", "CREATE TABLE intents (id INTEGER, indices TEXT, open INT)", "not a jo"),
    ):
        other = tmp_path / name
        with sqlite3.connect(other) as db:
            db.executescript(schema)
        before = other.read_bytes()
        with pytest.raises(ConfigurationError, match=says):
            Journal(other, create=False)
        assert other.read_bytes() == before
    path = tmp_path / "c.journal"
    Journal(path).close()

    def locked(*args: Any, **kwargs: Any) -> Any:  # what sqlite says after its busy timeout
        raise sqlite3.OperationalError("database is locked")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite3, "connect", locked)
        with pytest.raises(ConfigurationError, match="is in use by another program"):
            Journal(path, create=False)
    Journal(path, create=False).close()
    with sqlite3.connect(path) as db:  # SQLite's own tables (ANALYZE's) are no other program's
        db.execute("ANALYZE")
    Journal(path, create=False).close()


def test_looking_at_a_journal_changes_nothing_in_it(tmp_path: Path) -> None:
    """`smsbridge journal FILE` only reads. An empty file (a text file, say) is no journal
    and stays empty (it was made a journal, and shown as an empty one). A journal an older
    version wrote, without the columns added since, is read as it is and left unchanged
    (it was altered). A journal that cannot be opened for a reason of the disk is said to
    be unusable, not no journal."""
    empty = tmp_path / "notes.txt"
    empty.write_bytes(b"")
    with pytest.raises(ConfigurationError, match=r"notes\.txt is not a journal: it is empty"):
        Journal(empty, create=False)
    assert empty.read_bytes() == b""

    older = tmp_path / "older.journal"
    journal = Journal(older)
    journal.bind(CAMPAIGN, b"key")
    journal.start_run()
    journal.record([0, 1], ["a", "b"], [Status.ACCEPTED, Status.FAILED], ["m0", "no"], "smsclub")
    journal.close()
    with sqlite3.connect(older) as db:  # as a version before the gateway columns wrote it
        for table in ("outcomes", "intents", "maybe_sent"):
            db.execute(f"ALTER TABLE {table} DROP COLUMN gateway")
    db.close()
    before = older.read_bytes()
    journal = Journal(older, create=False)
    try:
        seen = {o.index: (o.status, o.message_id, o.gateway) for o in journal.outcomes()}
        assert seen == {0: (Status.ACCEPTED, "m0", None), 1: (Status.FAILED, None, None)}
        assert journal.summary().counts.accepted == 1
    finally:
        journal.close()
    assert older.read_bytes() == before
    assert [p.name for p in tmp_path.glob("older*")] == ["older.journal"]  # nothing beside it

    # a name of any bytes, a path beginning with two slashes (no host), a medium SQLite
    # cannot write (a WAL journal cannot be opened even to read: a copy is read)
    odd = tmp_path / os.fsdecode(b"older \xff?#%41.journal")
    shutil.copyfile(older, odd)
    connect = sqlite3.connect

    def unwritable(where: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("uri"):
            raise sqlite3.OperationalError("unable to open database file")
        return connect(where, *args, **kwargs)

    for path, patched in ((odd, False), (Path("/" + str(odd)), False), (odd, True)):
        with pytest.MonkeyPatch.context() as patch:
            if patched:
                patch.setattr(sqlite3, "connect", unwritable)
            journal = Journal(path, create=False)
            try:
                assert journal.summary().counts.accepted == 1
            finally:
                journal.close()
        assert odd.read_bytes() == before

    def full(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("database or disk is full")

    for create in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sqlite3, "connect", full)
            with pytest.raises(ConfigurationError, match="could not be used: database or disk"):
                Journal(older, create=create)


def test_a_look_at_a_journal_a_run_holds_reads_what_the_run_wrote(tmp_path: Path) -> None:
    """A journal a run has open (its lock held, what it wrote still in SQLite's log beside
    the file): a look reads the log too, also through a link, whose log is beside the file
    it names; one no run holds is read as it stands, nothing written beside it."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").mkdir()
    path = tmp_path / "real" / "c.journal"
    link = tmp_path / "link" / "c.journal"
    link.symlink_to(path)
    with pytest.raises(ConfigurationError, match="a link to nothing"):
        Journal(link)
    path.touch()

    def accepted(name: Path) -> int:
        look = Journal(name, create=False)
        try:
            return look.summary().counts.accepted
        finally:
            look.close()

    run = Journal(link, exclusive=True)
    try:
        run.bind(CAMPAIGN, b"key")
        run.start_run()
        statuses = [Status.ACCEPTED, Status.ACCEPTED]
        run.record([0, 1], ["a", "b"], statuses, ["m0", "m1"], "smsclub")
        assert (tmp_path / "real" / "c.journal-wal").exists()
        assert accepted(link) == accepted(path) == 2
        connect = sqlite3.connect

        def unwritable(where: Any, *args: Any, **kwargs: Any) -> Any:  # a copy is read
            if kwargs.get("uri"):
                raise sqlite3.OperationalError("unable to open database file")
            return connect(where, *args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sqlite3, "connect", unwritable)
            assert accepted(link) == 2  # the copy takes the log beside the link's file
        os.unlink(tmp_path / "real" / "c.journal-shm")  # a log of one kind only: held still
        assert accepted(link) == 2
    finally:
        run.close()
    assert accepted(link) == accepted(path) == 2
    assert sorted(p.name for p in tmp_path.glob("*/*")) == ["c.journal", "c.journal"]


def test_a_run_killed_still_counts_the_requests_it_announced(tmp_path: Path) -> None:
    """A run counts each request it announces as it goes, in all and by gateway: one killed
    (kill -9: no end is written) left 0 requests in the campaign's total, which then said 3
    requests for 30 batches. A run that ends writes its exact count (retries included)."""
    journal = Journal(tmp_path / "c.journal")
    journal.bind(CAMPAIGN, b"key")
    journal.start_run()
    for index in range(3):
        journal.intend([index], [f"p{index}"], "smsclub")
    journal.close()  # killed

    journal = Journal(tmp_path / "c.journal")
    journal.bind(CAMPAIGN, b"key")
    journal.start_run()
    journal.intend([3], ["p3"], "smsclub")
    journal.finish_run(2, False, {"smsclub": 2})  # one request and a retry
    assert (journal.summary().counts.requests, journal.summary().runs) == (3 + 2, 2)
    assert journal.by_gateway()["smsclub"].requests == 3 + 2  # by gateway too
    journal.close()
