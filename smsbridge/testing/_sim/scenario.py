"""One seed, one world: which gateway, which recipients, which faults, what the caller does.

Everything a run does is drawn here from ``random.Random(seed)``, up front, so that a failing
seed is a complete description of the failure: ``SEED=n make sim`` replays it exactly.

Most seeds draw one gateway. About three seeds in ten (decided by a random source of their
own, so the others draw what they always drew) draw a *routed* world instead: library sends
through a :class:`~smsbridge.Router` over two or three gateways. A routed world draws:

- the gateways: SMS Club and Webcom, and SMSPlus one time in three (for a template send,
  SMSPlus and one or both of the others); each with its own fake, network and account, drawn
  independently as a lone gateway's are: its faults (5xx, 429, hangs, resets, unreadable
  answers), refused connections (one gateway in ten refuses every one: it is down), slow
  answers, its own rate limit, a wrong token or unknown sender (the account refused for every
  request), refused numbers, a balance that runs out, Webcom holding messages until paid;
- the message: one text, personal texts, or (one time in seven) an SMSPlus template;
- recipients of several countries: Ukraine, Russia, Azerbaijan, Kazakhstan (whose numbers
  also start with 7, and have no route) and Georgia (no route); Ukrainian ones sometimes in
  national form when the router's default country is Ukraine; invalid and repeated ones;
- routes for Ukraine, Russia and Azerbaijan (now and then one is missing): each an ordered
  choice of one to three of the gateways, so that most have a gateway to fail over to, and
  some name a gateway that cannot send the message (the router passes over it);
- Kazakhstan, half the time, as a country whose gateways cannot be used (``unavailable``:
  its recipients end ``failed``, not ``rejected``);
- the router's health: trips after 1 to 3 requests in a row that surely did not go, cool-down
  of 0 to 60 s;
- the sends, as in the library mode: one to three at once through the one router, some
  cancelled or stopped, maybe the same again, the caller's callback or input failing.

A recipient the router must refuse before any request (no route, no gateway of its route for
the message, no country code) is, to the oracle, an invalid one: its ``phone`` is ``None``.
Routed worlds keep their state in memory (the router's one duplicate window) and are never
campaigns. As a lone gateway's, one template recipient in twenty has parameters the template
cannot fit: ``rejected``, even when its gateway never read it (tripped, or its send stopped
first), since the router checks such a recipient as the gateway would have.
"""

from __future__ import annotations

import random
from typing import Any, Literal

import msgspec

from ..._core.retry import RetryPolicy
from ..._fake import FAULTS, Faults
from ..._gateways import spec
from .net import Net
from .redis import RedisFaults

__all__ = ["Account", "Entry", "Routing", "Scenario", "SendPlan", "calmed", "draw"]

GATEWAYS = ("smsclub", "smsplus", "webcom")
SENDER = "Shop"
TEMPLATE = "Code {1}"
TEMPLATE_ID = 7
ROUTED = 0.3
"""The share of seeds that draw a routed world."""
CALM = 0.05
"""The share of seeds whose world is calmed: drawn as any other, then every fault taken out."""
PREFIXES = {"UA": "38050", "RU": "7916", "AZ": "99450", "KZ": "7701", "GE": "99555"}
"""The numbers of each country a routed world draws (``i`` appended in 7 digits)."""
Kind = Literal["text", "personal", "template"]


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One recipient as the caller gives it, with what the simulator knows of it.

    Attributes:
        raw: the number as given.
        phone: the number in the gateway's form; ``None`` when it must be ``rejected``
            before any request (it cannot be valid; routed, it has nowhere to go).
        text: its own text (personalised sends), else ``None``.
        params: its template parameters (SMSPlus), else ``None``.
        bad_params: the parameters cannot fit the template (a true local ``rejected``).
    """

    raw: str
    phone: str | None
    text: str | None = None
    params: tuple[str, ...] | None = None
    bad_params: bool = False


class SendPlan(msgspec.Struct, frozen=True, kw_only=True):
    """One send of the library mode: which entries, on which client, what the caller does
    to it (cancel its task, or set its stop event, at a loop step), and whether its input
    makes it wait (an async input whose entries come a few at a time)."""

    entries: list[int]
    client: int = 0
    cancel_at: int | None = None
    stop_at: int | None = None
    trickle: float | None = None  # its input is async, waiting this long every 7 entries
    # its input is indexed, entry ``p`` given index ``p * spread + 3``: a Webcom send then
    # claims id blocks far past those its entries would use in order, after reading each
    spread: int | None = None
    # cancelled as its n-th command to the shared store (Redis) waits for its answer
    cancel_in_store: int | None = None
    # once cancelled, cancelled again at the n-th outcome after that (its callback is async)
    cancel_again: int | None = None


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """One gateway of a world as its fake and the network to it behave: drawn for each
    gateway of a routed world, read off the scenario's own fields for a lone gateway."""

    gateway: str
    faults: Faults
    net: Net
    gateway_limit: int | None
    bad_token: bool
    unknown_sender: bool
    refused_numbers: list[str]
    webcom_document_refusals: bool
    balance: int | None
    held_after: int | None
    language: Literal["en", "ru"]


