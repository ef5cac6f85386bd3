"""The examples run as written, against the bundled fake gateways, and print what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .helpers import clean_env

ROOT = Path(__file__).resolve().parent.parent


def run_example(name: str) -> list[str]:
    """``python examples/NAME.py`` with no SMSBRIDGE_ setting: its stdout lines, once it
    exited 0 and wrote nothing to stderr."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def test_smsclub_example_runs_against_the_fake() -> None:
    """examples/smsclub_send.py prints its problems, counts and statuses."""
    env = clean_env()
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "smsclub_send.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("#4 050-12: rejected (wrong length for +380")
    assert lines[1].startswith("#3 380501234567: suppressed")
    assert lines[2] == (
        "Counts(accepted=3, rejected=1, suppressed=1, failed=0, uncertain=0, requests=1)"
    )
    assert [line.split()[1] for line in lines[3:]] == ["ENROUTE"] * 3


def test_smsplus_template_example() -> None:
    """examples/smsplus_template.py: each recipient's parameters rendered with its number;
    wrong parameter counts, long texts and foreign numbers rejected before any request; an
    exact repeat suppressed; a repeated number with other parameters in a second request."""
    assert run_example("smsplus_template.py") == [
        "template 3 (3 parameters): Hi {1}, order {2} arrives {3}",
        "#0 994501234567: accepted",
        "#1 994501234568: accepted",
        "#2 994501234569: rejected (template 3 takes 3 parameters, got 2)",
        "#3 380501234567: rejected (country code +380 is not served by this gateway (serves AZ))",
        "#4 994501234570: rejected (the text would be 181 characters, over 160)",
        "#5 994501234567: accepted",
        "#6 994501234567: suppressed"
        " (sent the same text to this number within the duplicate window)",
        "Counts(accepted=3, rejected=3, suppressed=1, failed=0, uncertain=0, requests=2)",
        "the gateway sent:",
        "  994501234567: Hi Aysel, order A-1001 arrives today",
        "  994501234567: Hi Aysel, order A-1006 arrives Friday",
        "  994501234568: Hi Murad, order A-1002 arrives tomorrow",
    ]


def test_webcom_reports_example() -> None:
    """examples/webcom_reports.py: a personalised send, then the webhook's reports through
    ``report_handler``; the one report the store failed to save is posted again."""
    assert run_example("webcom_reports.py") == [
        "#0 79161234567: accepted as 82001",
        "#1 79161234568: accepted as 82002",
        "#2 79161234569: accepted as 82003",
        "#3 79161234570: rejected (Phone number is on the stop list)",
        "#4 79161234571: accepted as 82004",
        "#5 7916: rejected (wrong length for +7: 3 digits after the country code, need 10)",
        "Counts(accepted=4, rejected=2, suppressed=0, failed=0, uncertain=0, requests=1)",
        "report post 1: 82001, 82002, 82003, 82004",
        "report post 2: 82002",
        "79161234567 82001: DELIVRD (deliver, 2026-11-22 12:00:00)",
        "79161234568 82002: UNDELIV (not_deliver, 2026-11-22 12:00:00)",
        "79161234569 82003: UNCONFIRMED (partly_deliver, 2026-11-22 12:00:00)",
        "79161234571 82004: DELIVRD (read, 2026-11-22 12:00:00)",
    ]


def test_campaign_example() -> None:
    """examples/campaign.py: a CSV streamed in, outcomes streamed out with ``keep="none"``;
    the file's tally equals the report's counts."""
    assert run_example("campaign.py") == [
        "Counts(accepted=250, rejected=2, suppressed=1, failed=0, uncertain=0, requests=3)",
        "outcomes kept in the report: 0",
        "outcomes.csv: 253 rows, {'accepted': 250, 'rejected': 2, 'suppressed': 1}",
        "  #250 380500000007: suppressed"
        " (sent the same text to this number within the duplicate window)",
        "  #251 050-12: rejected (wrong length for +380: 5 digits after the country code, need 9)",
        "  #252 +999 1234 5678: rejected (not a phone number)",
    ]
