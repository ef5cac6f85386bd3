"""``smsbridge send route`` against fake gateways: failover where the message surely did not
go, none where it may have, the plan per gateway, and usage errors."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smsbridge.testing import FakeSmsClub, FakeWebcom, Faults

from ..helpers import TOKEN, ainvoke, csv_file, invoke, last_json

UA = [f"38050{i:07d}" for i in range(250)]
RU = [f"7916{i:07d}" for i in range(30)]


@pytest.fixture
async def webcom() -> AsyncIterator[FakeWebcom]:
    """A fake Webcom on loopback."""
    async with FakeWebcom(tokens=[TOKEN], rate_limit=None) as fake:
        yield fake


def _env(club: str, webcom: FakeWebcom, club_token: str = TOKEN) -> dict[str, str]:
    return {
        "SMSBRIDGE_SMSCLUB_TOKEN": club_token,
        "SMSBRIDGE_SMSCLUB_URL": club,
        "SMSBRIDGE_WEBCOM_TOKEN": TOKEN,
        "SMSBRIDGE_WEBCOM_URL": webcom.url,
    }


def _send(path: Path, *extra: str) -> list[str]:
    return ["send", "route", "--sender", "Shop", "--text", "Sale", "--to-file", str(path), *extra]


async def test_a_refused_account_fails_over_to_the_next_gateway(
    webcom: FakeWebcom, tmp_path: Path
) -> None:
    """SMS Club refuses the token: every UA number goes through Webcom, once; RU numbers went
    there anyway; SMSPlus (no credentials) leaves the default routes with a note; the
    outcomes file names Webcom for each, exit 0."""
    async with FakeSmsClub(tokens=["another"], rate_limit=None) as club:
        path = csv_file(tmp_path / "l.csv", [*UA, *RU])
        out = tmp_path / "out.csv"
        result = await ainvoke(
            *_send(path, "--json", "--outcomes", str(out)), env=_env(club.url, webcom)
        )
        assert club.record().sent == []
    assert result.returncode == 0, result.stderr
    assert "route: smsplus left out" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["accepted"] == 280 and summary["failed"] == 0
    assert summary["by_gateway"]["webcom"]["accepted"] == 280
    assert Counter(m.phone for m in webcom.record().sent) == Counter(dict.fromkeys(UA + RU, 1))
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 280 and {r["gateway"] for r in rows} == {"webcom"}
    assert sorted(int(r["index"]) for r in rows) == list(range(280))


async def test_what_may_have_gone_stays_where_it_went(webcom: FakeWebcom, tmp_path: Path) -> None:
    """SMS Club sends, then answers 502: none of those numbers reaches Webcom, and SMS Club
    sent each once (its duplicate guard answers the repeats)."""
    faults = Faults(error_after=1.0)
    async with FakeSmsClub(tokens=[TOKEN], rate_limit=None, faults=faults) as club:
        path = csv_file(tmp_path / "l.csv", UA[:20])
        result = await ainvoke(*_send(path, "--json", "--rate", "500"), env=_env(club.url, webcom))
        sent = Counter(m.phone for m in club.record().sent)
    summary = last_json(result)
    assert summary["failed"] == 0 and summary["accepted"] + summary["uncertain"] == 20
    assert webcom.record().sent == []
    assert sent == Counter(dict.fromkeys(UA[:20], 1))


async def test_the_dry_run_plans_per_gateway(webcom: FakeWebcom, tmp_path: Path) -> None:
    """Each gateway's share, requests and time; a number with no route is counted apart."""
    path = csv_file(tmp_path / "l.csv", [*UA, *RU, "12025550123"])
    result = await ainvoke(
        *_send(path, "--dry-run", "--json", "--route", "UA=smsclub,webcom", "--route", "RU=webcom"),
        env=_env("http://127.0.0.1:9", webcom),
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert (plan["recipients"], plan["to_send"], plan["rejected"]) == (281, 280, 1)
    assert plan["by_gateway"]["smsclub"]["to_send"] == 250
    assert plan["by_gateway"]["smsclub"]["requests"] == 3
    assert plan["by_gateway"]["webcom"]["to_send"] == 30
    assert plan["by_gateway"]["webcom"]["sms_segments"] == 30  # "Sale": one segment each
    assert webcom.record().sent == []
    long_text = _send(path, "--dry-run", "--json")
    long_text[long_text.index("Sale")] = "Ціна " * 20  # 100 UCS-2 characters: two segments
    plan = json.loads((await ainvoke(*long_text, env=_env("http://127.0.0.1:9", webcom))).stdout)
    assert plan["by_gateway"]["smsclub"]["sms_segments"] == 500


async def test_a_journaled_campaign_runs_once_and_a_second_run_sends_nothing(
    webcom: FakeWebcom, tmp_path: Path
) -> None:
    """With --journal: SMS Club refuses the account, so UA numbers fail over to Webcom; the
    journal names the gateway of each outcome and counts per gateway over every run; the
    same command again finds nothing left and sends nothing."""
    async with FakeSmsClub(tokens=["another"], rate_limit=None) as club:
        path = csv_file(tmp_path / "l.csv", [*UA, *RU, "12"])
        journal = tmp_path / "c.journal"
        send = _send(path, "--json", "--journal", str(journal))
        first = await ainvoke(*send, env=_env(club.url, webcom))
        again = await ainvoke(*send, env=_env(club.url, webcom))
        assert club.record().sent == []
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    for result in (first, again):
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert (summary["accepted"], summary["rejected"], summary["left"]) == (280, 1, 0)
        assert summary["by_gateway"]["webcom"]["accepted"] == 280
        assert summary["by_gateway"]["smsclub"]["accepted"] == 0
    assert Counter(m.phone for m in webcom.record().sent) == Counter(dict.fromkeys(UA + RU, 1))
    summary = json.loads(invoke("journal", str(journal), "--json").stdout)
    assert summary["by_gateway"]["webcom"]["accepted"] == 280 and summary["left"] == 0
    assert "webcom: 280 accepted" in invoke("journal", str(journal)).stdout
    exported = tmp_path / "all.csv"
    assert invoke("journal", str(journal), "--outcomes", str(exported)).returncode == 0
    with exported.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["index"]) for r in rows] == list(range(281))
    assert {r["gateway"] for r in rows[:280]} == {"webcom"}
    assert (rows[280]["status"], rows[280]["gateway"]) == ("rejected", "")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--journal", "j.db", "--dry-run"], "--journal records a send"),
        (["--route", "UA"], "give REGION=GATEWAY"),
        (["--route", "UA=nope"], "no gateway 'nope'"),
        (["--route", "UA=smsclub,smsclub"], "a gateway named twice"),
        (["--route", "AZ=smsplus"], "SMSBRIDGE_SMSPLUS_TOKEN"),
    ],
)
def test_route_usage_errors_exit_2(extra: list[str], message: str, tmp_path: Path) -> None:
    """Exit 2 and one line, before anything is sent."""
    path = csv_file(tmp_path / "l.csv", UA[:1])
    env = {"SMSBRIDGE_SMSCLUB_TOKEN": TOKEN, "SMSBRIDGE_WEBCOM_TOKEN": TOKEN}
    result = invoke(*_send(path, *extra), env=env)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_route_with_a_gateway_is_a_usage_error(tmp_path: Path) -> None:
    """--route belongs to 'send route'."""
    path = csv_file(tmp_path / "l.csv", UA[:1])
    result = invoke(
        "send", "smsclub", "--sender", "S", "--text", "x", "--to-file", str(path),
        "--route", "UA=smsclub", env={"SMSBRIDGE_SMSCLUB_TOKEN": TOKEN},
    )  # fmt: skip
    assert result.returncode == 2 and "--route goes with 'send route'" in result.stderr