class Routing(msgspec.Struct, frozen=True, kw_only=True):
    """A routed world: its gateways, the routes (country to gateway names, in order), the
    message's kind, and the router's settings."""

    accounts: list[Account]
    routes: dict[str, list[str]]
    kind: Kind
    trip_after: int
    cooldown: float
    default_region: str | None
    unavailable: dict[str, str]


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    """A whole run, drawn from ``seed``.

    In a routed world (``routing`` set), ``gateway`` is ``"router"`` and the fields of a
    lone gateway's fake and network (``faults``, ``net``, ``bad_token``...) are unused:
    each gateway has its own, in ``routing.accounts``."""

    seed: int
    gateway: str
    entries: list[Entry]
    text: str
    personal: bool
    batch_size: int
    concurrency: int
    rate: int
    gateway_limit: int | None
    faults: Faults
    net: Net
    read_timeout: float
    retry: RetryPolicy
    at_least_once: bool
    window_ttl: float
    state: Literal["memory", "redis"]
    redis: RedisFaults
    mode: Literal["library", "campaign"]
    clients: int
    sends: list[SendPlan]
    repeat: bool
    kills: list[int]
    campaign_stop_at: int | None
    bad_token: bool
    unknown_sender: bool
    refused_numbers: list[str]
    webcom_document_refusals: bool
    balance: int | None
    held_after: int | None
    language: Literal["en", "ru"]
    callback_fails_at: int | None
    input_fails_at: int | None
    routing: Routing | None = None
    retry_key: bool = False
    """Library mode: every send (each round) is a run of one send, under one idempotency key,
    to one list; runs of it at once are kept apart, a later one finds what an earlier sent."""
    library_kill_at: int | None = None
    """Library mode with ``retry_key``, through Redis: the process is killed at this loop
    step, and another runs the same sends again."""
    calm: bool = False
    """Nothing goes wrong: no fault of a gateway, the network, Redis, the caller or the
    process, no refusal of an account or a number, no balance that runs out (see
    :func:`calmed`). Every recipient the world lets through must then be sent."""

    @property
    def retry_safe(self) -> bool:
        """Whether the gateway itself makes a repeat safe (Webcom's client ids)."""
        return self.gateway == "webcom"

    @property
    def accounts(self) -> list[Account]:
        """Every gateway of the world, with its fake's and network's behaviour."""
        if self.routing is not None:
            return self.routing.accounts
        return [
            Account(
                gateway=self.gateway,
                faults=self.faults,
                net=self.net,
                gateway_limit=self.gateway_limit,
                bad_token=self.bad_token,
                unknown_sender=self.unknown_sender,
                refused_numbers=self.refused_numbers,
                webcom_document_refusals=self.webcom_document_refusals,
                balance=self.balance,
                held_after=self.held_after,
                language=self.language,
            )
        ]

    @property
    def kind(self) -> Kind:
        """What the sends send: one text, personal texts, or a template."""
        if self.routing is not None:
            return self.routing.kind
        if self.gateway == "smsplus":
            return "template"
        return "personal" if self.personal else "text"


def _number(gateway: str, i: int) -> str:
    if gateway == "smsclub":
        return f"38050{i:07d}"
    if gateway == "smsplus":
        return f"99450{i:07d}"
    return f"7916{i:07d}"


