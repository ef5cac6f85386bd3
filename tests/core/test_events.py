"""What a client tells who watches: the events of a send against a fake gateway over
loopback, the request log at DEBUG with numbers masked and no credential, and a hook that
fails without changing the send."""

from __future__ import annotations

import json
import logging

import pytest

from smsbridge import (
    Answered,
    Event,
    HttpRequest,
    HttpResponse,
    MockTransport,
    OutcomeBatch,
    RequestSent,
    RetryScheduled,
    SendFinished,
    SendStarted,
    SmsClub,
    mask_phone,
)
from smsbridge._core.events import mask_numbers
from smsbridge.testing import FakeClock, FakeSmsClub

from ..helpers import TOKEN, ua_numbers


async def test_a_send_tells_each_request_its_retry_and_its_outcomes(clock: FakeClock) -> None:
    """150 numbers, the first request answered 429: three tries written and answered (one
    429), one retry, outcome batches that add up to the report, one start and one finish,
    all of one send."""
    events: list[Event] = []
    async with FakeSmsClub(tokens=[TOKEN], rate_limit=None) as fake:
        fake.script(["rate_limited"])
        async with SmsClub(TOKEN, base_url=fake.url, clock=clock, on_event=events.append) as sms:
            report = await sms.send("Sale", to=ua_numbers(150), sender="Shop")
    assert (report.accepted, report.requests) == (150, 3)
    started = [e for e in events if isinstance(e, SendStarted)]
    assert len(started) == 1 and started[0].gateway == "smsclub"
    send = started[0].send
    sent = [e for e in events if isinstance(e, RequestSent)]
    answered = [e for e in events if isinstance(e, Answered)]
    assert sorted((e.recipients, e.attempt) for e in sent) == [(50, 1), (100, 1), (100, 2)]
    assert sorted((e.status, e.recipients) for e in answered if e.status is not None) == [
        (200, 50),
        (200, 100),
        (429, 100),
    ]
    refused = next(e for e in answered if e.status == 429)
    assert refused.error is not None and refused.error.startswith("RateLimitedError")
    assert all(e.path == "/sms/send" and e.send == send for e in sent)
    assert all(e.path == "/sms/send" and e.send == send for e in answered)
    assert all(e.seconds >= 0 and e.error is None for e in answered if e.status == 200)
    retries = [e for e in events if isinstance(e, RetryScheduled)]
    assert len(retries) == 1 and retries[0].attempt == 1 and retries[0].delay > 0
    batches = [e for e in events if isinstance(e, OutcomeBatch)]
    assert sum(b.counts.accepted for b in batches) == 150
    finished = events[-1]
    assert isinstance(finished, SendFinished) and finished.send == send
    assert finished.counts == report.counts() and not finished.dry_run
    assert len(fake.record().sent) == 150


def _failing_then_accepting() -> MockTransport:
    """A 500 whose text names the number and the token, then an acceptance."""
    answers = iter(["fail"])

    def answer(request: HttpRequest) -> HttpResponse:
        phones = json.loads(request.body)["phone"]
        if next(answers, None) == "fail":
            text = f"failed for {phones[0]} with {TOKEN}"
            return HttpResponse(500, json.dumps({"status": 500, "message": text}).encode())
        info = {f"id-{p}": p for p in phones}
        return HttpResponse(200, json.dumps({"success_request": {"info": info}}).encode())

    return MockTransport(answer)


