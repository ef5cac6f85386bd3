"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator

TOKEN = "test-token"


def numbers(count: int, start: int = 0) -> Iterator[str]:
    """Distinct valid Ukrainian mobile numbers, lazily."""
    for i in range(start, start + count):
        yield f"38050{i:07d}"


def median(values: list[float]) -> float:
    """The median, for repeated runs."""
    return statistics.median(values)


def instructions(script: str, *args: str) -> int:
    """Instructions ``script --child ARGS`` ran in this interpreter, by valgrind's callgrind
    (the child's own children, a fake gateway, are not counted)."""
    with tempfile.TemporaryDirectory() as folder:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={os.path.join(folder, 'out')}",
            sys.executable,
            script,
            "--child",
            *args,
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr) or re.search(
        r"I\s+refs:\s+([\d,]+)", done.stderr
    )
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))