def _chance(rng: random.Random, *choices: float) -> float:
    return rng.choice(choices)


def _retry(rng: random.Random) -> RetryPolicy:
    """How requests are tried again; a long back-off (100 s, doubling to 150) holds a request
    that may have been processed longer than its reservation lasts."""
    backoff = rng.choice([0.01, 0.1, 0.5, 0.5, 100.0])
    return RetryPolicy(
        attempts=rng.randint(1, 5),
        backoff=backoff,
        max_backoff=150.0 if backoff > 2 else 2.0,
        max_retry_after=rng.choice([2.0, 300.0]),
    )


def _maybe(rng: random.Random, possible: bool, count: int) -> int | None:
    """Where the caller's own code fails, once in twenty runs where it can."""
    return rng.randint(0, count) if possible and rng.random() < 0.05 else None


def _faults(rng: random.Random) -> Faults:
    """A gateway's faults: each one absent, rare, or frequent."""
    fault_odds = {name: _chance(rng, 0.0, 0.0, 0.0, 0.03, 0.1, 0.25) for name in FAULTS}
    return Faults(
        **fault_odds,
        hang_seconds=rng.choice([0.2, 3.0, 30.0]),
        # 150 s: longer than a reservation lasts (120 s, the read timeout and 5 s) where the
        # read timeout is short; the longest wait before a write
        retry_after=rng.choice([None, 0.0, 0.2, 1.0, 3.0, 150.0]),
        rate_limited_body=rng.choice(["gateway", "empty"]),
        seed=rng.randrange(1 << 30),
    )


def _net(rng: random.Random) -> Net:
    """The network to a gateway."""
    return Net(
        one_way=rng.uniform(0.0005, 0.03),
        jitter=rng.uniform(0.0, 0.004),
        handshake=rng.randint(1, 3),
        refused=_chance(rng, 0.0, 0.0, 0.05, 0.2),
        slow=_chance(rng, 0.0, 0.0, 0.03),
        keepalive=rng.choice([0.5, 10.0]),
        late=_chance(rng, 0.0, 0.0, 0.02, 0.1),
    )


def _sends(rng: random.Random, count: int, clients: int) -> list[SendPlan]:
    """One to three sends at once: the whole list, or part of it; some cancelled or stopped
    by their caller."""
    sends: list[SendPlan] = []
    for n in range(rng.choice([1, 1, 1, 2, 3])):
        chosen = (
            list(range(count))
            if n == 0 or rng.random() < 0.5
            else sorted(rng.sample(range(count), rng.randint(1, count)))
        )
        sends.append(
            SendPlan(
                entries=chosen,
                client=rng.randrange(clients),
                cancel_at=rng.randint(1, 400) if rng.random() < 0.15 else None,
                stop_at=rng.randint(1, 400) if rng.random() < 0.1 else None,
                trickle=rng.choice([0.3, 2.0, 8.0]) if rng.random() < 0.12 else None,
            )
        )
    return sends


def _later(seed: int, sends: list[SendPlan], *, spread: bool) -> list[SendPlan]:
    """What was added to the caller's part since (drawn apart, so that every other draw of a
    seed stays as it was): an indexed input with its indices far apart, a cancellation while
    a command to the shared store waits, and a second cancellation while the send settles."""
    rng = random.Random(seed ^ 0x1DE5)
    # one spread for every run of a keyed send alike; more often where an input waits,
    # where the send claims ids between the caller's entries
    if rng.random() < (0.5 if any(p.trickle for p in sends) else 0.15) and spread:
        width = rng.choice([37, 1009])
        sends = [msgspec.structs.replace(plan, spread=width) for plan in sends]
    drawn = []
    for plan in sends:
        in_store = rng.randint(1, 30) if rng.random() < 0.15 else None
        cancelled = plan.cancel_at is not None or in_store is not None
        again = rng.randint(0, 20) if cancelled and rng.random() < 0.5 else None
        drawn.append(msgspec.structs.replace(plan, cancel_in_store=in_store, cancel_again=again))
    return drawn


_TEXTS = ["Sale today", "Your code 1234", "Привіт, знижка 10%"]


