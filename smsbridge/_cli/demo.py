"""``smsbridge demo``: the fake SMS Club on loopback and a real send through it."""

from __future__ import annotations

import sys
import time

import anyio

from .._core.models import Outcome, Report, Status
from .._smsclub.client import SmsClub
from ..testing import FakeProcess, busiest_window

TOKEN = "demo-token"  # noqa: S105 - the fake gateway's, not a secret


def _numbers(count: int) -> list[str]:
    numbers = [f"38067{i:07d}" for i in range(count)]
    numbers[7] = "380 67 000 00 01"  # the same person twice, typed differently
    numbers[42] = "not a number"
    return numbers


async def run_demo(recipients: int = 5_000, rate: int = 9) -> Report:
    """Start the fake gateway, send to ``recipients`` numbers at ``rate`` requests/s."""
    out = sys.stdout
    out.write(
        f"Starting the fake SMS Club on loopback (its own process, {rate} requests/s, "
        "like the real one)...\n"
    )
    async with FakeProcess("smsclub", "--token", TOKEN, "--rate-limit", str(rate)) as fake:
        out.write(f"  listening on {fake.url}\n")
        out.write(f"Sending one text to {recipients:,} numbers, 100 per request...\n")
        done = [0]
        started = time.monotonic()

        def count(outcome: Outcome) -> None:
            done[0] += 1

        async def progress() -> None:
            while True:
                await anyio.sleep(0.5)
                elapsed = time.monotonic() - started
                out.write(
                    f"\r  {done[0]:>7,} / {recipients:,} recipients  "
                    f"{done[0] / elapsed:>6,.0f}/s  {elapsed:5.1f} s"
                )
                out.flush()

        async with SmsClub(TOKEN, base_url=fake.url, rate=rate) as sms:
            async with anyio.create_task_group() as tg:
                tg.start_soon(progress)
                report = await sms.send(
                    "Your order has shipped",
                    to=_numbers(recipients),
                    sender="Shop",
                    on_outcome=count,
                    keep="all",
                )
                tg.cancel_scope.cancel()
            balance = await sms.balance()
        record = await fake.record()
    elapsed = time.monotonic() - started
    starts = sorted(r.at for r in record.requests if r.path == "/sms/send")
    # requests start in bursts of `rate`: the steady rate is `rate` per mean gap between a
    # start and the one `rate` places later
    gaps = [b - a for a, b in zip(starts, starts[rate:], strict=False)]
    achieved = rate / (sum(gaps) / len(gaps)) if gaps else float(len(starts))
    out.write("\n\nSummary\n")
    for status in Status:
        out.write(f"  {status.value:<11}{getattr(report, status.value):>8,}\n")
    out.write(f"  requests   {report.requests:>8,}   in {elapsed:.1f} s\n")
    out.write(
        f"  achieved   {achieved:>8.2f} requests/s; busiest sliding second at the gateway: "
        f"{busiest_window(starts)} (limit {rate}); 429 answers: {record.count(429)}\n"
    )
    out.write(f"  the gateway recorded {len(record.sent):,} messages; balance {balance.money}\n")
    for outcome in report.outcomes:
        if outcome.status is not Status.ACCEPTED:
            out.write(
                f"  #{outcome.index} {outcome.phone!r}: {outcome.status.value}: {outcome.reason}\n"
            )
    return report
