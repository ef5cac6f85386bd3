"""``--outcomes FILE`` and ``smsbridge journal FILE --outcomes OUT``: which recipient ended
how, one row each, read back against what the fake gateway recorded."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smsbridge import Outcome, Status
from smsbridge._cli.outcomes import OutcomeFile
from smsbridge.testing import FakeSmsClub

from ..helpers import TOKEN, ainvoke, csv_file, invoke, last_json

BLACKLISTED = "380500000007"


@pytest.fixture
async def smsclub() -> AsyncIterator[tuple[FakeSmsClub, dict[str, str]]]:
    """A fake SMS Club that refuses one number, and the environment pointing at it."""
    async with FakeSmsClub(tokens=[TOKEN], rate_limit=None, blacklist=[BLACKLISTED]) as fake:
        yield fake, {"SMSBRIDGE_SMSCLUB_TOKEN": TOKEN, "SMSBRIDGE_SMSCLUB_URL": fake.url}


def _list(tmp_path: Path) -> Path:
    """250 numbers, then one that is not a number and one given twice."""
    rows = [f"38050{i:07d}" for i in range(250)] + ["12ab", "380500000003"]
    return csv_file(tmp_path / "list.csv", rows)


def _send(path: Path, *extra: str) -> list[str]:
    return ["send", "smsclub", "--sender", "Shop", "--text", "Sale", "--to-file", str(path), *extra]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


async def test_a_csv_row_per_recipient_with_the_gateways_ids(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """Every recipient once, in a CSV with a header: accepted ones with the id the gateway
    gave their number, the refused, the invalid and the duplicate with their reasons."""
    fake, env = smsclub
    out = tmp_path / "out.csv"
    result = await ainvoke(*_send(_list(tmp_path), "--outcomes", str(out), "--json"), env=env)
    assert result.returncode == 0, result.stderr
    rows = _read_csv(out)
    assert list(rows[0]) == ["index", "phone", "status", "message_id", "reason", "gateway"]
    assert {r["gateway"] for r in rows} == {"smsclub"}
    assert sorted(int(r["index"]) for r in rows) == list(range(252))
    by_index = {int(r["index"]): r for r in rows}
    ids = {m.phone: m.id for m in fake.record().sent}
    for index in range(250):
        row = by_index[index]
        if row["phone"] == BLACKLISTED:
            assert row["status"] == "rejected" and "black list" in row["reason"]
        else:
            assert row["status"] == "accepted", row
            assert row["message_id"] == ids[row["phone"]] and row["reason"] == ""
    assert by_index[250]["status"] == "rejected" and by_index[250]["phone"] == "12ab"
    assert by_index[251]["status"] == "suppressed" and by_index[251]["reason"]
    counts = last_json(result)
    assert counts["accepted"] == 249 and counts["rejected"] == 2 and counts["suppressed"] == 1


async def test_json_lines_when_the_name_ends_in_jsonl(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """``*.jsonl``: one JSON object per line, the same fields."""
    fake, env = smsclub
    out = tmp_path / "out.jsonl"
    result = await ainvoke(*_send(_list(tmp_path), "--outcomes", str(out)), env=env)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 252 and {r["index"] for r in rows} == set(range(252))
    assert set(rows[0]) == {"index", "phone", "status", "message_id", "reason", "gateway"}
    ids = {m.phone: m.id for m in fake.record().sent}
    accepted = [r for r in rows if r["status"] == "accepted"]
    assert len(accepted) == 249
    assert all(r["message_id"] == ids[r["phone"]] for r in accepted)


async def test_a_resumed_campaign_and_its_journal_give_the_whole_campaign(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """A run of a journaled campaign writes what earlier runs settled and what it settles
    itself; `smsbridge journal --outcomes` exports the same rows, and nothing is resent."""
    fake, env = smsclub
    journal = tmp_path / "c.journal"
    path = _list(tmp_path)
    first = await ainvoke(*_send(path, "--journal", str(journal)), env=env)
    assert first.returncode == 0, first.stderr
    again = tmp_path / "again.csv"
    second = await ainvoke(
        *_send(path, "--journal", str(journal), "--outcomes", str(again)), env=env
    )
    assert second.returncode == 0, second.stderr
    exported = tmp_path / "exported.csv"
    shown = await ainvoke("journal", str(journal), "--outcomes", str(exported))
    assert shown.returncode == 0 and "252 outcomes written" in shown.stdout
    assert _read_csv(again) == _read_csv(exported)
    assert len(_read_csv(exported)) == 252
    assert len(fake.record().sent) == 249  # the second run sent nothing


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--outcomes", "/no/such/folder/out.csv"], "cannot write the outcomes"),
        (["--outcomes", "-"], "--outcomes needs a file"),
        (["--outcomes", "x.csv", "--dry-run"], "a dry run sends nothing"),
        (["--outcomes", "out.json"], "JSON Lines (*.jsonl) or CSV"),
        (["--outcomes", "{input}"], "would overwrite"),
        (["--journal", "{dir}/j.db", "--outcomes", "{dir}/j.db"], "would overwrite"),
        # SQLite's files beside the journal: its log truncated under a run left the journal
        # damaged, or no outcomes at all with exit 0; its shared memory, a SIGBUS
        (["--journal", "{dir}/j.db", "--outcomes", "{dir}/j.db-wal"], "would overwrite"),
        (["--journal", "{dir}/j.db", "--outcomes", "{dir}/j.db-shm"], "would overwrite"),
        (["--journal", "{dir}/j.db", "--outcomes", "{dir}/j.db-journal"], "would overwrite"),
    ],
)
def test_an_outcomes_file_that_cannot_be_is_exit_2(
    extra: list[str], message: str, tmp_path: Path
) -> None:
    """Exit 2 and one line, before anything is sent; the input and the journal untouched."""
    path = csv_file(tmp_path / "l.csv", ["380501234567"])
    extra = [e.format(input=path, dir=tmp_path) for e in extra]
    result = invoke(
        *_send(path, *extra),
        env={"SMSBRIDGE_SMSCLUB_TOKEN": TOKEN, "SMSBRIDGE_SMSCLUB_URL": "http://127.0.0.1:9"},
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert path.read_text(encoding="utf-8") == "phone\n380501234567\n"


async def test_exporting_over_the_journal_is_refused(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """`journal J --outcomes J`: exit 2, and the journal still reads."""
    _, env = smsclub
    journal = tmp_path / "c.journal"
    sent = await ainvoke(*_send(_list(tmp_path), "--journal", str(journal)), env=env)
    assert sent.returncode == 0, sent.stderr
    refused = await ainvoke("journal", str(journal), "--outcomes", str(journal))
    assert refused.returncode == 2 and "would overwrite" in refused.stderr
    shown = await ainvoke("journal", str(journal), "--json")
    assert json.loads(shown.stdout)["counts"]["accepted"] == 249


async def test_a_full_disk_stops_the_send_with_one_line_and_the_summary(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """Outcomes that cannot be written (/dev/full): the send stops (no more requests than
    were under way), the summary is printed, one line says why, exit 1."""
    fake, env = smsclub
    numbers = [f"38050{i:07d}" for i in range(5000)]
    path = csv_file(tmp_path / "big.csv", numbers)
    result = await ainvoke(*_send(path, "--outcomes", "/dev/full", "--json"), env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "smsbridge: cannot write the outcomes to /dev/full: No space left on device; "
        "the send stopped"
    ]
    counts = last_json(result)
    assert counts["accepted"] == len(fake.record().sent) < 5000


def test_no_outcome_cell_runs_as_a_formula(tmp_path: Path) -> None:
    """What a rejected row echoes of its input, and a reason, may begin as a formula does
    (``+ - = @``): such a cell is quoted, a spreadsheet shows it as text; a number with
    its sign, or a number, stays as it is."""
    out = tmp_path / "out.csv"
    phones = [
        "+1+cmd|' /C calc'!A0",
        "-1+380501234567",
        "=SUM(A1:A9)",
        "@x",
        "+380501234567",
        "-5",
        "380501234567",
    ]
    with OutcomeFile(out) as file:
        for i, phone in enumerate(phones):
            file.write(Outcome(index=i, phone=phone, status=Status.REJECTED, reason=phone))
        # a message id is the gateway's words (SMS Club's are the keys of its answer)
        file.write(Outcome(index=9, phone="1", status=Status.ACCEPTED, message_id="=HYPERLINK(1)"))
    rows = _read_csv(out)
    quoted = [f"'{p}" for p in phones[:4]] + phones[4:]
    assert [r["phone"] for r in rows][:-1] == quoted
    assert [r["reason"] for r in rows][:-1] == quoted
    assert rows[-1]["message_id"] == "'=HYPERLINK(1)"


async def test_the_summary_says_why_the_recipients_not_accepted_were_not(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """Without --outcomes, the reasons were nowhere the user could see them (a gateway out
    of reach: "failed 1" and exit 1, nothing more). The summary shows the most common."""
    _, env = smsclub
    path = csv_file(tmp_path / "l.csv", ["380501234567", "12", "380501234567", "380501234568"])
    result = await ainvoke(*_send(path), env=env)
    assert result.returncode == 0, result.stderr
    why = result.stdout.split("Why not accepted, in this run (the most common):\n")[1]
    assert why.splitlines()[:2] == [
        "  rejected            1  wrong length for +1: 1 digits after the country code, need 10",
        "  suppressed          1  sent the same text to this number within the duplicate window",
    ]
