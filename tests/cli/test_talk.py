"""How much the command says: -v writes the request log on stderr (numbers masked, no
token), -q the counts alone; by default the library's log stays off the terminal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smsbridge.testing import FakeSmsClub

from ..helpers import TOKEN, ainvoke, csv_file


@pytest.fixture
async def smsclub() -> AsyncIterator[tuple[FakeSmsClub, dict[str, str]]]:
    """A fake SMS Club whose first send request is answered 429."""
    async with FakeSmsClub(tokens=[TOKEN], rate_limit=None) as fake:
        fake.script(["rate_limited"])
        yield fake, {"SMSBRIDGE_SMSCLUB_TOKEN": TOKEN, "SMSBRIDGE_SMSCLUB_URL": fake.url}


def _send(tmp_path: Path, *extra: str) -> list[str]:
    path = csv_file(tmp_path / "l.csv", [f"38050{i:07d}" for i in range(150)])
    return ["send", "smsclub", "--sender", "Shop", "--text", "Sale", "--to-file", str(path), *extra]


async def test_verbose_logs_each_request_without_numbers_or_token(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """-v: a line per request try (the 429 among them), the retry, the send's summary."""
    fake, env = smsclub
    result = await ainvoke(*_send(tmp_path, "-v"), env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    tries = [line for line in lines if "DEBUG smsclub /sms/send: " in line]
    assert len(tries) == fake.record().count(200, ["/sms/send"]) + 1 == 3
    assert sum(" /sms/send: 429 in " in line for line in tries) == 1
    assert sum("WARNING smsclub: trying again" in line for line in lines) == 1
    assert any("INFO smsclub: 150 recipients in " in line for line in lines)
    assert TOKEN not in result.stderr and "38050" not in result.stderr


async def test_quiet_prints_the_counts_alone(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """-q: the counts table on stdout, nothing on stderr (not even the retry's warning)."""
    _, env = smsclub
    result = await ainvoke(*_send(tmp_path, "-q"), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert [line.split() for line in result.stdout.splitlines()] == [
        ["accepted", "150"],
        ["rejected", "0"],
        ["suppressed", "0"],
        ["failed", "0"],
        ["uncertain", "0"],
        ["requests", "3"],
    ]


async def test_by_default_the_library_log_stays_off_the_terminal(
    smsclub: tuple[FakeSmsClub, dict[str, str]], tmp_path: Path
) -> None:
    """Without -q or -v: the summary on stdout, no retry warning or request line on stderr
    (an error is the one line the command writes, not the retries before it)."""
    _, env = smsclub
    result = await ainvoke(*_send(tmp_path), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "This run: 150 recipients, 3 requests" in result.stdout


def test_quiet_and_verbose_together_are_a_usage_error(tmp_path: Path) -> None:
    """-q with -v: exit 2, one line."""
    from ..helpers import invoke

    result = invoke(*_send(tmp_path, "-q", "-v"), env={"SMSBRIDGE_SMSCLUB_TOKEN": TOKEN})
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("verbose", "quiet", "shown"), [(False, False, 1), (False, True, 0)])
def test_a_pause_a_person_would_take_for_a_hang_is_told_without_v(
    capsys: pytest.CaptureFixture[str], verbose: bool, quiet: bool, shown: int
) -> None:
    """By default the library's log stays off the terminal but for its notices (Redis out of
    reach, a dead run's hold lapsing), one line each; -q keeps those off too."""
    import argparse
    import logging

    from smsbridge._cli import _voice
    from smsbridge._core.events import NOTICE

    log = logging.getLogger("smsbridge")
    with _voice(argparse.Namespace(verbose=verbose, quiet=quiet)):
        log.warning("trying again in 1.0 s")
        log.warning("waiting up to 16 s for it to lapse", extra=NOTICE)
    err = capsys.readouterr().err
    assert err.count("smsbridge: waiting up to 16 s for it to lapse") == shown
    assert "trying again" not in err
