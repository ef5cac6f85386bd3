"""The examples run as written, against the bundled fake gateway."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .helpers import clean_env

ROOT = Path(__file__).resolve().parent.parent


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
