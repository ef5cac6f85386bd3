"""Peak memory of the `smsbridge send` command streaming a CSV of 100,000 and of 1,000,000
numbers, with a journal, against the fake SMS Club in its own process (rate limit lifted).

    .venv/bin/python benchmarks/cli_memory.py
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from smsbridge.testing import FakeProcess

from _common import TOKEN

EXE = Path(sys.executable).with_name("smsbridge")
MEASURE = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, "
    "text=True); print(r.stdout.strip().splitlines()[-1]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def write_csv(path: Path, count: int) -> None:
    with path.open("w") as f:
        f.write("phone\n")
        for i in range(count):
            f.write(f"38050{i:07d}\n")


async def main() -> None:
    print("peak RSS of `smsbridge send smsclub --to-file FILE --journal J` (MiB), limit lifted")
    print(f"{'rows':>12}{'window':>10}{'peak MiB':>10}{'seconds':>9}{'journal MiB':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for count in (100_000, 1_000_000):
            csv = Path(tmp) / f"{count}.csv"
            write_csv(csv, count)
            for window in ("0", "120"):
                journal = Path(tmp) / f"{count}-{window}.journal"
                async with FakeProcess("smsclub", "--token", TOKEN, "--rate-limit", "none") as fake:
                    command = [
                        str(EXE),
                        "send",
                        "smsclub",
                        "--sender",
                        "Shop",
                        "--text",
                        "Sale",
                        "--to-file",
                        str(csv),
                        "--journal",
                        str(journal),
                        "--rate",
                        "100000",
                        "--window-ttl",
                        window,
                        "--json",
                    ]
                    env = {
                        "SMSBRIDGE_SMSCLUB_TOKEN": TOKEN,
                        "SMSBRIDGE_SMSCLUB_URL": fake.url,
                        "PATH": "/usr/bin:/bin",
                    }
                    start = time.monotonic()
                    out = await asyncio.to_thread(
                        subprocess.run,
                        [sys.executable, "-c", MEASURE, *command],
                        capture_output=True,
                        text=True,
                        env=env,
                        check=True,
                    )
                    elapsed = time.monotonic() - start
                counts_line, rss = out.stdout.strip().splitlines()[-2:]
                assert json.loads(counts_line)["accepted"] == count, counts_line
                size = journal.stat().st_size / 2**20
                print(
                    f"{count:>12,}{window:>10}{int(rss) / 1024:>10.1f}{elapsed:>9.1f}{size:>13.1f}"
                )


if __name__ == "__main__":
    asyncio.run(main())
