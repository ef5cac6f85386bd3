"""Send personalised texts through Webcom Mobi and receive its delivery reports.

It starts the bundled fake Webcom and, beside it, an aiohttp app that serves
``report_handler(store)`` at ``/webcom/reports`` (the URL you would register with the
gateway's staff), both on loopback. It sends each recipient its own text with
``send_personal``; then the fake plays the gateway's webhook: it POSTs
``[{"id_sms", "time", "state"}]`` and posts again whatever the answer did not acknowledge.
The store here fails to save one report the first time, as a database might, so that report
is not acknowledged and comes back in a second post. At the end it prints the delivery state
stored for each recipient.

    .venv/bin/python examples/webcom_reports.py
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiohttp import web

from smsbridge import DeliveryReport, Outcome, Webcom, report_handler
from smsbridge.testing import FakeWebcom

TOKEN = "example-token"

MESSAGES = [
    ("+7 916 123-45-67", "Hi Ivan, your order A-1001 has shipped"),
    ("89161234568", "Hi Olga, your order A-1002 has shipped"),  # Russian national form
    ("79161234569", "Your parcel is at the pickup point"),
    ("79161234570", "Your parcel is at the pickup point"),  # on the fake's stop list
    ("79161234571", "Your parcel is at the pickup point"),
    ("7916", "Too short to be a number"),
]

# what the network will say about each accepted number (the gateway's own words)
DELIVERY = {
    "79161234567": "deliver",
    "79161234568": "not_deliver",
    "79161234569": "partly_deliver",
    "79161234571": "read",
}


class Database:
    """Stands in for a real table of delivery states; its first write of an undelivered
    report fails."""

    def __init__(self) -> None:
        self.rows: dict[str, DeliveryReport] = {}
        self.hiccup = True

    async def store(self, reports: Sequence[DeliveryReport]) -> list[str]:
        """Save the reports; return the ids saved (only those are acknowledged)."""
        saved = []
        for report in reports:
            if self.hiccup and report.raw == "not_deliver":
                self.hiccup = False
                continue
            self.rows[report.message_id] = report
            saved.append(report.message_id)
        return saved


async def serve_reports(db: Database) -> tuple[web.AppRunner, str]:
    """The report receiver on loopback, and its URL."""
    app = web.Application()
    app.router.add_post("/webcom/reports", report_handler(db.store))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}/webcom/reports"


async def main() -> None:
    db = Database()
    runner, reports_url = await serve_reports(db)
    try:
        async with (
            FakeWebcom(tokens=[TOKEN], senders=["Shop"], stop_list=["79161234570"]) as fake,
            Webcom(TOKEN, base_url=fake.url) as sms,
        ):
            report = await sms.send_personal(MESSAGES, sender="Shop")
            outcomes = sorted(report.outcomes, key=lambda o: o.index)
            for outcome in outcomes:
                if outcome.message_id is not None:
                    what = f"accepted as {outcome.message_id}"
                else:
                    what = f"{outcome.status.value} ({outcome.reason})"
                print(f"#{outcome.index} {outcome.phone}: {what}")
            print(report.counts())

            accepted: list[Outcome] = [o for o in outcomes if o.message_id is not None]
            states = {int(str(o.message_id)): DELIVERY[o.phone] for o in accepted}
            posts = await fake.post_reports(reports_url, states)
            for number, ids in enumerate(posts, 1):
                print(f"report post {number}: {', '.join(map(str, ids))}")
    finally:
        await runner.cleanup()

    for outcome in accepted:
        row = db.rows[str(outcome.message_id)]
        print(f"{outcome.phone} {row.message_id}: {row.state.value} ({row.raw}, {row.time})")


if __name__ == "__main__":
    asyncio.run(main())