def _odd(rng: random.Random, entries: list[Entry]) -> Entry | None:
    """An invalid number (7%), the same recipient again (8%), or ``None``: a fresh one."""
    roll = rng.random()
    if roll < 0.07:
        return Entry(raw=rng.choice(["123", "+1 555", "not a number", ""]), phone=None)
    if roll < 0.15 and entries:
        return rng.choice(entries)
    return None


def _fresh(
    rng: random.Random,
    i: int,
    raw: str,
    phone: str | None,
    *,
    template: bool,
    personal: bool,
    unfit: bool = True,
) -> Entry:
    """A recipient: template parameters (one in twenty too long to fit, where ``unfit``
    may be), its own text (``personal``), or neither."""
    if template:
        bad = rng.random() < 0.05 and unfit
        params = ("x" * 200,) if bad else (f"C{i}",)
        return Entry(raw=raw, phone=phone, params=params, bad_params=bad)
    text = rng.choice(_TEXTS) if personal else None
    return Entry(raw=raw, phone=phone, text=text)


def draw(seed: int) -> Scenario:
    """The scenario of ``seed``: a twentieth of them calmed (drawn apart, so that the others
    stay as they were)."""
    scenario = _routed(seed) if random.Random(seed ^ 0x2017ED).random() < ROUTED else _lone(seed)
    if random.Random(seed ^ 0xCA1F).random() < CALM:
        scenario = calmed(scenario)
    return scenario


def calmed(scenario: Scenario) -> Scenario:
    """``scenario`` with nothing that can go wrong: its sends, recipients, message, sizes,
    rates, retries, state and timings as drawn."""
    replace = msgspec.structs.replace
    sends = [
        replace(plan, cancel_at=None, stop_at=None, cancel_in_store=None, cancel_again=None)
        for plan in scenario.sends
    ]
    routing = scenario.routing
    if routing is not None:
        accounts = [replace(a, **_calm_account(a.net)) for a in routing.accounts]
        routing = replace(routing, accounts=accounts)
    return replace(
        scenario,
        calm=True,
        redis=RedisFaults(),
        sends=sends,
        kills=[],
        campaign_stop_at=None,
        library_kill_at=None,
        callback_fails_at=None,
        input_fails_at=None,
        routing=routing,
        **_calm_account(scenario.net),
    )


def _calm_account(net: Net) -> dict[str, Any]:
    """A gateway's account and network in a calm world (the fields :class:`Account` and a
    lone gateway's :class:`Scenario` share): the same network, never refusing a connection
    nor holding up an answer."""
    return {
        "faults": Faults(),
        "net": msgspec.structs.replace(net, refused=0.0, slow=0.0, late=0.0),
        "gateway_limit": None,
        "bad_token": False,
        "unknown_sender": False,
        "refused_numbers": [],
        "webcom_document_refusals": False,
        "balance": None,
        "held_after": None,
    }


