"""The client base as a unit: credentials from the declaration, settings, secrecy, the
shared-state factory, send_message and the dry run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import pytest
from yarl import URL

from smsbridge import (
    ConfigurationError,
    HttpRequest,
    HttpResponse,
    InvalidInputError,
    Message,
    MockTransport,
    Router,
    SlidingWindowLimiter,
    SmsClub,
    SmsPlus,
    Status,
    Webcom,
)
from smsbridge._core.clock import Clock
from smsbridge.testing import FakeClock

from ..helpers import TOKEN, ua_numbers


def accept(request: HttpRequest) -> HttpResponse:
    phones = json.loads(request.body).get("phone") or [
        m["phone"] for m in json.loads(request.body)["data_message"]
    ]
    info = {f"id-{p}": p for p in phones}
    return HttpResponse(200, json.dumps({"success_request": {"info": info}}).encode())


def test_credentials_come_from_the_arguments_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Explicit arguments win; the environment fills in; Webcom's login+password are used
    when no token is given; nothing at all is a configuration error naming the ways."""
    monkeypatch.setenv("SMSBRIDGE_WEBCOM_TOKEN", "env-token")
    by_env = Webcom(base_url="http://127.0.0.1:9")
    by_login = Webcom(login="shop", password="pw", base_url="http://127.0.0.1:9")
    assert by_env.account != by_login.account
    assert by_login.gateway._credentials.login == "shop"
    assert by_env.gateway._credentials.token == "env-token"
    monkeypatch.delenv("SMSBRIDGE_WEBCOM_TOKEN")
    with pytest.raises(ConfigurationError) as caught:
        Webcom(base_url="http://127.0.0.1:9")
    assert "SMSBRIDGE_WEBCOM_TOKEN" in str(caught.value)
    assert "SMSBRIDGE_WEBCOM_LOGIN and SMSBRIDGE_WEBCOM_PASSWORD" in str(caught.value)


def test_the_account_is_named_by_a_digest_and_no_repr_shows_a_secret() -> None:
    """Two tokens, two accounts; neither token appears in any repr or in the account."""
    a = SmsClub("secret-one", base_url="http://127.0.0.1:9")
    b = SmsClub("secret-two", base_url="http://127.0.0.1:9")
    assert a.account != b.account and a.account.startswith("smsclub-")
    for client in (a, b):
        text = repr(client) + repr(client.gateway) + client.account
        assert "secret" not in text


@pytest.mark.parametrize(
    "options",
    [{"concurrency": 0}, {"concurrency": "9"}, {"base_url": "ftp://x"}, {"rate": 0}],
)
def test_bad_settings_fail_at_construction(options: dict[str, Any]) -> None:
    """Nonsense settings are configuration errors before anything runs."""
    with pytest.raises(ConfigurationError):
        SmsClub(TOKEN, **options)


def test_a_state_factory_gets_the_account_and_its_limits() -> None:
    """state= is called once with the account's name, a window secret and the limits."""
    calls: list[dict[str, Any]] = []

    class State:
        def __init__(self, clock: Clock) -> None:
            self.limiter = SlidingWindowLimiter(5, clock=clock)
            self.window = None

        async def aclose(self) -> None:
            pass

    def factory(**kw: Any) -> State:
        calls.append(kw)
        return State(kw["clock"])

    client = SmsClub(TOKEN, base_url="http://127.0.0.1:9", rate=5, state=factory)
    assert client.limiter is not None and client.window is None
    (call,) = calls
    assert (call["provider"], call["limit"], call["margin"]) == ("smsclub", 5, 0.05)
    assert len(call["secret"]) == 32 and TOKEN not in call["account"]


def test_a_state_factory_that_cannot_take_the_clients_keywords_is_named() -> None:
    """A state= written for other arguments is a ConfigurationError naming what it must
    take, not its own TypeError; a TypeError raised inside a factory that fits is its own."""
    with pytest.raises(ConfigurationError, match="state= must take the keywords account"):
        SmsClub(TOKEN, state=lambda url, ttl: None)  # type: ignore[arg-type]

    def broken(**kw: Any) -> Any:
        raise TypeError("the factory's own fault")

    with pytest.raises(TypeError, match="own fault"):
        SmsClub(TOKEN, state=broken)


