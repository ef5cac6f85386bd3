"""A bulk campaign in flat memory: numbers streamed from a CSV file, outcomes streamed to one.

It writes a small ``numbers.csv`` to a temporary directory: 250 numbers, then one of them
again in another spelling, one too short and one with a country code that does not exist.
It reads the file lazily with a generator and sends one text to every number through the
bundled fake SMS Club on loopback. ``on_outcome`` writes each recipient's outcome to
``outcomes.csv`` as it is decided, and ``keep="none"`` keeps none in the report, so memory
stays flat however long the file is. It prints the report's counts, the outcomes file's
tally (the same) and its problem rows.

    .venv/bin/python examples/campaign.py

Against a real account, set ``SMSBRIDGE_SMSCLUB_TOKEN``, drop the fake, and point
``numbers()`` at your own file; the ``smsbridge send`` command does the same with a journal
that lets an interrupted campaign resume.
"""

from __future__ import annotations

import asyncio
import csv
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from smsbridge import Outcome, SmsClub
from smsbridge.testing import FakeSmsClub

TOKEN = "example-token"
FIELDS = ["index", "phone", "status", "message_id", "reason"]


def write_numbers(path: Path) -> None:
    """The campaign's input, as an export from a shop's customer table might look."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["phone"])
        for i in range(250):
            writer.writerow([f"+380 50 {i // 10_000:03d} {i % 10_000:04d}"])
        writer.writerow(["050 000 0007"])  # the 8th number again, in national form
        writer.writerow(["050-12"])  # too short
        writer.writerow(["+999 1234 5678"])  # no country has the code +999


def numbers(path: Path) -> Iterator[str]:
    """The numbers, read one row at a time: the file is never loaded whole."""
    with path.open(newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            yield row["phone"]


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source, results = Path(tmp) / "numbers.csv", Path(tmp) / "outcomes.csv"
        write_numbers(source)

        with results.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(FIELDS)

            def record(outcome: Outcome) -> None:
                writer.writerow([getattr(outcome, field) for field in FIELDS])  # None: empty

            async with (
                FakeSmsClub(tokens=[TOKEN]) as fake,
                SmsClub(TOKEN, base_url=fake.url) as sms,
            ):
                report = await sms.send(
                    "Spring sale: 20% off everything until Sunday",
                    to=numbers(source),
                    sender="Shop",
                    on_outcome=record,
                    keep="none",
                )

        print(report.counts())
        print(f"outcomes kept in the report: {len(report.outcomes)}")
        with results.open(newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
        tally = Counter(row["status"] for row in rows)
        print(f"outcomes.csv: {len(rows)} rows, {dict(sorted(tally.items()))}")
        for row in sorted(rows, key=lambda r: int(r["index"])):
            if row["status"] != "accepted":
                print(f"  #{row['index']} {row['phone']}: {row['status']} ({row['reason']})")


if __name__ == "__main__":
    asyncio.run(main())