def _lone(seed: int) -> Scenario:
    """A world of one gateway (see :func:`draw`)."""
    rng = random.Random(seed)
    gateway = rng.choice(GATEWAYS)
    personal = gateway != "smsplus" and rng.random() < 0.3
    count = rng.choice([1, 3, 8, 15, 25, 40])
    entries: list[Entry] = []
    for i in range(count):
        odd = _odd(rng, entries)
        if odd is not None:
            entries.append(odd)
            continue
        phone = _number(gateway, i)
        raw = phone if rng.random() < 0.8 else "+" + phone
        template = gateway == "smsplus"
        entries.append(_fresh(rng, i, raw, phone, template=template, personal=personal))
    valid = [e.phone for e in entries if e.phone is not None]
    refused = sorted({p for p in valid if rng.random() < 0.08})

    faults = _faults(rng)
    net = _net(rng)
    freezes: list[tuple[float, float]] = []
    for _ in range(rng.choice([0, 0, 1, 2])):
        start = 1000.0 + rng.uniform(0, 10)
        freezes.append((start, start + rng.uniform(0.5, 6.0)))
    redis = RedisFaults(
        fail=_chance(rng, 0.0, 0.0, 0.02, 0.1),
        lost=_chance(rng, 0.0, 0.0, 0.02, 0.1),
        freezes=freezes,
    )
    mode: Literal["library", "campaign"] = "campaign" if rng.random() < 0.4 else "library"
    clients = 2 if mode == "library" and rng.random() < 0.25 else 1
    sends = _sends(rng, count, clients) if mode == "library" else []
    # drawn apart, so that every other draw of a seed stays as it was
    keyed = random.Random(seed ^ 0x5EED)
    retry_key = bool(sends) and keyed.random() < 0.25
    if retry_key:
        sends = [msgspec.structs.replace(plan, entries=sends[0].entries) for plan in sends]
    sends = _later(seed, sends, spread=True)
    kills = (
        sorted(rng.sample(range(5, 600), rng.choice([0, 1, 1, 2, 3]))) if mode == "campaign" else []
    )
    scenario = Scenario(
        seed=seed,
        gateway=gateway,
        entries=entries,
        text=rng.choice(_TEXTS),
        personal=personal,
        batch_size=rng.choice([1, 2, 3, 5, 10]),
        concurrency=rng.choice([1, 2, 4, 10]),
        rate=rng.choice([9, 9, 9, 3]),
        gateway_limit=rng.choice([None, None, 9, 9, 5, 2]),
        faults=faults,
        net=net,
        # 60 s: longer than the window's slack, so a request the gateway acts on late leaves
        # less of a reservation made at its write than the window promises
        read_timeout=rng.choice([0.5, 2.0, 5.0, 60.0]),
        retry=_retry(rng),
        at_least_once=gateway != "webcom" and rng.random() < 0.15,
        window_ttl=0.0 if rng.random() < 0.15 else 120.0,
        state="redis" if rng.random() < 0.4 else "memory",
        redis=redis,
        mode=mode,
        clients=clients,
        sends=sends,
        repeat=mode == "library" and rng.random() < 0.3,
        kills=[k * rng.randint(1, 4) for k in kills],
        campaign_stop_at=rng.randint(1, 500) if mode == "campaign" and rng.random() < 0.1 else None,
        bad_token=rng.random() < 0.03,
        unknown_sender=rng.random() < 0.03,
        refused_numbers=refused,
        webcom_document_refusals=rng.random() < 0.5,
        balance=rng.randint(0, count) if rng.random() < 0.1 else None,
        held_after=rng.randint(0, count) if gateway == "webcom" and rng.random() < 0.1 else None,
        language=rng.choice(["en", "ru"]),
        callback_fails_at=rng.randint(0, count)
        if mode == "library" and rng.random() < 0.05
        else None,
        input_fails_at=rng.randint(0, count) if mode == "library" and rng.random() < 0.05 else None,
        retry_key=retry_key,
    )
    if retry_key and scenario.state == "redis" and keyed.random() < 0.5:
        scenario = msgspec.structs.replace(scenario, library_kill_at=keyed.randint(5, 600))
    frozen = random.Random(seed ^ 0xF2EE2E)  # drawn apart too
    if scenario.state == "redis" and frozen.random() < 0.1:
        # frozen past the state's patience (30 s) and a send's releases after it: sends stop
        # on it, and the commands the clients gave up on are carried out when it wakes
        start = 1000.0 + frozen.uniform(0, 10)
        long = (start, start + frozen.uniform(31.0, 90.0))
        scenario.redis.freezes = sorted([*scenario.redis.freezes, long])
    lost = random.Random(seed ^ 0x1057)  # drawn apart too
    if scenario.state == "redis" and lost.random() < 0.2:
        scenario.redis.limiter_lost = [1000.0 + lost.uniform(0.3, 8.0)]
    return scenario


def _account(rng: random.Random, gateway: str, valid: list[str], count: int) -> Account:
    """One gateway of a routed world, drawn on its own: a tenth of them are down."""
    faults = _faults(rng)
    net = _net(rng)
    if rng.random() < 0.1:
        net = msgspec.structs.replace(net, refused=1.0)
    return Account(
        gateway=gateway,
        faults=faults,
        net=net,
        gateway_limit=rng.choice([None, None, 9, 9, 5, 2]),
        bad_token=rng.random() < 0.05,
        unknown_sender=rng.random() < 0.05,
        refused_numbers=sorted({p for p in valid if rng.random() < 0.08}),
        webcom_document_refusals=rng.random() < 0.5,
        balance=rng.randint(0, count) if rng.random() < 0.1 else None,
        held_after=rng.randint(0, count) if gateway == "webcom" and rng.random() < 0.1 else None,
        language=rng.choice(["en", "ru"]),
    )


