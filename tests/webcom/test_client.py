"""Webcom end to end against the fake over loopback: a 50,000-recipient personalised send,
exactly-once under injected faults, the delivery-report webhook round trip, and the rest."""

from __future__ import annotations

import asyncio
import json
import random
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from aiohttp import web

from smsbridge import (
    AuthenticationError,
    ConfigurationError,
    DeliveryReport,
    DeliveryState,
    HttpRequest,
    HttpResponse,
    InsecureTransportWarning,
    InsufficientBalanceError,
    InvalidInputError,
    MockTransport,
    Outcome,
    RetryPolicy,
    SmsClub,
    Status,
    Timeouts,
    Webcom,
    report_handler,
)
from smsbridge.testing import FakeWebcom, Faults

from ..helpers import TOKEN


def ru(i: int) -> str:
    return f"7916{i:07d}"


def personal(count: int, texts: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(ru(i), f"Offer #{rng.randrange(texts)} for you") for i in range(count)]


async def test_fifty_thousand_personal_texts_in_envelopes() -> None:
    """50,000 recipients, 1,000 distinct texts: every number gets exactly its own text."""
    pairs = personal(50_000, 1_000)
    async with (
        FakeWebcom(tokens=[TOKEN]) as fake,
        Webcom(TOKEN, base_url=fake.url, rate=1000, concurrency=16) as sms,
    ):
        report = await sms.send_personal(pairs, sender="Shop", keep="none")
    assert (report.accepted, report.requests) == (50_000, 500)
    got = {m.phone: m.text for m in fake.sent}
    assert len(fake.sent) == len(got) == 50_000
    assert got == dict(pairs)
    assert len({m.client_id for m in fake.sent}) == 50_000


FAULTS = Faults(
    error_before=0.03,
    error_after=0.04,
    hang_after=0.04,
    garbage_before=0.02,
    garbage_after=0.04,
    reset_after=0.04,
    rate_limited=0.03,
    hang_seconds=2.0,
    retry_after=0.01,
    seed=4,
)


async def test_exactly_once_under_faults() -> None:
    """Hangs after accepting, 5xx, garbage and resets are retried with the same client ids:
    nobody is sent twice, nobody is lost, and no outcome is uncertain."""
    outcomes: dict[int, Outcome] = {}
    async with (
        FakeWebcom(tokens=[TOKEN], faults=FAULTS) as fake,
        Webcom(
            TOKEN,
            base_url=fake.url,
            rate=500,
            concurrency=16,
            timeouts=Timeouts(connect=2, read=0.4, total=5),
            retry=RetryPolicy(attempts=10, backoff=0.01, max_backoff=0.05),
        ) as sms,
    ):
        report = await sms.send(
            "Sale today",
            to=(ru(i) for i in range(20_000)),
            sender="Shop",
            keep="none",
            on_outcome=lambda o: outcomes.__setitem__(o.index, o),
        )
        assert report.accepted == 20_000
        assert (report.uncertain, report.failed) == (0, 0)
        assert report.requests > 200  # the faults really cost retries
        assert fake.replayed > 0  # ...and some retries were answered from the first send
        counts = fake.sent_counts()
        assert len(counts) == 20_000 and set(counts.values()) == {1}
        ids = {m.phone: m.id for m in fake.sent}
        assert all(ids[o.phone] == o.message_id for o in outcomes.values())
    assert {r.fault for r in fake.requests} >= {"hang_after", "error_after", "reset_after"}


async def test_a_resumed_send_with_the_same_key_sends_nobody_twice() -> None:
    """A second process re-running the send with its idempotency key (its own duplicate
    window knows nothing) gets the earlier ids back, and the gateway sends nothing."""
    phones = [ru(i) for i in range(250)]
    async with FakeWebcom(tokens=[TOKEN]) as fake:
        async with Webcom(TOKEN, base_url=fake.url) as first_process:
            first = await first_process.send(
                "hi", to=phones, sender="Shop", idempotency_key="campaign-1"
            )
        async with Webcom(TOKEN, base_url=fake.url) as second_process:
            second = await second_process.send(
                "hi", to=phones, sender="Shop", idempotency_key="campaign-1"
            )
    assert len(fake.sent) == 250 and fake.replayed == 250
    assert second.message_ids() == first.message_ids()