async def test_send_message_is_the_gateways_own_send(clock: FakeClock) -> None:
    """A Message goes the same way as send(); a kind the gateway cannot carry is refused."""
    transport = MockTransport(accept)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        report = await sms.send_message(Message(sender="Shop", text="Hi"), to=list(ua_numbers(150)))
        assert (report.accepted, report.requests) == (150, 2)
        personal = await sms.send_message(Message(sender="Shop"), to=[("380501234567", "Hi you")])
        assert personal.accepted == 1
        with pytest.raises(InvalidInputError, match="not templates"):
            await sms.send_message(Message(sender="Shop", template=3), to=[])
    async with SmsPlus(TOKEN, transport=transport, clock=clock) as plus:
        with pytest.raises(InvalidInputError, match="template"):
            await plus.send_message(Message(sender="Shop", text="Hi"), to=[])


async def test_the_dry_run_builds_and_counts_but_sends_nothing(clock: FakeClock) -> None:
    """plan(): invalid numbers rejected, repeats suppressed, requests counted; no request
    reaches the transport, no rate slot is taken, the client's window stays empty."""
    transport = MockTransport(accept)
    numbers = [*ua_numbers(250), "nope", "380500000001"]
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        plan = await sms.plan(Message(sender="Shop", text="Hi"), to=numbers)
        assert sms.window is not None and len(sms.window) == 0  # type: ignore[arg-type]
        assert sms.limiter.has_capacity()  # type: ignore[attr-defined]
    assert transport.requests == []
    assert (plan.accepted, plan.rejected, plan.suppressed, plan.requests) == (250, 1, 1, 3)


async def test_one_number_as_a_str_is_one_recipient(clock: FakeClock) -> None:
    """`to="380..."` sends to that number, not to its characters; a mapping of personal
    texts gives its pairs."""
    transport = MockTransport(accept)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        report = await sms.send("Hi", to="380501234567", sender="Shop")
        assert (report.total, report.accepted) == (1, 1)
        assert report.outcomes[0].phone == "380501234567"
        personal = await sms.send_personal({"380501234568": "Hi you"}, sender="Shop")
        assert personal.accepted == 1
    sent = [json.loads(r.body) for r in transport.requests]
    assert sent[0]["phone"] == ["380501234567"]
    assert sent[1]["data_message"][0]["phone"] == "380501234568"


@pytest.mark.parametrize(
    ("to", "named"),
    [
        (None, "NoneType"),
        (380501234567, "int"),
        (b"380501234567", "bytes"),
        (memoryview(b"380501234567"), "memoryview"),
        ({"a": 1}, "dict"),
    ],
)
async def test_what_is_not_a_list_of_recipients_is_refused_before_any_request(
    clock: FakeClock, to: Any, named: str
) -> None:
    """None, a number, bytes or a mapping of numbers: a typed error naming the argument and
    what it got, and no request."""
    transport = MockTransport(accept)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        with pytest.raises(InvalidInputError, match=f"to= takes .* got {named}"):
            await sms.send("Hi", to=to, sender="Shop")
        with pytest.raises(InvalidInputError, match="to= takes"):
            await sms.plan(Message(sender="Shop", text="Hi"), to=to)
    assert transport.requests == []


@pytest.mark.parametrize("message", ["Hi", None, 3, {"text": "Hi"}])
async def test_a_message_that_is_no_message_is_refused_before_any_request(
    clock: FakeClock, message: Any
) -> None:
    """A text (or anything) where a Message goes: a typed error saying what a message is,
    where it was an AttributeError from deep inside."""
    transport = MockTransport(accept)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        for call in (sms.send_message, sms.plan):
            with pytest.raises(InvalidInputError, match=r"a message is a smsbridge\.Message"):
                await call(message, to=["380501234567"])
    assert transport.requests == []