def _routed(seed: int) -> Scenario:
    """A routed world (see the module's docstring)."""
    rng = random.Random(seed)
    roll = rng.random()
    kind: Kind = "template" if roll < 0.15 else "personal" if roll < 0.45 else "text"
    if kind == "template":
        names = ["smsplus", *rng.sample(["smsclub", "webcom"], rng.choice([1, 2]))]
    else:
        names = ["smsclub", "webcom"] + (["smsplus"] if rng.random() < 1 / 3 else [])
    routes: dict[str, list[str]] = {}
    for country in ("UA", "RU", "AZ"):
        if rng.random() < 0.1:
            continue
        # a template goes to SMSPlus, which takes Azerbaijani numbers only: only the AZ
        # route may name it (elsewhere its recipients would be refused by the client)
        pool = names if kind != "template" or country == "AZ" else names[1:]
        routes[country] = rng.sample(pool, min(len(pool), rng.choice([1, 2, 2, 3])))
    if not routes:
        routes["AZ" if kind == "template" else "UA"] = names[:]
    default_region = rng.choice([None, "UA"])
    unavailable = {"KZ": "no credentials"} if rng.random() < 0.5 else {}
    weights = (
        {"AZ": 60, "UA": 15, "RU": 10, "KZ": 10, "GE": 5}
        if kind == "template"
        else {"UA": 40, "RU": 30, "AZ": 10, "KZ": 10, "GE": 10}
    )
    count = rng.choice([1, 3, 8, 15, 25, 40])
    entries: list[Entry] = []
    for i in range(count):
        odd = _odd(rng, entries)
        if odd is not None:
            entries.append(odd)
            continue
        country = rng.choices(list(weights), list(weights.values()))[0]
        phone = PREFIXES[country] + f"{i:07d}"
        if default_region == "UA" and country == "UA" and rng.random() < 0.3:
            raw = "0" + phone[3:]
        else:
            raw = phone if rng.random() < 0.8 else "+" + phone
        route = routes.get(country)
        goes = (
            any(kind in spec(name).messages for name in route)
            if route is not None
            else country in unavailable  # failed there, not rejected
        )
        known = phone if goes else None
        # unfit parameters are found by a gateway's checks: not where no gateway can be used
        fresh = _fresh(
            rng,
            i,
            raw,
            known,
            template=kind == "template",
            personal=kind == "personal",
            unfit=route is not None,
        )
        entries.append(fresh)
    valid = [e.phone for e in entries if e.phone is not None]
    accounts = [_account(rng, name, valid, count) for name in names]
    return Scenario(
        seed=seed,
        gateway="router",
        entries=entries,
        text=rng.choice(_TEXTS),
        personal=kind == "personal",
        batch_size=rng.choice([1, 2, 3, 5, 10]),
        concurrency=rng.choice([1, 2, 4, 10]),
        rate=rng.choice([9, 9, 9, 3]),
        gateway_limit=None,
        faults=Faults(),
        net=Net(),
        read_timeout=rng.choice([0.5, 2.0, 5.0, 60.0]),
        retry=_retry(rng),
        at_least_once=False,
        window_ttl=0.0 if rng.random() < 0.15 else 120.0,
        state="memory",
        redis=RedisFaults(),
        mode="library",
        clients=1,
        sends=_later(seed, _sends(rng, count, 1), spread=False),
        repeat=rng.random() < 0.3,
        kills=[],
        campaign_stop_at=None,
        bad_token=False,
        unknown_sender=False,
        refused_numbers=[],
        webcom_document_refusals=False,
        balance=None,
        held_after=None,
        language="en",
        callback_fails_at=_maybe(rng, True, count),
        input_fails_at=_maybe(rng, True, count),
        routing=Routing(
            accounts=accounts,
            routes=routes,
            kind=kind,
            trip_after=rng.choice([1, 2, 3]),
            cooldown=rng.choice([0.0, 1.0, 5.0, 60.0]),
            default_region=default_region,
            unavailable=unavailable,
        ),
    )
