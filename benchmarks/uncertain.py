"""How many recipients end ``uncertain`` when SMS Club's answers are lost, with its 2-minute
duplicate guard (453) relied on and without: 10% of requests answered 5xx after the gateway
sent them, 10% reset after it sent them, the fake in its own process over loopback. Every
run checks against the fake's record that nobody got the text twice and that everyone
reported accepted was sent.

    .venv/bin/python benchmarks/uncertain.py [--recipients 3000] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter

import msgspec

from smsbridge import RetryPolicy, SmsClub, Status, Timeouts
from smsbridge.testing import FakeProcess, Faults

from _common import TOKEN, numbers


async def run(recipients: int, seed: int, guard: bool) -> tuple[Counter[str], int, int]:
    faults = Faults(error_after=0.1, reset_after=0.1, seed=seed)
    args = [
        "--token",
        TOKEN,
        "--rate-limit",
        "none",
        "--faults",
        msgspec.json.encode(faults).decode(),
    ]
    async with FakeProcess("smsclub", *args) as fake:
        async with SmsClub(
            TOKEN,
            base_url=fake.url,
            rate=1000,
            repeat_guard=guard,
            timeouts=Timeouts(connect=2, read=2, total=5),
            retry=RetryPolicy(attempts=5, backoff=0.01),
        ) as sms:
            report = await sms.send("Sale", to=numbers(recipients), sender="Shop", keep="all")
        record = await fake.record()
    sent = Counter(m.phone for m in record.sent)
    assert max(sent.values()) == 1, "a number got the text twice"
    for outcome in report.outcomes:
        if outcome.status is Status.ACCEPTED:
            assert sent[outcome.phone] == 1, "reported accepted, never sent"
    counts = Counter(o.status.value for o in report.outcomes)
    no_id = sum(1 for o in report.outcomes if o.status is Status.ACCEPTED and not o.message_id)
    return counts, report.requests, no_id


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"{args.recipients:,} recipients, 10% 5xx after sending, 10% resets after sending")
    print(f"{'':24} {'accepted':>9} {'no id':>6} {'uncertain':>9} {'requests':>9}")
    for guard in (False, True):
        counts, requests, no_id = await run(args.recipients, args.seed, guard)
        name = "453 guard relied on" if guard else "repeat_guard=False"
        print(
            f"{name:24} {counts['accepted']:>9,} {no_id:>6,} {counts['uncertain']:>9,} "
            f"{requests:>9,}"
        )


if __name__ == "__main__":
    asyncio.run(main())
