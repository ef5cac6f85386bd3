"""Send an approved SMSPlus template with per-recipient parameters, against the bundled fake.

It starts the fake SMSPlus on loopback with one template, ``Hi {1}, order {2} arrives {3}``,
lists the account's templates, sends the template to seven recipients and prints each one's
outcome, the counts and the texts the gateway rendered. It shows that each recipient's
parameters stay with its number, that recipients with the wrong number of parameters, a text
over 160 characters or a number outside Azerbaijan are rejected before any request, that an
exact repeat is suppressed, and that a repeated number with other parameters goes in a later
request (SMSPlus refuses a request that names a number twice).

    .venv/bin/python examples/smsplus_template.py

For a real account, drop the fake and give ``SmsPlus`` your token (or set
``SMSBRIDGE_SMSPLUS_TOKEN``), one of your approved template ids and sender names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from smsbridge import SmsPlus
from smsbridge.testing import FakeSmsPlus

TOKEN = "example-token"
TEMPLATE_ID = 3


def recipients() -> Iterator[tuple[str, tuple[str, ...]]]:
    """``(phone, parameters)`` pairs as an order system would produce them."""
    yield "+994 50 123 45 67", ("Aysel", "A-1001", "today")
    yield "050 123 45 68", ("Murad", "A-1002", "tomorrow")  # national form
    yield "994501234569", ("Leyla", "A-1003")  # one parameter short
    yield "380501234567", ("Olena", "A-1004", "today")  # not an Azerbaijani number
    yield "994501234570", ("Nigar", "A-1005", "x" * 150)  # renders past 160 characters
    yield "994501234567", ("Aysel", "A-1006", "Friday")  # same number, other parameters
    yield "994501234567", ("Aysel", "A-1001", "today")  # an exact repeat of the first


async def main() -> None:
    templates = {TEMPLATE_ID: "Hi {1}, order {2} arrives {3}"}
    async with (
        FakeSmsPlus(tokens=[TOKEN], senders=["Shop"], templates=templates) as fake,
        SmsPlus(TOKEN, base_url=fake.url) as sms,
    ):
        for template in await sms.templates():
            print(f"template {template.id} ({template.parameters} parameters): {template.text}")

        report = await sms.send_template(TEMPLATE_ID, sender="Shop", to=recipients())

        for outcome in sorted(report.outcomes, key=lambda o: o.index):
            why = f" ({outcome.reason})" if outcome.reason else ""
            print(f"#{outcome.index} {outcome.phone}: {outcome.status.value}{why}")
        print(report.counts())

        print("the gateway sent:")
        for message in sorted(fake.sent, key=lambda m: (m.phone, m.text)):
            print(f"  {message.phone}: {message.text}")


if __name__ == "__main__":
    asyncio.run(main())
