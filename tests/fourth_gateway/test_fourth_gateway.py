"""Adding a gateway touches its package and one registry line: the command line, the dry run
and the fakes' catalogue take it as it is."""

from __future__ import annotations

import json

import pytest

from smsbridge._cli import main
from smsbridge._gateways import GATEWAYS, fake_class, register

from ..helpers import ThreadedFake
from .spec import SPEC


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Toy registered (the one registry line) for the test's duration."""
    monkeypatch.setitem(GATEWAYS, SPEC.name, SPEC)
    return


def test_the_command_line_sends_through_a_fourth_gateway(
    toy: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """send (and --dry-run), balance, and the calls it lacks, with no change to the CLI."""
    with ThreadedFake(fake_class(SPEC)(tokens=["toy-token"])) as fake:
        monkeypatch.setenv("SMSBRIDGE_TOY_TOKEN", "toy-token")
        monkeypatch.setenv("SMSBRIDGE_TOY_URL", fake.url)
        numbers = [f"38050{i:07d}" for i in range(120)]
        argv = ["send", "toy", "--sender", "Shop", "--text", "Hi", "--json"]
        for number in numbers:
            argv += ["--to", number]
        assert main([*argv, "--dry-run"]) == 0
        plan = json.loads(capsys.readouterr().out)
        assert (plan["to_send"], plan["requests"]) == (120, 3)  # its own batch size: 50
        assert fake.sent == []
        assert main(argv) == 0
        assert json.loads(capsys.readouterr().out.splitlines()[-1])["accepted"] == 120
        assert sorted(m.phone for m in fake.sent) == numbers  # requests may overtake
        assert main(["balance", "toy"]) == 0
        assert capsys.readouterr().out.strip() == "12.50 UAH"
    assert main(["status", "toy", "1"]) == 2
    assert "Toy has no status call" in capsys.readouterr().err


def test_register_adds_a_gateway() -> None:
    """register() is the registry line for gateways that live outside smsbridge."""
    before = dict(GATEWAYS)
    try:
        register(SPEC)
        assert GATEWAYS["toy"] is SPEC
    finally:
        GATEWAYS.clear()
        GATEWAYS.update(before)