async def test_a_key_reused_for_another_text_takes_other_ids() -> None:
    """The same key, another text (a key reused by mistake): the second text is sent under
    ids of its own, not answered "already sent" with the first text's ids."""
    phones = [ru(i) for i in range(3)]
    async with FakeWebcom(tokens=[TOKEN]) as fake, Webcom(TOKEN, base_url=fake.url) as sms:
        first = await sms.send("hi", to=phones, sender="Shop", idempotency_key="k")
        second = await sms.send("bye", to=phones, sender="Shop", idempotency_key="k")
    assert first.accepted == second.accepted == 3 and fake.replayed == 0
    assert sorted((m.phone, m.text) for m in fake.sent) == sorted(
        [(p, "hi") for p in phones] + [(p, "bye") for p in phones]
    )
    assert not set(first.message_ids()) & set(second.message_ids())


class Store:
    """A report store that refuses some reports the first time it sees them."""

    def __init__(self, flaky: set[str]) -> None:
        self.flaky = flaky
        self.saved: dict[str, DeliveryReport] = {}
        self.calls = 0

    async def __call__(self, reports: Sequence[DeliveryReport]) -> list[str]:
        self.calls += 1
        stored = []
        for report in reports:
            if report.message_id in self.flaky:
                self.flaky.discard(report.message_id)  # fails once, then works
                continue
            self.saved[report.message_id] = report
            stored.append(report.message_id)
        return stored


async def test_delivery_report_webhook_round_trip() -> None:
    """The fake posts reports; the handler stores and echoes them; what was not stored is
    posted again, and the fake stops once everything is acknowledged."""
    async with FakeWebcom(tokens=[TOKEN]) as fake, Webcom(TOKEN, base_url=fake.url) as sms:
        report = await sms.send("hi", to=[ru(i) for i in range(40)], sender="Shop")
        ids = report.message_ids()
        store = Store(flaky=set(ids[:5]))
        app = web.Application()
        app.router.add_post("/reports", report_handler(store))
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            url = f"http://127.0.0.1:{runner.addresses[0][1]}/reports"
            posts = await fake.post_reports(url, {int(i): "deliver" for i in ids})
        finally:
            await runner.cleanup()
        assert [len(p) for p in posts] == [40, 5]
        assert sorted(posts[1]) == sorted(int(i) for i in ids[:5])
        assert fake.acknowledged == {int(i) for i in ids}
        assert set(store.saved) == set(ids)
        assert {r.state for r in store.saved.values()} == {DeliveryState.DELIVRD}
        statuses = await sms.status(ids[:3])
    assert [s.state for s in statuses] == [DeliveryState.DELIVRD] * 3


async def test_report_handler_limits_and_garbage() -> None:
    """Oversized and unreadable bodies are refused; a failing store acknowledges nothing."""
    from aiohttp.test_utils import TestClient, TestServer

    async def broken(reports: Sequence[DeliveryReport]) -> list[str]:
        raise RuntimeError("database down")

    app = web.Application()
    app.router.add_post("/ok", report_handler(Store(set()), max_bytes=200))
    app.router.add_post("/broken", report_handler(broken))
    async with TestClient(TestServer(app)) as client:
        big = await client.post("/ok", data=b"[" + b'{"id_sms": 1},' * 50 + b"{}]")
        assert big.status == 413
        bad = await client.post("/ok", data=b"<html>")
        assert bad.status == 400
        ok = await client.post("/ok", json=[{"id_sms": 7, "time": "", "state": "expired"}])
        assert (ok.status, await ok.json()) == (200, [{"id_sms": 7}])
        failing = await client.post("/broken", json=[{"id_sms": 7, "state": "deliver"}])
        assert failing.status == 500


