"""Peak memory of the client for 100,000 and 1,000,000 streamed recipients (a generator,
never a list), with the rate limit lifted, against the fake SMS Club in its own process.
Each run is a fresh interpreter, so its peak RSS is its own.

    .venv/bin/python benchmarks/memory.py
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys

from smsbridge import SmsClub
from smsbridge.testing import FakeProcess

from _common import TOKEN, numbers


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def child(recipients: int, window: bool, materialise: bool) -> None:
    async with FakeProcess("smsclub", "--token", TOKEN, "--rate-limit", "none") as fake:
        baseline = peak_rss_mb()
        source = list(numbers(recipients)) if materialise else numbers(recipients)
        async with SmsClub(
            TOKEN,
            base_url=fake.url,
            rate=1_000_000,
            concurrency=16,
            window_ttl=120.0 if window else 0,
        ) as sms:
            report = await sms.send("Sale", to=source, sender="Shop", keep="none")
        assert report.accepted == recipients
    print(f"{baseline:.1f} {peak_rss_mb():.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=3, metavar=("N", "WINDOW", "LIST"))
    args = parser.parse_args()
    if args.child:
        n, window, materialise = args.child
        asyncio.run(child(int(n), window == "1", materialise == "1"))
        return
    print("peak RSS of the client process, MiB (imports and a running client included)")
    print(f"{'recipients':>12}  {'input':<11}{'duplicate window':<20}{'peak':>8}{'growth':>9}")
    for window in (False, True):
        for n in (100_000, 1_000_000):
            for materialise in (False, True) if n == 1_000_000 and not window else (False,):
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        str(n),
                        str(int(window)),
                        str(int(materialise)),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.split()
                base, peak = float(out[0]), float(out[1])
                label = "120 s (lifted rate)" if window else "off"
                kind = "list" if materialise else "generator"
                print(f"{n:>12,}  {kind:<11}{label:<20}{peak:>8.1f}{peak - base:>9.1f}")


if __name__ == "__main__":
    main()
