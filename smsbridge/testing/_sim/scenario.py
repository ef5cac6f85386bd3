"""One seed, one world: which gateway, which recipients, which faults, what the caller does.

Everything a run does is drawn here from ``random.Random(seed)``, up front, so that a failing
seed is a complete description of the failure: ``SEED=n make sim`` replays it exactly.
"""

from __future__ import annotations

import random
from typing import Literal

import msgspec

from ..._core.retry import RetryPolicy
from ..._fake import FAULTS, Faults
from .net import Net
from .redis import RedisFaults

__all__ = ["Entry", "Scenario", "SendPlan", "draw"]

GATEWAYS = ("smsclub", "smsplus", "webcom")
SENDER = "Shop"
TEMPLATE = "Code {1}"
TEMPLATE_ID = 7


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One recipient as the caller gives it, with what the simulator knows of it.

    Attributes:
        raw: the number as given.
        phone: the number in the gateway's form; ``None`` when it cannot be valid (a true
            ``rejected`` before any request).
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
    """One send of the library mode: which entries, on which client, and what the caller
    does to it (cancel its task, or set its stop event, at a loop step)."""

    entries: list[int]
    client: int = 0
    cancel_at: int | None = None
    stop_at: int | None = None


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    """A whole run, drawn from ``seed``."""

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

    @property
    def retry_safe(self) -> bool:
        """Whether the gateway itself makes a repeat safe (Webcom's client ids)."""
        return self.gateway == "webcom"


def _number(gateway: str, i: int) -> str:
    if gateway == "smsclub":
        return f"38050{i:07d}"
    if gateway == "smsplus":
        return f"99450{i:07d}"
    return f"7916{i:07d}"


def _chance(rng: random.Random, *choices: float) -> float:
    return rng.choice(choices)


def _maybe(rng: random.Random, possible: bool, count: int) -> int | None:
    """Where the caller's own code fails, once in twenty runs where it can."""
    return rng.randint(0, count) if possible and rng.random() < 0.05 else None


def draw(seed: int) -> Scenario:
    """The scenario of ``seed``."""
    rng = random.Random(seed)
    gateway = rng.choice(GATEWAYS)
    personal = gateway != "smsplus" and rng.random() < 0.3
    count = rng.choice([1, 3, 8, 15, 25, 40])
    texts = ["Sale today", "Your code 1234", "Привіт, знижка 10%"]
    entries: list[Entry] = []
    for i in range(count):
        roll = rng.random()
        if roll < 0.07:
            entries.append(Entry(raw=rng.choice(["123", "+1 555", "not a number", ""]), phone=None))
            continue
        if roll < 0.15 and entries:
            entries.append(rng.choice(entries))  # the same recipient again
            continue
        phone = _number(gateway, i)
        raw = phone if rng.random() < 0.8 else "+" + phone
        if gateway == "smsplus":
            bad = rng.random() < 0.05
            params = ("x" * 200,) if bad else (f"C{i}",)
            entries.append(Entry(raw=raw, phone=phone, params=params, bad_params=bad))
        else:
            text = rng.choice(texts) if personal else None
            entries.append(Entry(raw=raw, phone=phone, text=text))
    valid = [e.phone for e in entries if e.phone is not None]
    refused = sorted({p for p in valid if rng.random() < 0.08})

    fault_odds = {name: _chance(rng, 0.0, 0.0, 0.0, 0.03, 0.1, 0.25) for name in FAULTS}
    faults = Faults(
        **fault_odds,
        hang_seconds=rng.choice([0.2, 3.0, 30.0]),
        retry_after=rng.choice([None, 0.0, 0.2, 1.0, 3.0]),
        rate_limited_body=rng.choice(["gateway", "empty"]),
        seed=rng.randrange(1 << 30),
    )
    net = Net(
        one_way=rng.uniform(0.0005, 0.03),
        jitter=rng.uniform(0.0, 0.004),
        handshake=rng.randint(1, 3),
        refused=_chance(rng, 0.0, 0.0, 0.05, 0.2),
        slow=_chance(rng, 0.0, 0.0, 0.03),
        keepalive=rng.choice([0.5, 10.0]),
    )
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
    sends: list[SendPlan] = []
    if mode == "library":
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
                )
            )
    kills = (
        sorted(rng.sample(range(5, 600), rng.choice([0, 1, 1, 2, 3]))) if mode == "campaign" else []
    )
    return Scenario(
        seed=seed,
        gateway=gateway,
        entries=entries,
        text=rng.choice(texts),
        personal=personal,
        batch_size=rng.choice([1, 2, 3, 5, 10]),
        concurrency=rng.choice([1, 2, 4, 10]),
        rate=rng.choice([9, 9, 9, 3]),
        gateway_limit=rng.choice([None, None, 9, 9, 5, 2]),
        faults=faults,
        net=net,
        read_timeout=rng.choice([0.5, 2.0, 5.0]),
        retry=RetryPolicy(
            attempts=rng.randint(1, 5),
            backoff=rng.choice([0.01, 0.1, 0.5]),
            max_backoff=2.0,
            max_retry_after=rng.choice([2.0, 300.0]),
        ),
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
    )