async def test_a_report_sent_again_while_it_is_being_stored_is_stored_once() -> None:
    """A slow store, and the gateway sending the same reports again meanwhile (its retry,
    or one body holding a report twice): each is stored once, and every request that
    brought it acknowledges it once stored. An id is acknowledged only where every report
    of it in the body is stored (the gateway stops sending all of them): not where the
    request it waited for failed to store one, nor where one already stored stands beside
    one the store refused."""
    from aiohttp.test_utils import TestClient, TestServer

    release, called = asyncio.Event(), asyncio.Event()
    calls: list[list[str]] = []
    refused = {("9", "deliver"), ("11", "expired")}

    async def slow(reports: Sequence[DeliveryReport]) -> list[str]:
        calls.append([f"{r.message_id} {r.raw}" for r in reports])
        called.set()
        await release.wait()
        return [r.message_id for r in reports if (r.message_id, r.raw) not in refused]

    async def stored(count: int) -> None:  # until the store was called that often
        while len(calls) < count:
            called.clear()
            await called.wait()

    def post(client: TestClient[Any, Any], *reports: tuple[int, str]) -> asyncio.Future[Any]:
        body = [{"id_sms": i, "state": state} for i, state in reports]
        return asyncio.ensure_future(client.post("/reports", json=body))

    app = web.Application()
    app.router.add_post("/reports", report_handler(slow))
    async with TestClient(TestServer(app)) as client:
        posts = [post(client, (7, "deliver"), (7, "deliver"))]
        await stored(1)
        posts.append(post(client, (7, "deliver"), (8, "deliver")))  # its 7 waits for the first
        await stored(2)
        release.set()
        answers = [await (await p).json() for p in posts]
        assert calls == [["7 deliver"], ["8 deliver"]]  # 7 once, though sent three times
        assert answers == [[{"id_sms": 7}], [{"id_sms": 7}, {"id_sms": 8}]]

        release.clear()
        calls.clear()
        posts = [post(client, (9, "deliver"))]  # refused
        await stored(1)
        posts.append(post(client, (9, "deliver"), (9, "expired"), (10, "deliver")))
        await stored(2)
        release.set()
        answers = [await (await p).json() for p in posts]
        assert calls == [["9 deliver"], ["9 expired", "10 deliver"]]
        assert answers == [[], [{"id_sms": 10}]]  # 9's "deliver" is not stored yet

        calls.clear()
        assert await (await post(client, (11, "deliver"))).json() == [{"id_sms": 11}]
        beside = post(client, (11, "deliver"), (11, "expired"))  # the first stored already
        assert await (await beside).json() == []
        assert calls == [["11 deliver"], ["11 expired"]]


async def test_an_id_is_acknowledged_only_once_each_report_of_it_is_stored() -> None:
    """The gateway takes an acknowledged id for every report of it: one state of a message
    stored does not acknowledge it while another is refused, or is still being stored by a
    request that then fails; ids written "07" and 7 are one message; and the store is
    given one state of a message a call, so that the ids it answers with say which."""
    from aiohttp.test_utils import TestClient, TestServer

    calls: list[list[str]] = []
    rows: dict[str, str] = {}
    failing, asked, holding = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def first_state_only(reports: Sequence[DeliveryReport]) -> list[str]:
        said = [f"{r.message_id} {r.raw}" for r in reports]
        calls.append(said)
        if said == ["13 deliver"]:  # held until the other state's request has stored its own
            holding.set()
            await failing.wait()
            raise RuntimeError("database gone")
        if said == ["13 send"]:
            asked.set()
        stored = [r.message_id for r in reports if str(int(r.message_id)) not in rows]
        rows.update((str(int(r.message_id)), r.raw) for r in reports)
        return stored

    app = web.Application()
    app.router.add_post("/reports", report_handler(first_state_only))
    async with TestClient(TestServer(app)) as client:

        async def post(*reports: tuple[int | str, str]) -> tuple[int, str]:
            body = [{"id_sms": i, "state": state} for i, state in reports]
            answer = await client.post("/reports", json=body)
            return answer.status, await answer.text()

        assert await post((12, "send"), (12, "deliver")) == (200, "[]")  # "deliver" not kept
        assert calls == [["12 send"], ["12 deliver"]]
        assert await post(("07", "deliver"), (7, "expired")) == (200, "[]")
        assert await post((8, "deliver")) == (200, '[{"id_sms":8}]')

        other = asyncio.ensure_future(post((13, "deliver")))
        await holding.wait()
        asking = asyncio.ensure_future(post((13, "send")))
        await asked.wait()  # "send" stored; "deliver" still being stored, then it fails
        failing.set()
        assert (await other)[0] == 500
        assert await asking == (200, "[]")
        assert rows["13"] == "send"


