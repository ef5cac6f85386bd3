"""The `smsbridge` command against fake gateways in their own processes: the send contract,
exit statuses, --json, journals and resuming, Ctrl-C. The installed script runs as a
subprocess where the process itself is under test (it exists, one send end to end, Ctrl-C);
elsewhere ``main()`` runs in-process, which is the same code without an interpreter's start-up."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from smsbridge import (
    AuthenticationError,
    SendInProgressError,
    SmsBridgeError,
    StateBackendError,
)
from smsbridge._cli.send import stopped_by
from smsbridge.testing import FakeProcess, FakeSmsClub, FakeSmsPlus, FakeWebcom

from ..helpers import (
    EXE,
    TOKEN,
    ainvoke,
    arun,
    clean_env,
    csv_file,
    invoke,
    last_json,
    read_all,
    run,
)


@pytest.fixture
async def smsclub() -> AsyncIterator[tuple[FakeSmsClub, dict[str, str]]]:
    """A fake SMS Club on this test's loop and the environment that points the command at
    it (the command runs in a thread or a process of its own)."""
    async with FakeSmsClub(tokens=[TOKEN], rate_limit=None) as fake:
        yield fake, {"SMSBRIDGE_SMSCLUB_TOKEN": TOKEN, "SMSBRIDGE_SMSCLUB_URL": fake.url}


def test_console_script_is_installed() -> None:
    """`smsbridge` exists next to this Python and answers --help."""
    result = run("--help")
    assert result.returncode == 0
    assert "send" in result.stdout and "journal" in result.stdout


async def test_send_with_json_counts(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """--to and a bare-number file together; the last stdout line is the JSON counts."""
    fake, env = smsclub
    numbers = csv_file(tmp_path / "n.txt", [f"38050{i:07d}" for i in range(150)] + ["oops"], None)
    result = await arun(
        "send",
        "smsclub",
        "--sender",
        "Shop",
        "--text",
        "Sale",
        "--to",
        "+380 67 000 0001",
        "--to-file",
        str(numbers),
        "--rate",
        "100",
        "--json",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert last_json(result) == {
        "accepted": 151,
        "rejected": 1,
        "suppressed": 0,
        "failed": 0,
        "uncertain": 0,
        "requests": 2,
    }
    record = fake.record()
    assert {m.phone for m in record.sent} == {"380670000001"} | {
        f"38050{i:07d}" for i in range(150)
    }


async def test_personal_texts_from_a_csv_and_a_readable_summary(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """A `text` column personalises; without --json a person gets a summary."""
    fake, env = smsclub
    rows = [f'38050{i:07d},"Hi, friend {i}"' for i in range(30)]
    path = csv_file(tmp_path / "p.csv", rows, "phone,text")
    result = await ainvoke("send", "smsclub", "--sender", "Shop", "--to-file", str(path), env=env)
    assert result.returncode == 0, result.stderr
    assert "accepted" in result.stdout and "30" in result.stdout
    record = fake.record()
    assert {m.phone: m.text for m in record.sent} == {
        f"38050{i:07d}": f"Hi, friend {i}" for i in range(30)
    }


def _spools() -> set[Path]:
    """The copies of standard input (or of a pipe) the command has left in the temp folder."""
    return set(Path(tempfile.gettempdir()).glob("smsbridge-stdin-*"))


async def test_a_pipe_as_the_input_file_is_read_once_and_sent(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """``--to-file <(...)`` names a pipe, which was refused as "no such file" (it is no
    regular file); it is copied once, as standard input is, and the copy removed."""
    fake, env = smsclub
    pipe = tmp_path / "numbers"
    os.mkfifo(pipe)
    numbers = [f"38050{i:07d}" for i in range(250)]

    def write() -> None:
        with contextlib.suppress(BrokenPipeError), pipe.open("w") as stream:
            stream.write("\n".join(numbers) + "\n")

    writer = threading.Thread(target=write)
    writer.start()
    spools = _spools()
    args = ["send", "smsclub", "--sender", "Shop", "--text", "Hi", "--to-file", str(pipe)]
    result = await ainvoke(*args, "--json", env=env)
    if writer.is_alive():  # the pipe was never opened: let the writer go
        os.close(os.open(pipe, os.O_RDONLY | os.O_NONBLOCK))
    writer.join()
    assert result.returncode == 0, result.stderr
    assert last_json(result)["accepted"] == 250
    assert sorted(m.phone for m in fake.record().sent) == numbers
    assert _spools() == spools


async def test_a_run_killed_while_it_sends_from_standard_input_leaves_no_copy(
    tmp_path: Path,
) -> None:
    """Standard input is copied to be read more than once; the copy holds the caller's
    numbers. A run killed (kill -9) left it in the temp folder; now it has no name there
    once made (it is read through its descriptor), and the run killed leaves nothing."""
    async with FakeProcess("smsclub", "--token", TOKEN) as fake:
        env = {"SMSBRIDGE_SMSCLUB_TOKEN": TOKEN, "SMSBRIDGE_SMSCLUB_URL": fake.url}
        args = ["send", "smsclub", "--sender", "Shop", "--text", "Sale", "--to-file", "-"]
        spools = _spools()
        proc = await anyio.open_process([str(EXE), *args], env=clean_env(**env))
        assert proc.stdin is not None
        await proc.stdin.send("".join(f"38050{i:07d}\n" for i in range(3000)).encode())
        await proc.stdin.aclose()
        with anyio.fail_after(30):
            while await fake.count() < 2:  # at 9 a second: well before the end
                assert proc.returncode is None, "ended before the kill"
                await anyio.sleep(0.02)
        assert _spools() == spools  # no name while it runs
        proc.kill()
        await proc.wait()
    assert _spools() == spools


async def test_failed_recipients_exit_1(smsclub: tuple[FakeSmsClub, dict[str, str]]) -> None:
    """A wrong token fails everyone: exit status 1, counts still printed."""
    _, env = smsclub
    env = {**env, "SMSBRIDGE_SMSCLUB_TOKEN": "wrong"}
    result = await ainvoke(
        "send",
        "smsclub",
        "--sender",
        "Shop",
        "--text",
        "x",
        "--to",
        "380501234567",
        "--json",
        env=env,
    )
    assert result.returncode == 1
    assert last_json(result)["failed"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["send", "smsclub", "--text", "x", "--to", "1"], "--sender"),
        (["send", "nope", "--sender", "S"], "invalid choice"),
        (["send", "smsclub", "--sender", "S", "--to", "380501234567"], "give --text"),
        (["send", "smsplus", "--sender", "S", "--text", "x", "--to", "1"], "--template"),
        (["send", "smsclub", "--sender", "S", "--text", "x"], "no recipients"),
        (
            ["send", "smsclub", "--sender", "S", "--text", "x", "--to-file", "/nope.csv"],
            "no such file",
        ),
        (
            ["send", "smsclub", "--sender", "S", "--text", "x", "--to-file", "/"],
            "/ is a directory, not a file",
        ),
        (
            ["send", "smsclub", "--sender", "S", "--text", "x", "--to", "1"],
            "SMSBRIDGE_SMSCLUB_TOKEN",
        ),
        (
            ["send", "smsclub", "--sender", "A sender much too long", "--text", "x", "--to", "1"],
            "sender",
        ),
        (["journal", "/nope.db"], "no journal"),
        (["balance", "smsplus"], "no balance call"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    """Usage and configuration problems: exit 2, one line on stderr, no traceback."""
    env = {"SMSBRIDGE_SMSPLUS_TOKEN": "t"}
    if "A sender much too long" in args:
        env["SMSBRIDGE_SMSCLUB_TOKEN"] = "t"
    result = invoke(*args, env=env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


async def test_journal_resumes_and_refuses_another_campaign(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """A second run with the same journal sends nothing more and counts the whole campaign;
    another input with that journal is refused."""
    fake, env = smsclub
    path = csv_file(tmp_path / "r.csv", [f"38050{i:07d}" for i in range(300)])
    journal = tmp_path / "c.journal"
    base = [
        "send",
        "smsclub",
        "--sender",
        "Shop",
        "--text",
        "Sale",
        "--to-file",
        str(path),
        "--journal",
        str(journal),
        "--json",
    ]
    first = await ainvoke(*base, env=env)
    assert first.returncode == 0
    assert (journal.stat().st_mode & 0o777) == 0o600
    second = await ainvoke(*base, env=env)
    assert last_json(second) == last_json(first)
    record = fake.record()
    assert len(record.sent) == 300 and record.count(200, ["/sms/send"]) == 3
    shown = await ainvoke("journal", str(journal), "--json")
    summary = json.loads(shown.stdout)
    assert summary["counts"]["accepted"] == 300 and summary["left"] == 0
    assert summary["by_gateway"]["smsclub"]["requests"] == summary["counts"]["requests"] == 3
    other = await ainvoke(*[a if a != "Sale" else "Other" for a in base], env=env)
    assert other.returncode == 2
    assert "belongs to another campaign" in other.stderr
    # a journal damaged past its first page: one line, exit 2, nothing sent
    damaged = tmp_path / "d.journal"
    data = bytearray(journal.read_bytes())
    data[4096:8096] = b"\xa5" * 4000
    damaged.write_bytes(bytes(data))
    for args in ([*base[:-2], str(damaged), "--json"], ["journal", str(damaged)]):
        broken = await ainvoke(*args, env=env)
        assert broken.returncode == 2, broken.stderr
        assert broken.stderr.strip() == (
            f"smsbridge: the journal {damaged} is damaged: database disk image is malformed"
        )
    assert len(fake.record().sent) == 300


async def test_a_journal_that_cannot_be_written_mid_run_is_one_line_and_exit_1(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fails or fills while the campaign runs is not a damaged journal (exit
    2 would say: fix the command): one line saying the journal could not be written, exit
    1, and the campaign stops there."""
    from smsbridge._campaign.journal import Journal

    fake, env = smsclub
    path = csv_file(tmp_path / "r.csv", [f"38050{i:07d}" for i in range(300)])
    journal = tmp_path / "c.journal"
    calls = [0]
    record = Journal.record

    def failing(self: Journal, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return record(self, *args, **kwargs)

    monkeypatch.setattr(Journal, "record", failing)
    args = ["send", "smsclub", "--sender", "Shop", "--text", "Sale", "--to-file", str(path)]
    failed = await ainvoke(*args, "--journal", str(journal), env=env)
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.strip().splitlines()[-1] == (
        f"smsbridge: the journal {journal} could not be used: disk I/O error"
    )
    assert "Traceback" not in failed.stderr
    # the journal holds what was written before (a resume from it is a crash's: test_crash)
    shown = await ainvoke("journal", str(journal), "--json")
    assert shown.returncode == 0, shown.stderr
    accepted = json.loads(shown.stdout)["counts"]["accepted"]
    assert 100 <= accepted < 300 and len(fake.record().sent) >= accepted


async def test_a_journal_refuses_the_same_file_read_by_other_columns(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """Two columns of numbers and two of texts in one file: the campaign of columns a and t1
    is not the one of b and t2 (whose resume reported a's numbers and sent b's nothing), and
    naming the same columns otherwise ("A", not "a") is the same campaign."""
    fake, env = smsclub
    path = tmp_path / "cols.csv"
    path.write_text(
        "a,b,t1,t2\n380501236001,380501236101,Hello A1,Hi B1\n"
        "380501236002,380501236102,Hello A2,Hi B2\n",
        encoding="utf-8",
    )
    journal = tmp_path / "cols.journal"
    base = ["send", "smsclub", "--sender", "Shop", "--text", "dflt", "--to-file", str(path)]
    base += ["--journal", str(journal), "--json"]
    first = await ainvoke(*base, "--phone-column", "a", "--text-column", "t1", env=env)
    assert first.returncode == 0 and last_json(first)["accepted"] == 2
    other = await ainvoke(*base, "--phone-column", "b", "--text-column", "t2", env=env)
    assert other.returncode == 2 and other.stderr.count("\n") == 1
    assert (
        "read its input's phone column 'a', text column 't1'; this run would read phone "
        "column 'b', text column 't2': give the same columns to resume"
    ) in other.stderr
    again = await ainvoke(*base, "--phone-column", "A", "--text-column", "T1", env=env)
    assert again.returncode == 0 and last_json(again) == last_json(first)
    # a journal of a version that kept no columns resumes as it did
    with sqlite3.connect(journal) as db:
        db.execute("UPDATE campaign SET reading = NULL")
    old = await ainvoke(*base, "--phone-column", "a", "--text-column", "t1", env=env)
    assert old.returncode == 0 and last_json(old) == last_json(first)
    assert sorted((m.phone, m.text) for m in fake.record().sent) == [
        ("380501236001", "Hello A1"),
        ("380501236002", "Hello A2"),
    ]


async def test_a_journal_takes_the_usual_columns_named_as_the_same_campaign(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """Naming the columns a header's usual names already pick is the same campaign as not
    naming them (a journal begun without the options resumes with them); another column of
    numbers is not."""
    fake, env = smsclub
    path = tmp_path / "usual.csv"
    path.write_text("phone,text,mobile2\n380501236001,Hi A,380501236101\n", encoding="utf-8")
    journal = tmp_path / "usual.journal"
    base = ["send", "smsclub", "--sender", "Shop", "--text", "dflt", "--to-file", str(path)]
    base += ["--journal", str(journal), "--json"]
    first = await ainvoke(*base, env=env)
    assert first.returncode == 0 and last_json(first)["accepted"] == 1
    named = await ainvoke(*base, "--phone-column", "Phone", "--text-column", "TEXT", env=env)
    assert named.returncode == 0 and last_json(named) == last_json(first)
    other = await ainvoke(*base, "--phone-column", "mobile2", env=env)
    assert other.returncode == 2 and "give the same columns to resume" in other.stderr
    assert [(m.phone, m.text) for m in fake.record().sent] == [("380501236001", "Hi A")]


async def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path: Path) -> None:
    """SIGINT lets the requests in flight finish, prints how to resume; resuming completes,
    and nobody is sent twice."""
    async with FakeProcess("smsclub", "--token", TOKEN, "--rate-limit", "none") as fake:
        env = {"SMSBRIDGE_SMSCLUB_TOKEN": TOKEN, "SMSBRIDGE_SMSCLUB_URL": fake.url}
        path = csv_file(tmp_path / "r.csv", [f"38050{i:07d}" for i in range(4000)])
        journal = tmp_path / "c.journal"
        args = [
            "send",
            "smsclub",
            "--sender",
            "Shop",
            "--text",
            "Sale",
            "--to-file",
            str(path),
            "--journal",
            str(journal),
        ]
        proc = await anyio.open_process([str(EXE), *args], env=clean_env(**env))
        with anyio.fail_after(30):
            while await fake.count() < 5:  # at the default 9/s: well before the end
                assert proc.returncode is None, "ended before the signal"
                await anyio.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        await proc.wait()
        out, err = await read_all(proc.stdout), await read_all(proc.stderr)
        assert proc.returncode == 1, err
        assert "Stopping after the requests in flight" in err
        assert "Resume with the same command" in out
        assert "Traceback" not in err
        partial = json.loads((await ainvoke("journal", str(journal), "--json")).stdout)
        assert 0 < partial["counts"]["accepted"] < 4000
        assert partial["counts"]["uncertain"] == 0
        finished = await ainvoke(*args, "--json", "--rate", "200", env=env)
        assert finished.returncode == 0, finished.stderr
        assert last_json(finished)["accepted"] == 4000
        record = await fake.record()
    assert len(record.sent) == 4000 == len({m.phone for m in record.sent})


async def test_a_template_s_dry_run_asks_the_gateway_only_with_credentials(
    tmp_path: Path,
) -> None:
    """Without credentials a dry run asks the gateway nothing (its placeholder token went to
    the gateway's address, real unless pointed elsewhere) and says the parameters were not
    checked; with them the template is looked up, as a send would, and checked."""
    async with FakeSmsPlus(tokens=[TOKEN], rate_limit=None, templates={4: "Hi {1} {2}"}) as fake:
        path = csv_file(
            tmp_path / "p.csv", ["994501234567,A,B", "994501234568,A"], "phone,param1,param2"
        )
        argv = ["send", "smsplus", "--sender", "Shop", "--template", "4", "--dry-run"]
        argv += ["--to-file", str(path)]
        blind = await ainvoke(*argv, env={"SMSBRIDGE_SMSPLUS_URL": fake.url})
        assert blind.returncode == 0, blind.stderr
        assert "parameters        not checked" in blind.stdout
        assert "to send                    2" in blind.stdout
        assert fake.record().requests == []
        env = {"SMSBRIDGE_SMSPLUS_TOKEN": TOKEN, "SMSBRIDGE_SMSPLUS_URL": fake.url}
        seen = await ainvoke(*argv, env=env)
        assert seen.returncode == 0, seen.stderr
        assert "not checked" not in seen.stdout
        assert "to send                    1" in seen.stdout
        assert "takes 2 parameters, got 1" in seen.stdout
        assert fake.count(200, ["/api/message/templates"]) == 1 and fake.record().sent == []


async def test_a_template_s_last_parameter_may_be_empty(tmp_path: Path) -> None:
    """ "Ivan,Lviv," for a template of three: its third parameter is empty (it was left off,
    and the row rejected: "takes 3 parameters, got 2"); a row that fills none, or lacks the
    cells, is still refused."""
    async with FakeSmsPlus(
        tokens=[TOKEN], rate_limit=None, templates={7: "Hi {1} {2} {3}"}
    ) as fake:
        path = tmp_path / "p3.csv"
        path.write_text(
            "phone,param1,param2,param3\n994501234561,Olena,Kyiv,10%\n"
            "994501234562,Ivan,Lviv,\n994501234563,,,\n994501234564,Ann\n",
            encoding="utf-8",
        )
        env = {"SMSBRIDGE_SMSPLUS_TOKEN": TOKEN, "SMSBRIDGE_SMSPLUS_URL": fake.url}
        argv = ["send", "smsplus", "--sender", "Shop", "--template", "7", "--to-file", str(path)]
        result = await ainvoke(*argv, "--json", env=env)
        assert last_json(result)["accepted"] == 2 and last_json(result)["rejected"] == 2
        assert sorted((m.phone, m.text) for m in fake.record().sent) == [
            ("994501234561", "Hi Olena Kyiv 10%"),
            ("994501234562", "Hi Ivan Lviv "),
        ]
        # routed alike; a plan whose lookup the gateway refused says it checked nothing
        path.write_text("phone,param1,param2,param3\n994501234571,Bob,,\n", encoding="utf-8")
        routed = ["send", "route", "--sender", "Shop", "--template", "7", "--to-file", str(path)]
        assert last_json(await ainvoke(*routed, "--json", env=env))["accepted"] == 1
        assert ("994501234571", "Hi Bob  ") in {(m.phone, m.text) for m in fake.record().sent}
        refused = {**env, "SMSBRIDGE_SMSPLUS_TOKEN": "wrong"}
        for command in (argv, routed):
            plan = await ainvoke(*command, "--dry-run", env=refused)
            assert plan.returncode == 0, plan.stderr
            assert "parameters        not checked: the template could not be looked up" in (
                plan.stdout
            )


async def test_smsplus_and_webcom_from_files(tmp_path: Path) -> None:
    """param1..param3 columns for SMSPlus templates; a text column for Webcom envelopes."""
    async with FakeSmsPlus(
        tokens=[TOKEN], rate_limit=None, templates={4: "Hi {1}, code {2}"}
    ) as fake:
        path = csv_file(
            tmp_path / "p.csv",
            [f"99450{i:07d},Name{i},C{i}" for i in range(120)],
            "phone,param1,param2",
        )
        env = {"SMSBRIDGE_SMSPLUS_TOKEN": TOKEN, "SMSBRIDGE_SMSPLUS_URL": fake.url}
        result = await ainvoke(
            "send",
            "smsplus",
            "--sender",
            "Shop",
            "--template",
            "4",
            "--to-file",
            str(path),
            "--json",
            env=env,
        )
        assert result.returncode == 0, result.stderr
        assert last_json(result)["accepted"] == 120
        record = fake.record()
        assert {m.phone: m.text for m in record.sent} == {
            f"99450{i:07d}": f"Hi Name{i}, code C{i}" for i in range(120)
        }
        templates = await ainvoke("templates", "smsplus", "--json", env=env)
        assert json.loads(templates.stdout)[0]["id"] == 4
    async with FakeWebcom(tokens=[TOKEN], rate_limit=None) as fake:
        path = csv_file(
            tmp_path / "w.csv", [f"7916{i:07d},Offer {i % 4}" for i in range(90)], "phone,text"
        )
        env = {"SMSBRIDGE_WEBCOM_TOKEN": TOKEN, "SMSBRIDGE_WEBCOM_URL": fake.url}
        result = await ainvoke(
            "send", "webcom", "--sender", "Shop", "--to-file", str(path), "--json", env=env
        )
        assert result.returncode == 0, result.stderr
        record = fake.record()
        assert {m.phone: m.text for m in record.sent} == {
            f"7916{i:07d}": f"Offer {i % 4}" for i in range(90)
        }
        balance = await ainvoke("balance", "webcom", env=env)
        assert "RUR" in balance.stdout


def test_dry_run_plans_without_sending(tmp_path: Path) -> None:
    """Recipients, invalid numbers, duplicates, requests, segments and ETA; no request made
    (no gateway runs here)."""
    rows = [f"38050{i:07d},Привіт {i}" for i in range(250)] + ["nope,x", "380500000001,Привіт 1"]
    path = csv_file(tmp_path / "d.csv", rows, "phone,text")
    result = invoke(
        "send",
        "smsclub",
        "--sender",
        "Shop",
        "--to-file",
        str(path),
        "--dry-run",
        "--json",
        env={"SMSBRIDGE_SMSCLUB_URL": "http://127.0.0.1:9"},
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan == {
        "recipients": 252,
        "invalid": 1,
        "duplicates": 1,
        "to_send": 250,
        "requests": 3,
        "sms_segments": 250,
        "max_segments_per_message": 1,
        "encodings": {"UCS-2": 250},
        "eta_seconds": round(3 / (9 / 1.03), 1),
    }


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            AuthenticationError("invalid token", provider="smsclub"),
            "Stopped by the gateway: invalid token",
        ),
        (
            StateBackendError("Redis unreachable for 30 s"),
            "Stopped: the shared state failed: Redis unreachable for 30 s",
        ),
        (SendInProgressError("another run holds key 'k'"), "Stopped: another run holds key 'k'"),
    ],
)
def test_the_summary_names_what_stopped_a_send(error: SmsBridgeError, line: str) -> None:
    """A Redis outage or a key held elsewhere is not called the gateway's doing."""
    assert stopped_by(error).startswith(line)


async def test_a_file_of_no_recipients_is_said_and_sends_nothing(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """A file of no recipients (a header alone, or nothing) ends with zero counts and a
    line saying so (not with silence), unless --quiet; it is no error."""
    fake, env = smsclub
    for name, content in (("header.csv", "phone\n"), ("nothing.csv", "")):
        path = tmp_path / name
        path.write_text(content)
        base = ["send", "smsclub", "--sender", "Shop", "--text", "Sale", "--to-file", str(path)]
        said = await ainvoke(*base, env=env)
        assert said.returncode == 0, said.stderr
        assert f"smsbridge: {path} holds no recipients: nothing to send" in said.stderr
        quiet = await ainvoke(*base, "--quiet", env=env)
        assert quiet.returncode == 0 and "holds no recipients" not in quiet.stderr
    assert fake.record().sent == []