async def test_keep_is_checked(clock: FakeClock) -> None:
    """A `keep` the report does not know is an error, not a silent default."""
    async with SmsClub(TOKEN, transport=MockTransport(accept), clock=clock) as sms:
        with pytest.raises(InvalidInputError, match="keep="):
            await sms.send("Hi", to=["380501234567"], sender="Shop", keep="some")  # type: ignore[arg-type]


async def test_a_str_subclass_is_a_number_like_any_other(clock: FakeClock) -> None:
    """numpy.str_ and friends: sent as plain digits, alone or among others (it crashed the
    send half-way through, with messages already sent)."""

    class Str(str):
        pass

    transport = MockTransport(accept)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        one = await sms.send("Hi", to=Str("380501234567"), sender="Shop")
        many = await sms.send("Ho", to=[*ua_numbers(150), Str("380509999999")], sender="Shop")
    assert (one.accepted, many.accepted) == (1, 151)


def test_an_option_no_client_takes_is_an_error() -> None:
    """A misspelt option (rate_limit for rate) would otherwise be ignored: the account would
    run at the default rate without a word."""
    with pytest.raises(ConfigurationError, match="takes no rate_limit"):
        SmsClub(TOKEN, rate_limit=5)  # type: ignore[call-arg]


async def test_a_text_no_request_can_carry_and_a_giant_int_settle_everyone(
    clock: FakeClock,
) -> None:
    """A lone surrogate in a personal text cannot be encoded, and 10**5000 cannot become a
    string: each recipient still gets one outcome (the surrogate's rejected before any
    request, the giant int rejected), the others go, and the send returns (it crashed before,
    with messages sent and no outcome reported). The surrogate's batch failed to build, and
    its every recipient with it: "fine" was failed, unsent."""
    transport = MockTransport(accept)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        personal = await sms.send_personal(
            [("380501234567", "fine"), ("380501234568", "bad \ud800")],
            sender="Shop",
            keep="all",
        )
        giant = await sms.send("Hi", to=["380501234569", 10**5000], sender="Shop")
        with pytest.raises(InvalidInputError, match=r"lone surrogate \(U\+D800 at 4\)"):
            await sms.send("bad \ud800", to=["380501234560"], sender="Shop")
    assert (personal.accepted, personal.rejected) == (1, 1)
    bad = next(o for o in personal.outcomes if o.phone == "380501234568")
    assert bad.reason == "the text holds a lone surrogate: it is no Unicode text"
    assert [json.loads(r.body)["data_message"] for r in transport.requests[:1]] == [
        [{"phone": "380501234567", "message": "fine"}]
    ]
    assert (giant.accepted, giant.rejected) == (1, 1)
    assert "too long" in (
        next(o for o in giant.outcomes if o.status is Status.REJECTED).reason or ""
    )


async def test_a_text_with_a_nul_is_refused_for_its_recipient_alone(clock: FakeClock) -> None:
    """A NUL in a text is refused, not sent (a gateway may end the message there): the
    send's one text before any request, a personal one for its recipient alone."""
    transport = MockTransport(accept)
    async with SmsClub(TOKEN, transport=transport, clock=clock) as sms:
        with pytest.raises(InvalidInputError, match=r"text holds a NUL character \(at 1\)"):
            await sms.send("a\x00b", to=["380501234560"], sender="Shop")
        assert transport.requests == []
        personal = await sms.send_personal(
            [("380501234567", "fine"), ("380501234568", "cut\x00 here")],
            sender="Shop",
            keep="all",
        )
    assert (personal.accepted, personal.rejected) == (1, 1)
    bad = next(o for o in personal.outcomes if o.phone == "380501234568")
    assert bad.reason == "the text holds a NUL character: a gateway may end the message there"
    assert [json.loads(r.body)["data_message"] for r in transport.requests] == [
        [{"phone": "380501234567", "message": "fine"}]
    ]