async def test_stop_listed_number_refusing_the_document_is_isolated() -> None:
    """When one stop-listed number makes the gateway refuse the whole request, the request is
    halved until that number stands alone: the others go, it alone is rejected."""
    async with (
        FakeWebcom(tokens=[TOKEN], stop_list={ru(37)}, stop_list_errors="document") as fake,
        Webcom(TOKEN, base_url=fake.url) as sms,
    ):
        report = await sms.send("hi", to=[ru(i) for i in range(100)], sender="Shop")
    assert (report.accepted, report.rejected) == (99, 1)
    assert report.by_status(Status.REJECTED)[0].phone == ru(37)
    assert report.requests <= 1 + 2 * 7
    assert len(fake.sent) == 99


async def test_credentials_by_login_and_wrong_ones() -> None:
    """Login and password work; wrong ones fail everyone with AuthenticationError."""
    async with (
        FakeWebcom(tokens=[], accounts={"shop": "pw"}) as fake,
        Webcom(login="shop", password="pw", base_url=fake.url) as sms,
    ):
        assert (await sms.send("hi", to=[ru(1)], sender="Shop")).accepted == 1
        assert (await sms.balance()).packages[1].count is None
    async with (
        FakeWebcom(tokens=[], accounts={"shop": "pw"}) as fake,
        Webcom(login="shop", password="wrong", base_url=fake.url) as sms,
    ):
        report = await sms.send("hi", to=[ru(i) for i in range(300)], sender="Shop", keep="none")
    assert report.failed == 300
    assert isinstance(report.error, AuthenticationError)


async def test_out_of_sms_stops_the_send() -> None:
    """An account out of messages stops the send: the rest are failed, not dropped."""
    async with (
        FakeWebcom(tokens=[TOKEN], sms_left=150) as fake,
        Webcom(TOKEN, base_url=fake.url, concurrency=1) as sms,
    ):
        report = await sms.send("hi", to=[ru(i) for i in range(500)], sender="Shop", keep="none")
    assert (report.accepted, report.failed, report.total) == (100, 400, 500)
    assert isinstance(report.error, InsufficientBalanceError)


def test_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Env credentials, input checks, and the plain-HTTP policy of the documented URL."""
    for name in ("TOKEN", "LOGIN", "PASSWORD", "URL"):
        monkeypatch.delenv(f"SMSBRIDGE_WEBCOM_{name}", raising=False)
    with pytest.raises(ConfigurationError, match="SMSBRIDGE_WEBCOM_TOKEN"):
        Webcom()
    monkeypatch.setenv("SMSBRIDGE_WEBCOM_LOGIN", "shop")
    monkeypatch.setenv("SMSBRIDGE_WEBCOM_PASSWORD", "s3cret-pw")
    sms = Webcom()
    assert str(sms.base_url) == "http://lk.mysmpp.ru"
    assert "s3cret-pw" not in repr(sms) + repr(sms.gateway)
    # nor the digest of the credentials (a guessed password could be tried against it),
    # where the account was not given a name
    assert sms.account[-12:] not in repr(sms) and "account=" not in repr(sms)
    assert "account='shop-main'" in repr(Webcom(account="shop-main"))
    with pytest.raises(ConfigurationError, match="refusing plain http"):
        Webcom(TOKEN, base_url="http://example.com")
    assert str(Webcom(TOKEN, base_url="https://lk.mysmpp.ru").base_url) == "https://lk.mysmpp.ru"


async def test_plain_http_to_the_documented_host_warns_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Opening a client on the default http:// URL warns, once per host, naming the
    platform's HTTPS address and how to use it."""
    import smsbridge._core.client

    # once per process: another test of this worker may have opened such a client first
    monkeypatch.setattr(smsbridge._core.client, "_warned_hosts", set())
    with pytest.warns(InsecureTransportWarning, match="plain HTTP to lk.mysmpp.ru") as caught:
        async with Webcom(TOKEN):
            pass
    assert "https://my3.webcom.mobi (https=True, or SMSBRIDGE_WEBCOM_URL=" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        async with Webcom(TOKEN):
            pass