async def test_the_debug_log_masks_numbers_and_never_shows_a_token(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Every line at DEBUG (a request each, the retry, the send's summary): the canary
    number appears only masked, the token not at all."""
    canary = "380501234567"
    with caplog.at_level(logging.DEBUG, logger="smsbridge"):
        async with SmsClub(TOKEN, transport=_failing_then_accepting(), clock=clock) as sms:
            report = await sms.send("Sale", to=[canary], sender="Shop")
    assert report.accepted == 1
    lines = [r.getMessage() for r in caplog.records]
    text = "\n".join(lines)
    assert canary not in text and TOKEN not in text
    assert mask_phone(canary) in text  # the 500's text, masked
    requests = [line for line in lines if line.startswith("smsclub /sms/send: ")]
    assert len(requests) == 2 and requests[0].startswith("smsclub /sms/send: 500 in ")
    assert "(1 recipients, try 1," in requests[0] and "(1 recipients, try 2," in requests[1]
    assert lines[-1].startswith("smsclub: 1 recipients in ") and "1 accepted" in lines[-1]


async def test_a_failing_hook_changes_nothing(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook that raises is logged once per event and the send goes on as without it."""

    def broken(event: Event) -> None:
        raise RuntimeError("observer bug")

    async with SmsClub(
        TOKEN, transport=_failing_then_accepting(), clock=clock, on_event=broken
    ) as sms:
        report = await sms.send("Sale", to=list(ua_numbers(3)), sender="Shop")
    assert (report.accepted, report.failed, report.uncertain) == (3, 0, 0)
    assert any("the event hook failed on SendFinished" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+380 50 123 45 67 is blocked", "380*******67 is blocked"),
        ("ids 12345 and 2026-11-30", "ids 12345 and 2026-11-30"),
        ("994501234567,994501234568", "994*******67,994*******68"),
        ("numbers 380501234567 380501234568 failed", "numbers 380*******************68 failed"),
        ("+380 (50) 123 - 45 - 67", "380*******67"),
        ("380\u00a050\u2009123\u202f45\u201367", "380*******67"),
        (repr("380\u00a050\u00a0123\u00a045\u00a067"), "'380***********67'"),
        ("tel 380_50_123_45_67.", "tel 380*******67."),
        (
            "380501\u200b234567 and 380\u00ad50\u00ad123\u00ad45\u00ad67",
            "380*******67 and 380*******67",
        ),
        ("380 - - 50 - - 123 - - 45 - - 67", "380*******67"),
        ("%2B380+50+123+45+67", "%2B380*******67"),
        ("to=380%2050%20123%2045%2067", "to=380***************67"),
        (repr("38050\t1234567"), "'380*******67'"),
    ],
)
def test_numbers_in_texts_are_masked_and_short_figures_kept(text: str, masked: str) -> None:
    """Runs of 9 or more digits lose all but their first three and last two, however the
    number is written (any space, a dash, brackets; as an error's repr writes a no-break
    space), and numbers side by side are masked as one run: none is cut where it shows."""
    assert mask_numbers(text) == masked


async def test_a_token_the_gateway_echoes_is_blanked_in_the_error(clock: FakeClock) -> None:
    """A refusal that quotes the token: the error raised (and its repr) shows *** instead,
    and so does a send's report."""
    from smsbridge import AuthenticationError

    def refuse(request: HttpRequest) -> HttpResponse:
        body = {"status": 401, "message": f"token {TOKEN} is not known"}
        return HttpResponse(401, json.dumps(body).encode())

    async with SmsClub(TOKEN, transport=MockTransport(refuse), clock=clock) as sms:
        with pytest.raises(AuthenticationError) as raised:
            await sms.balance()
        report = await sms.send("Sale", to=["380501234567"], sender="Shop")
    for text in (str(raised.value), repr(raised.value), str(report.error)):
        assert TOKEN not in text and "token *** is not known" in text


async def test_a_token_echoed_url_encoded_is_blanked_too(clock: FakeClock) -> None:
    """The token as a URL or a form carries it (`+` and `/` escaped) is blanked as well."""
    from smsbridge import AuthenticationError

    token = "Sup3r+Secret/Token"

    def refuse(request: HttpRequest) -> HttpResponse:
        body = {"status": 401, "message": "bad token Sup3r%2BSecret%2FToken"}
        return HttpResponse(401, json.dumps(body).encode())

    async with SmsClub(token, transport=MockTransport(refuse), clock=clock) as sms:
        with pytest.raises(AuthenticationError) as raised:
            await sms.balance()
    assert "Sup3r" not in str(raised.value) and "bad token ***" in str(raised.value)
