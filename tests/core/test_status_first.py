"""Status before body, on every gateway: an HTTP status that says what happened (401/403,
429, 5xx) decides before any body text is classified. A 429 whose body says "Too many
requests" (or anything else) is a throttle, never a refusal of the recipients."""

from __future__ import annotations

import msgspec
import pytest

from smsbridge import (
    AuthenticationError,
    Batch,
    HttpResponse,
    RateLimitedError,
    SmsBridgeError,
    UnavailableError,
)
from smsbridge._core.ranges import IdBlocks, MemoryRanges
from smsbridge._smsclub.adapter import SmsClubGateway, SmsClubJob
from smsbridge._smsplus.adapter import SmsPlusGateway, SmsPlusJob
from smsbridge._webcom.adapter import WebcomGateway, WebcomJob

# bodies that, read alone, would be refusals of the request
BODIES: dict[str, list[dict[str, object]]] = {
    "webcom": [
        {"error": "Too many requests"},
        {"error": "Phone number is on the stop list"},
        {"error": "There is no such sender"},
    ],
    "smsclub": [
        {"status": 400, "message": "Sender name is incorrect"},
        {"success_request": {"add_info": {"src_addr": "Sender name is incorrect"}}},
        {"name": "Bad Request", "message": "Too many requests"},
    ],
    "smsplus": [
        {"success": False, "code": "110", "message": "Sender name not found"},
        {"message": "Too Many Attempts."},
    ],
}
EXPECTED: dict[int, type[SmsBridgeError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    429: RateLimitedError,
    500: UnavailableError,
    502: UnavailableError,
    503: UnavailableError,
}


def _parse(gateway: str, response: HttpResponse) -> object:
    batch = Batch([0, 1], ["380501234567", "380501234568"])
    if gateway == "webcom":
        webcom = WebcomGateway(token="t")
        return webcom.parse_send(
            batch,
            response,
            WebcomJob(sender="Shop", ids=IdBlocks(MemoryRanges(), b"k", 31), text="hi"),
        )
    if gateway == "smsclub":
        return SmsClubGateway("t").parse_send(batch, response, SmsClubJob(sender="S", text="hi"))
    return SmsPlusGateway("t").parse_send(batch, response, SmsPlusJob(sender="Shop", template_id=1))


@pytest.mark.parametrize("status", sorted(EXPECTED))
@pytest.mark.parametrize(
    ("gateway", "body"), [(g, b) for g, bodies in BODIES.items() for b in bodies]
)
def test_the_status_decides_before_the_body(gateway: str, body: object, status: int) -> None:
    """Whatever the body says, 401/403 are credentials, 429 a throttle (with Retry-After),
    5xx a failure that may have processed the request."""
    response = HttpResponse(status, msgspec.json.encode(body), {"retry-after": "3"})
    with pytest.raises(SmsBridgeError) as caught:
        _parse(gateway, response)
    error = caught.value
    assert type(error) is EXPECTED[status], (gateway, body, status, error)
    if status == 429:
        assert isinstance(error, RateLimitedError) and error.retry_after == 3.0
    assert error.maybe_processed is (status >= 500)
