"""SMSPlus, purely: request bodies, every documented code, templates, garbage."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsbridge import (
    AuthenticationError,
    GatewayError,
    HttpResponse,
    InsufficientBalanceError,
    RateLimitedError,
    RejectedError,
    ResponseDecodeError,
    SmsBridgeError,
    Status,
    Template,
    UnavailableError,
)
from smsbridge._core.gateway import Batch
from smsbridge._smsplus.adapter import (
    _ORDINAL,
    _PLACEHOLDER,
    CODES,
    SmsPlusGateway,
    SmsPlusJob,
)

GW = SmsPlusGateway("plus-secret")
JOB = SmsPlusJob(sender="Shop", template_id=3)
BATCH = Batch(
    [0, 1], ["994501234567", "994501234568"], params=[("Aysel", "A-1"), ("Orkhan", "B-2")]
)


def answer(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, body if isinstance(body, bytes) else json.dumps(body).encode())


def test_parameter_arrays_run_parallel_to_the_numbers() -> None:
    """The i-th value of every parameter array belongs to the i-th number."""
    request = GW.build_send(BATCH, JOB)
    assert request.path == "/api/sms/send"
    assert request.headers["Authorization"] == "Bearer plus-secret"
    assert json.loads(request.body) == {
        "sender_name": "Shop",
        "message_template_id": 3,
        "mobile_numbers": ["994501234567", "994501234568"],
        "first_parameters": ["Aysel", "Orkhan"],
        "second_parameters": ["A-1", "B-2"],
    }
    bare = GW.build_send(Batch([0], ["994501234567"], params=[()]), JOB)
    assert "first_parameters" not in json.loads(bare.body)


def test_code_100_accepts_everyone_without_ids() -> None:
    """Success carries no ids: accepted outcomes have none."""
    result = GW.parse_send(BATCH, answer({"success": True, "code": "100", "message": "ok"}), JOB)
    assert result.statuses == [Status.ACCEPTED, Status.ACCEPTED]
    assert result.details == [None, None]


def _expected(code: int) -> tuple[type[SmsBridgeError], bool, bool]:
    if code <= 106:
        return AuthenticationError, False, True
    if code == 119:
        return InsufficientBalanceError, False, True
    if code == 122:
        return UnavailableError, True, False
    return RejectedError, False, False


@pytest.mark.parametrize("code", range(101, 124))
def test_every_failure_code_is_typed(code: int) -> None:
    """101-106 account, 107-118 and 120-121, 123 refusals, 119 balance, 122 ambiguous."""
    kind, maybe, account_wide = _expected(code)
    body = {"success": False, "code": str(code), "message": CODES[str(code)]}
    with pytest.raises(kind) as caught:
        GW.parse_send(BATCH, answer(body, 200 if code % 2 else 400), JOB)
    error = caught.value
    assert (error.code, error.maybe_processed, error.account_wide) == (
        str(code),
        maybe,
        account_wide,
    )
    assert error.gateway_message == CODES[str(code)]
    assert "plus-secret" not in repr(error)


def test_code_as_a_number_and_unknown_codes() -> None:
    """A numeric code reads like a string one (100.0 too); an unknown failure code is a
    refusal. An answer at odds with itself may have sent, so it is no refusal: code 100
    without success, or success with a code nobody knows (they were rejected, and sent
    again would go twice). Code 429 in the body is the gateway asking to slow down."""
    GW.parse_send(BATCH, answer({"success": True, "code": 100}), JOB)
    GW.parse_send(BATCH, answer({"success": True, "code": 100.0}), JOB)
    GW.parse_send(BATCH, answer({"code": "100.0"}), JOB)
    with pytest.raises(RejectedError, match="unknown code 777"):
        GW.parse_send(BATCH, answer({"success": False, "code": "777"}), JOB)
    for body in (
        {"success": False, "code": "100"},
        {"success": True, "code": "200"},
        {"success": 1, "code": "200"},
    ):
        with pytest.raises(ResponseDecodeError, match="contradicts itself") as caught:
            GW.parse_send(BATCH, answer(body), JOB)
        assert caught.value.maybe_processed
    with pytest.raises(RateLimitedError):
        GW.parse_send(BATCH, answer({"success": False, "code": "429", "message": "Too Many"}), JOB)


@pytest.mark.parametrize(
    ("response", "kind", "maybe"),
    [
        (answer(b"<html>oops</html>"), ResponseDecodeError, True),
        (answer(b'{"success": true, "co'), ResponseDecodeError, True),
        (answer({"success": True}), ResponseDecodeError, True),
        (answer(b"[]"), ResponseDecodeError, True),
        (answer(b"<html>502</html>", 502), UnavailableError, True),
        (answer(b"", 429), RateLimitedError, False),
        (answer(b"", 401), AuthenticationError, False),
        (answer(b"nope", 404), GatewayError, False),
    ],
)
def test_garbage_and_bare_statuses(
    response: HttpResponse, kind: type[SmsBridgeError], maybe: bool
) -> None:
    """Without a code the HTTP status decides; an unreadable 200 may have sent."""
    with pytest.raises(kind) as caught:
        GW.parse_send(BATCH, response, JOB)
    assert caught.value.maybe_processed is maybe


def test_templates_answer_and_rendering() -> None:
    """Templates decode from varied field names; parameters are counted from the text."""
    response = answer(
        {
            "success": True,
            "code": "100",
            "data": [
                {"id": 3, "name": "order", "text": "Hi {1}, order {2} ships {3}"},
                {"template_id": "4", "message": "Code: {{first}}"},
                {"id": 5, "title": "plain", "text": "No parameters"},
                {"weird": True},
                "not a template",
            ],
        }
    )
    templates = GW.parse_templates(response)
    assert [(t.id, t.name, t.parameters) for t in templates] == [
        (3, "order", 3),
        (4, None, 1),
        (5, "plain", 0),
    ]
    assert templates[0].rendered_length(["Aysel", "A-1", "today"]) == len(
        "Hi Aysel, order A-1 ships today"
    )
    assert templates[1].rendered_length(["9911"]) == len("Code: 9911")
    assert Template(id=9, parameters=2).rendered_length(["a", "b"]) is None
    assert json.loads(GW.build_templates(None).body) == {"data": "all"}
    assert json.loads(GW.build_templates([3, 4]).body) == {"data": [3, 4]}


def test_checks_need_a_known_template() -> None:
    """Count and length are checked against the template, row by row."""
    template = Template(id=3, text="Hi {1}, order {2}")
    job = SmsPlusJob(sender="Shop", template_id=3, template=template)
    batch = Batch(
        [0, 1, 2, 3],
        ["994501234567"] * 4,
        params=[("A", "1"), ("A",), ("A", "x" * 200), ("a", "b", "c", "d")],
    )
    assert GW.check(batch, job) == {
        1: "template 3 takes 2 parameters, got 1",
        2: "the text would be 212 characters, over 160",
        3: "at most 3 parameters, got 4",
    }
    # without a template only what none can take (the request has three arrays: a fourth
    # parameter was left out of it); a template the gateway says takes four, likewise
    assert GW.check(batch, JOB) == {3: "at most 3 parameters, got 4"}
    assert GW.check(batch.pick([0, 1, 2]), JOB) is None
    four = SmsPlusJob(sender="Shop", template_id=4, template=Template(id=4, parameters=4))
    rows = Batch([0, 1], ["994501234567"] * 2, params=[("a", "b", "c", "d")] * 2)
    assert GW.check(rows, four) == dict.fromkeys([0, 1], "at most 3 parameters, got 4")


_FORMS = ["{1}", "{2}", "{3}", "{ first }", "{{second}}", "{Third}", "{ 2 }"]


@given(
    pieces=st.lists(st.sampled_from(_FORMS) | st.text("xé ", max_size=40), max_size=8),
    given_count=st.integers(0, 3),
    values=st.lists(st.text("aб", max_size=90), min_size=3, max_size=3),
)
def test_the_rendered_length_and_the_check_agree_with_the_text_rendered(
    pieces: list[str], given_count: int, values: list[str]
) -> None:
    """A template whose placeholders are written in several ways, some of them for values
    the recipient does not give (they stay in the text as they are): the length counted
    without rendering is the rendered text's, and the check refuses a recipient exactly when
    that is over 160. The width of a position's placeholders was its last one's times their
    count, and the check left out those of missing values."""
    text = "".join(pieces)
    template = Template(id=1, text=text, parameters=given_count)
    params = tuple(values[:given_count])

    def value(match: re.Match[str]) -> str:
        position = _ORDINAL[match.group(1).lower()]
        return params[position] if position < len(params) else match.group(0)

    rendered = len(_PLACEHOLDER.sub(value, text))
    assert template.rendered_length(params) == rendered
    gateway = GW
    job = SmsPlusJob(sender="Shop", template_id=1, template=template)
    batch = Batch([0, 1], ["994501234567", "994501234568"], params=[params, params])
    problems = gateway.check(batch, job) or {}
    assert set(problems) == ({0, 1} if rendered > 160 else set())