def test_https_takes_the_platforms_https_address() -> None:
    """https=True: the known HTTPS host, no warning; not with base_url; not for a gateway
    whose documented address is already HTTPS."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert str(Webcom(TOKEN, https=True).base_url) == "https://my3.webcom.mobi"
    with pytest.raises(ConfigurationError, match="not both"):
        Webcom(TOKEN, https=True, base_url="https://lk.mysmpp.ru")
    with pytest.raises(ConfigurationError, match="no HTTPS address"):
        SmsClub(TOKEN, https=True)


async def test_bad_arguments() -> None:
    """Senders, channels and texts that can never be sent fail before any request."""
    async with FakeWebcom(tokens=[TOKEN]) as fake, Webcom(TOKEN, base_url=fake.url) as sms:
        for kwargs in (
            {"sender": "A very long sender"},
            {"sender": "Shop", "channel": "telegram"},
        ):
            with pytest.raises(InvalidInputError):
                await sms.send("hi", to=[ru(1)], **kwargs)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            await sms.send("", to=[ru(1)], sender="Shop")
        viber = await sms.send("hi", to=[ru(1)], sender="Shop", channel="viber")
    assert viber.accepted == 1 and fake.sent


def _accepting(sent: list[tuple[str, Any]]) -> Callable[[HttpRequest], HttpResponse]:
    """A Webcom that accepts every phone under its ``client_id_sms``, noting
    ``(phone, client_id_sms)`` in ``sent``."""

    def accept(request: HttpRequest) -> HttpResponse:
        body = json.loads(request.body)
        phones = [p for m in body["message"] for p in m["phones"]]
        sent.extend((p["phone"], p["client_id_sms"]) for p in phones)
        info = [{"state": "1", "id_sms": p["client_id_sms"]} for p in phones]
        return HttpResponse(200, json.dumps({"information": info}).encode())

    return accept


@pytest.mark.parametrize("source", [list, iter])
async def test_indexed_entries_whose_index_cannot_name_them_are_rejected(
    source: Callable[[list[Any]], Any],
) -> None:
    """An index names its recipient, and Webcom's message id is derived from it: a negative
    index failed its whole batch ("could not be built"), and one that is no number raised
    TypeError out of the send. Both are rejected with the reason; the others go, in any
    order (a router hands a gateway the recipients others gave up on, later)."""
    sent: list[tuple[str, Any]] = []
    accept = _accepting(sent)

    rows: list[Any] = [
        (7, "79160000001"),
        (3, "79160000003"),
        (-5, "79160000004"),
        ("a", "79160000005"),
        (True, "79160000006"),
        (9, "79160000007"),
        "79160000008",
        (11, "79160000009", "x"),
    ]
    async with Webcom(token=TOKEN, https=True, transport=MockTransport(accept)) as wc:
        report = await wc.send("Sale", to=source(rows), sender="Shop", indexed=True)
    got = [(o.index, o.phone, o.status) for o in report.outcomes]
    not_pairs = ("79160000008", "(11, '79160000009', 'x')")
    assert {(o.phone, o.reason) for o in report.outcomes if o.phone in not_pairs} == {
        (phone, "the entry is not an (index, entry) pair") for phone in not_pairs
    }
    assert sorted(got) == sorted(
        [
            (7, "79160000001", Status.ACCEPTED),
            (3, "79160000003", Status.ACCEPTED),
            (-5, "79160000004", Status.REJECTED),
            (-1, "79160000005", Status.REJECTED),
            (-1, "79160000006", Status.REJECTED),
            (9, "79160000007", Status.ACCEPTED),
            (-1, "79160000008", Status.REJECTED),
            (-1, "(11, '79160000009', 'x')", Status.REJECTED),
        ]
    )
    assert sorted(phone for phone, _ in sent) == ["79160000001", "79160000003", "79160000007"]
    assert len({client_id for _, client_id in sent}) == 3


@pytest.mark.parametrize("source", [list, iter])
async def test_indexed_entries_past_the_ids_a_send_can_tell_apart_are_rejected(
    source: Callable[[list[Any]], Any],
) -> None:
    """Ids are taken modulo the id space: two indices one id space apart got one
    ``client_id_sms`` (the second was reported accepted and never sent), and an index of
    25,000 digits raised OverflowError out of the send. Both are rejected; pairs given as
    lists (as ``json.loads`` gives them) have their ids claimed as tuples do (they failed
    with IndexError)."""
    sent: list[tuple[str, Any]] = []
    accept = _accepting(sent)

    rows: list[Any] = [
        [150, "79160000001"],
        (10**10, "79160000002"),
        (10**10 + 2**31 - 1, "79160000003"),
        (10**25_000, "79160000004"),
        (151, "79160000005"),
    ]
    async with Webcom(token=TOKEN, https=True, transport=MockTransport(accept)) as wc:
        report = await wc.send("Sale", to=source(rows), sender="Shop", indexed=True)
    got = {o.phone: o.status for o in report.outcomes}
    assert got == {
        "79160000001": Status.ACCEPTED,
        "79160000002": Status.REJECTED,
        "79160000003": Status.REJECTED,
        "79160000004": Status.REJECTED,
        "79160000005": Status.ACCEPTED,
    }
    assert sorted(phone for phone, _ in sent) == ["79160000001", "79160000005"]
    assert len({client_id for _, client_id in sent}) == 2


@pytest.mark.parametrize("source", [list, iter])
async def test_an_index_read_twice_in_a_send_is_rejected_the_second_time(
    source: Callable[[list[Any]], Any],
) -> None:
    """Webcom's ``client_id_sms`` comes from the index: a second entry with an index the
    send had read got the first one's id, and the gateway answered it with the first
    message's id, so it was reported ``accepted`` and never sent. Now it is ``rejected``
    with the reason, whether the repeat is in the same chunk, thousands of entries later,
    or past the indices kept a byte each; its neighbours go."""
    far = (1 << 24) + 5
    rows: list[Any] = [(i, ru(i)) for i in range(3000)]
    rows[1] = (0, ru(900_001))  # the same chunk
    rows[2900] = (17, ru(900_002))  # thousands later
    rows += [(far, ru(900_003)), (far, ru(900_004)), (far + 1, ru(900_005))]
    async with (
        FakeWebcom(tokens=[TOKEN], rate_limit=None) as fake,
        Webcom(TOKEN, base_url=fake.url, rate=1_000_000) as sms,  # the rate is not what is tried
    ):
        report = await sms.send("Sale", to=source(rows), sender="Shop", indexed=True)
    repeats = {ru(900_001): 0, ru(900_002): 17, ru(900_004): far}
    rejected = {
        o.phone: (o.index, o.reason) for o in report.outcomes if o.status is Status.REJECTED
    }
    assert rejected == {
        phone: (index, f"its index {index} repeats an earlier entry's in this send")
        for phone, index in repeats.items()
    }
    assert report.accepted == len(rows) - 3 and report.uncertain == report.failed == 0
    at_gateway = [m.phone for m in fake.sent]
    assert sorted(at_gateway) == sorted(phone for _, phone in rows if phone not in repeats)
    assert len(set(at_gateway)) == len(at_gateway)
