"""Send one text to a streamed list of numbers and print what happened to each problem one.

With SMSBRIDGE_SMSCLUB_TOKEN (and optionally SMSBRIDGE_SMSCLUB_URL) set, it talks to that
gateway; without, it starts the bundled fake SMS Club on loopback.

    .venv/bin/python examples/smsclub_send.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator

from smsbridge import Outcome, SmsClub, Status
from smsbridge.testing import FakeSmsClub


def numbers() -> Iterator[str]:
    """Numbers as people type them; one of them twice, one broken."""
    yield from ("+380 50 123 45 67", "0501234568", "380501234569", "0501234567", "050-12")


@contextlib.asynccontextmanager
async def gateway() -> AsyncIterator[tuple[str, str | None]]:
    """The real gateway when configured, else the fake one."""
    token = os.environ.get("SMSBRIDGE_SMSCLUB_TOKEN")
    if token:
        yield token, os.environ.get("SMSBRIDGE_SMSCLUB_URL")
        return
    async with FakeSmsClub(tokens=["example-token"]) as fake:
        yield "example-token", fake.url


async def main() -> None:
    def show(outcome: Outcome) -> None:
        if outcome.status is not Status.ACCEPTED:
            print(f"#{outcome.index} {outcome.phone}: {outcome.status.value} ({outcome.reason})")

    async with gateway() as (token, url), SmsClub(token, base_url=url) as sms:
        report = await sms.send(
            "Your order has shipped", to=numbers(), sender="Shop", on_outcome=show
        )
        print(report.counts())
        for status in await sms.status(report.message_ids()):
            print(status.message_id, status.state.value)


if __name__ == "__main__":
    asyncio.run(main())