async def test_a_country_whose_gateways_have_no_credentials_is_failed_not_rejected(
    tmp_path: Path,
) -> None:
    """Default routes with only SMS Club's credentials: RU numbers cannot go (Webcom is left
    out, said once) and end failed, exit 1; a dry run needs no credentials at all."""
    async with FakeSmsClub(tokens=[TOKEN], rate_limit=None) as club:
        path = csv_file(tmp_path / "l.csv", [*UA[:5], *RU[:3]])
        env = {"SMSBRIDGE_SMSCLUB_TOKEN": TOKEN, "SMSBRIDGE_SMSCLUB_URL": club.url}
        result = await ainvoke(*_send(path, "--json"), env=env)
        planned = await ainvoke(*_send(path, "--json", "--dry-run"))
    assert result.returncode == 1
    assert result.stderr.count("route: webcom left out") == 1
    summary = last_json(result)
    assert (summary["accepted"], summary["failed"], summary["rejected"]) == (5, 3, 0)
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["by_gateway"]["webcom"]["to_send"] == 3


async def test_the_routed_summary_says_why_the_recipients_not_accepted_were_not(
    webcom: FakeWebcom, tmp_path: Path
) -> None:
    """As `send`'s: the most common reasons of this run's recipients that were not accepted
    (here a number no route takes, and one given twice), under the counts."""
    async with FakeSmsClub(tokens=[TOKEN], rate_limit=None) as club:
        path = csv_file(tmp_path / "l.csv", [UA[0], "12", UA[1], UA[1]])
        result = await ainvoke(*_send(path), env=_env(club.url, webcom))
    assert result.returncode == 0, result.stderr
    why = result.stdout.split("Why not accepted, in this run (the most common):\n")[1]
    statuses = [line.split()[0] for line in why.splitlines()[:2]]
    assert sorted(statuses) == ["rejected", "suppressed"], why