@pytest.mark.parametrize(
    ("options", "message", "routed"),
    [
        ({"on_outcom": print}, "unknown send option on_outcom", "does not take on_outcom"),
        ({"stop": True}, "stop= takes an anyio.Event, got bool", None),
        ({"on_outcome": "print"}, "on_outcome= takes a function, got str", None),
        ({"idempotency_key": 7}, "idempotency_key= takes str or bytes, got int", "does not take"),
        ({"stop": threading.Event()}, "stop= takes an anyio.Event, got Event", None),
        ({"observer": object()}, "observer= takes a BatchObserver", "does not take"),
        ({"indexed": "no"}, "indexed= takes True or False", "does not take"),
        ({"maybe_sent": 5}, "maybe_sent= takes a mapping, got int", "does not take"),
    ],
)
async def test_a_wrong_send_option_is_a_typed_error_before_anything_is_read(
    options: dict[str, Any], message: str, routed: str | None
) -> None:
    """A misspelt option is not ignored, a wrong kind is not a traceback mid-send: the send
    raises InvalidInputError at once, having read nothing and sent nothing."""
    read: list[str] = []

    def numbers() -> Iterator[str]:
        read.append("x")
        yield "380501234567"

    requests: list[HttpRequest] = []

    def handler(request: HttpRequest) -> HttpResponse:
        requests.append(request)
        return HttpResponse(500)

    async with SmsClub(TOKEN, transport=MockTransport(handler)) as sms:
        with pytest.raises(InvalidInputError, match=message):
            await sms.send("Hi", to=numbers(), sender="Shop", **options)
        router = Router({"UA": [sms]})
        with pytest.raises(InvalidInputError, match=routed or message):
            await router.send("Hi", to=numbers(), sender="Shop", **options)
    assert read == [] and requests == []


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("window_ttl", "120"),
        ("rate", 9.5),
        ("rate", True),
        ("rate_period", "1"),
        ("concurrency", True),
        ("timeouts", "x"),
        ("timeouts", 30),
        ("retry", 3),
        ("clock", "now"),
        ("on_event", "log"),
        ("account", 5),
        ("redis_url", 5),
        ("redis_outage", "30"),
        ("state", "redis://127.0.0.1:6379"),
        ("https", "yes"),
        ("at_least_once", 1),
        ("base_url", b"http://127.0.0.1:1"),
        ("transport", object()),
        ("limiter", 9),
        ("window", {}),
        ("ssl_context", "ca.pem"),
        ("rate_period", 10**400),  # a number, and no period a float can hold
    ],
)
def test_an_option_of_the_wrong_kind_is_refused_by_name(option: str, value: object) -> None:
    """Not a TypeError from somewhere deep in the first send, nor accepted and ignored: a
    ConfigurationError naming the option and the kind given, never the value."""
    with pytest.raises(ConfigurationError) as caught:
        SmsClub(TOKEN, **{option: value})  # type: ignore[arg-type]
    message = str(caught.value)
    assert f"{option} must be" in message and type(value).__name__ in message
    assert repr(value) not in message or isinstance(value, bool | int)


def test_options_of_number_kinds_beyond_int_and_float_are_taken() -> None:
    """A config pipeline's numbers (a Fraction; numpy's integers are Integral too) and a yarl
    URL, which worked before the kinds were checked, still do; a misspelt option is named
    first, whatever else is wrong."""
    sms = SmsClub(
        TOKEN,
        rate_period=Fraction(1),  # type: ignore[arg-type]
        window_ttl=Fraction(120),  # type: ignore[arg-type]
        base_url=URL("http://127.0.0.1:9"),  # type: ignore[arg-type]
    )
    assert str(sms.base_url) == "http://127.0.0.1:9"
    with pytest.raises(ConfigurationError, match="takes no bogus"):
        SmsClub(TOKEN, rate="x", bogus=1)  # type: ignore[call-arg, arg-type]
