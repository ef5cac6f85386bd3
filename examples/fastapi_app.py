"""A FastAPI app sending through Webcom and receiving its delivery reports.

    SMSBRIDGE_WEBCOM_TOKEN=... REPORTS_SECRET=... uvicorn examples.fastapi_app:app

Without SMSBRIDGE_WEBCOM_URL it talks to the real gateway; point it at the bundled fake with
`smsbridge fake-gateway webcom --port 8081` and SMSBRIDGE_WEBCOM_URL=http://127.0.0.1:8081.

Delivery reports: Webcom signs nothing, so a secret proves a report came from it. This app
takes the secret in a header (`X-Reports-Secret`) that the reverse proxy in front of it adds,
not in the URL: an access log (uvicorn's, a load balancer's) records every path, and a secret
in a path is then readable by whoever reads the logs. Register a long random URL on the proxy
(whose location is not logged), and have the proxy pass it on with the header:

    location = /webcom/reports/<long random> {
        access_log off;
        proxy_set_header X-Reports-Secret <REPORTS_SECRET>;
        proxy_pass http://app/webcom/reports;
    }

There is no default secret: without REPORTS_SECRET the app does not start.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from fastapi import Depends, FastAPI
from pydantic import BaseModel

from smsbridge import DeliveryReport, Webcom
from smsbridge.fastapi import SmsBridge, webcom_report_router

bridge: SmsBridge[Webcom] = SmsBridge(lambda: Webcom())
app = FastAPI(lifespan=bridge.lifespan)

# a real app keeps these in its database
DELIVERY: dict[str, str] = {}


class Notify(BaseModel):
    """One text to some numbers."""

    text: str
    phones: list[str]
    sender: str = "Shop"


class Sent(BaseModel):
    """What happened, in counts, and the gateway's message ids."""

    accepted: int
    rejected: int
    suppressed: int
    failed: int
    uncertain: int
    message_ids: list[str]


@app.post("/notify")
async def notify(body: Notify, sms: Webcom = Depends(bridge.client)) -> Sent:  # noqa: B008
    """Send one text to the given numbers."""
    report = await sms.send(body.text, to=body.phones, sender=body.sender)
    return Sent(
        accepted=report.accepted,
        rejected=report.rejected,
        suppressed=report.suppressed,
        failed=report.failed,
        uncertain=report.uncertain,
        message_ids=report.message_ids(),
    )


@app.get("/delivery/{message_id}")
async def delivery(message_id: str) -> dict[str, str | None]:
    """The last delivery state reported for a message."""
    return {"message_id": message_id, "state": DELIVERY.get(message_id)}


async def store(reports: Sequence[DeliveryReport]) -> list[str]:
    """Keep the reports; return the ids kept (only those are acknowledged)."""
    for report in reports:
        DELIVERY[report.message_id] = report.state.value
    return [report.message_id for report in reports]


SECRET = os.environ.get("REPORTS_SECRET", "")
if not SECRET:
    raise RuntimeError("set REPORTS_SECRET (16 characters or more) to receive delivery reports")
app.include_router(webcom_report_router(store, secret=SECRET, via="header"))
