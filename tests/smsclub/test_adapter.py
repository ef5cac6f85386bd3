"""SMS Club answers, parsed purely: every documented shape and garbage, to exact verdicts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from smsbridge import (
    AuthenticationError,
    DuplicateMessageError,
    GatewayError,
    HttpResponse,
    InsufficientBalanceError,
    RateLimitedError,
    RejectedError,
    ResponseDecodeError,
    Status,
    UnavailableError,
)
from smsbridge._core.gateway import Batch
from smsbridge._smsclub.adapter import SmsClubGateway, SmsClubJob

GW = SmsClubGateway("secret-token")
JOB = SmsClubJob(sender="Shop", text="hi")
ITEMS = Batch([0, 1], ["380989361131", "380989361130"])

A, R, U = Status.ACCEPTED, Status.REJECTED, Status.UNCERTAIN


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status, raw, headers or {})


def test_request_bodies_are_the_documented_ones() -> None:
    """Bulk and personal requests carry exactly the documented JSON and the bearer token."""
    bulk = GW.build_send(ITEMS, SmsClubJob(sender="Shop", text="hi", lifetime=60))
    assert bulk.path == "/sms/send"
    assert json.loads(bulk.body) == {
        "phone": ["380989361131", "380989361130"],
        "src_addr": "Shop",
        "message": "hi",
        "lifetime": 60,
    }
    assert bulk.headers["Authorization"] == "Bearer secret-token"
    personal = GW.build_send(
        Batch([0, 1], ["380989361131", "380989361130"], ["a", "b"]), SmsClubJob(sender="Shop")
    )
    assert personal.path == "/v2/sms/send"
    assert json.loads(personal.body) == {
        "src_addr": "Shop",
        "data_message": [
            {"phone": "380989361131", "message": "a"},
            {"phone": "380989361130", "message": "b"},
        ],
    }
    assert "secret-token" not in repr(bulk)


@pytest.mark.parametrize(
    ("body", "statuses", "details"),
    [
        (
            {"success_request": {"info": {"106": "380989361131", "107": "380989361130"}}},
            [A, A],
            ["106", "107"],
        ),
        (  # every number accepted, answered in another order than sent
            {"success_request": {"info": {"107": "380989361130", "106": "380989361131"}}},
            [A, A],
            ["106", "107"],
        ),
        (  # partial success: add_info keyed by phone
            {
                "success_request": {
                    "info": {"107": "380989361131"},
                    "add_info": {"380989361130": "This number is in the black list"},
                }
            },
            [A, R],
            ["107", "This number is in the black list"],
        ),
        (  # field-keyed add_info: the whole request refused
            {"success_request": {"add_info": {"src_addr": "Sender name is incorrect"}}},
            [R, R],
            ["src_addr: Sender name is incorrect"] * 2,
        ),
        (
            {"success_request": {"add_info": {"phone": "Incorrect phones array"}}},
            [R, R],
            ["phone: Incorrect phones array"] * 2,
        ),
        (  # add_info as a plain string
            {"success_request": {"add_info": "Message cannot be blank."}},
            [R, R],
            ["Message cannot be blank."] * 2,
        ),
        (  # a number the answer never mentions may or may not have been sent
            {"success_request": {"info": {"106": "380989361131"}}},
            [A, U],
            ["106", "the gateway's answer does not mention this number"],
        ),
        (
            {"success_request": {}},
            [U, U],
            ["the gateway's answer does not mention this number"] * 2,
        ),
        (  # ids and phones as numbers, phones with a plus
            {"success_request": {"info": {"106": 380989361131, "107": "+380989361130"}}},
            [A, A],
            ["106", "107"],
        ),
        (  # a number written otherwise (spaces, national): its own reason, no one else's
            {
                "success_request": {
                    "info": {"107": "0989361131"},
                    "add_info": {"+380 98 936 1130": "This number is in the black list"},
                }
            },
            [A, R],
            ["107", "This number is in the black list"],
        ),
        (  # words where an id's number goes name nobody: unknown, not accepted by that "id"
            {"success_request": {"info": {"phone": "Number 380989361130 is in the stop list"}}},
            [U, U],
            ["the gateway's answer does not mention this number"] * 2,
        ),
        (  # a number the request did not carry: those the answer does not name are unknown
            {
                "success_request": {
                    "info": {"107": "380989361131"},
                    "add_info": {"380 67 000 0000": "This number is in the black list"},
                }
            },
            [A, U],
            ["107", "the gateway's answer does not mention this number"],
        ),
    ],
)
def test_send_answers_map_per_recipient(
    body: Any, statuses: list[Status], details: list[str]
) -> None:
    """Each documented success shape gives one exact verdict per recipient."""
    result = GW.parse_send(ITEMS, answer(body), JOB)
    assert result.statuses == statuses
    assert result.details == details
    assert result.account_error is None


def test_a_national_number_two_recipients_end_with_names_neither() -> None:
    """A number the answer writes nationally is placed on the one recipient it ends; where
    two end so (a Ukrainian and a Polish number sharing nine digits), on neither: they
    stay unknown, whatever the order of a set (it was either one, by the hash seed)."""
    items = Batch([0, 1, 2], ["380501234567", "48501234567", "380931112233"])
    body = {
        "success_request": {
            "info": {"77": "501234567", "78": "0931112233"},
            "add_info": {"501234567": "This number is in the black list"},
        }
    }
    result = GW.parse_send(items, answer(body), JOB)
    assert result.statuses == [U, U, A] and result.details[2] == "78"


def test_ids_in_an_answer_of_another_status_went() -> None:
    """A 400 whose body gives ids (the gateway answers its refusals of some numbers with a
    400 and a success_request) does not refuse the numbers it gave ids: they went. Words
    under ``info`` in a 400 are no ids: the request was refused."""
    for info in (
        {"phone": "Number 380989361130 is in the stop list"},
        {"error": "Invalid sender"},
    ):
        with pytest.raises(RejectedError):
            GW.parse_send(ITEMS, answer({"success_request": {"info": info}}, 400), JOB)
    body = {
        "success_request": {
            "info": {"1": "380989361131"},
            "add_info": {"380989361130": "This number is in the black list"},
        }
    }
    result = GW.parse_send(ITEMS, answer(body, 400), JOB)
    assert result.statuses == [A, R] and result.details[0] == "1"


def test_repeated_number_in_one_batch_takes_ids_in_order() -> None:
    """Without a duplicate window a number may repeat; ids are handed out in answer order."""
    items = Batch([0, 1], ["380989361131", "380989361131"])
    body = {"success_request": {"info": {"5": "380989361131", "6": "380989361131"}}}
    assert GW.parse_send(items, answer(body), JOB).details == ["5", "6"]


def test_balance_running_out_mid_batch_stops_the_send() -> None:
    """Accepted ones stay accepted, the unpaid one fails (not rejected: it may go out later),
    and the send stops."""
    body = {
        "success_request": {
            "info": {"1": "380989361131"},
            "add_info": {"380989361130": "Not enough money. It is necessary to refill the balance"},
        }
    }
    result = GW.parse_send(ITEMS, answer(body), JOB)
    assert result.statuses == [A, Status.FAILED]
    assert isinstance(result.account_error, InsufficientBalanceError)
    with pytest.raises(InsufficientBalanceError):
        GW.parse_send(
            ITEMS,
            answer({"success_request": {"add_info": body["success_request"]["add_info"]}}),
            JOB,
        )


@pytest.mark.parametrize(
    ("response", "error", "maybe_processed"),
    [
        (answer({"status": 401, "message": "Unauthorized"}, 401), AuthenticationError, False),
        (answer({"status": 401, "message": "Unauthorized"}, 200), AuthenticationError, False),
        (
            answer({"name": "Unauthorized", "message": "bad", "status": 401}, 401),
            AuthenticationError,
            False,
        ),
        (answer(b"", 429, {"retry-after": "3"}), RateLimitedError, False),
        (answer({"status": 429, "message": "Too many"}, 200), RateLimitedError, False),
        # the body's own status inside another HTTP status, and a limiter's words alone
        (answer({"status": 429, "message": "Too many"}, 400), RateLimitedError, False),
        (
            answer({"name": "Too Many Requests", "message": "Rate limit exceeded."}),
            RateLimitedError,
            False,
        ),
        (  # a refusal that mentions a rate limit is a refusal
            answer({"message": "Sender rate limit plan does not allow this route"}),
            RejectedError,
            False,
        ),
        (answer({"status": 400, "message": "Incorrect JSON"}, 400), RejectedError, False),
        (answer({"name": "Bad Request", "message": "x"}, 200), RejectedError, False),
        (answer(b"whatever", 453), DuplicateMessageError, False),
        (answer({"status": 453}, 200), DuplicateMessageError, False),
        (answer({"status": 453}, 400), DuplicateMessageError, False),
        # nested past any decoder's depth: unreadable, the status decides (not a RecursionError)
        (
            answer(b'{"success_request":{"info":' + b"[" * 99_999 + b"]" * 99_999 + b"}}", 503),
            UnavailableError,
            True,
        ),
        (answer(b"<html>500</html>", 500), UnavailableError, True),
        (answer(b"<html>502</html>", 502), UnavailableError, True),
        (answer({"status": 500, "message": "oops"}, 200), UnavailableError, True),
        (answer(b"<html>moved</html>", 302), GatewayError, False),
        (answer(b"not found", 404), GatewayError, False),
        (answer(b"<html><body>Error</body></html>"), ResponseDecodeError, True),
        (answer(b'{"success_request": {"info": {"1'), ResponseDecodeError, True),
        (answer(b"[1, 2, 3]"), ResponseDecodeError, True),
        (answer(b'"ok"'), ResponseDecodeError, True),
        (answer({"success_request": "yes"}), ResponseDecodeError, True),
        (answer({"unrelated": True}), ResponseDecodeError, True),
        (answer(b""), ResponseDecodeError, True),
    ],
)
def test_request_level_failures_are_typed(
    response: HttpResponse, error: type[Exception], maybe_processed: bool
) -> None:
    """Errors, refusals and garbage raise the right type, saying whether it may have sent."""
    with pytest.raises(error) as caught:
        GW.parse_send(ITEMS, response, JOB)
    assert caught.value.maybe_processed is maybe_processed  # type: ignore[attr-defined]
    assert caught.value.provider == "smsclub"  # type: ignore[attr-defined]
    assert "secret-token" not in str(caught.value) + repr(caught.value)


def test_retry_after_is_read() -> None:
    """429 carries the gateway's Retry-After in seconds."""
    with pytest.raises(RateLimitedError) as e:
        GW.parse_send(ITEMS, answer(b"", 429, {"retry-after": "3"}), JOB)
    assert e.value.retry_after == 3.0


def test_status_answers() -> None:
    """Statuses map to the shared vocabulary; unknown ids carry the gateway's complaint."""
    response = answer(
        {
            "success_request": {
                "info": {"1": "DELIVRD", "2": "ENROUTE", "3": "WEIRD"},
                "add_info": {"4": "bad id"},
            }
        }
    )
    states = GW.parse_status(["1", "2", "3", "4", "5"], response)
    assert [(s.message_id, s.state.value, s.raw, s.error) for s in states] == [
        ("1", "DELIVRD", "DELIVRD", None),
        ("2", "ENROUTE", "ENROUTE", None),
        ("3", "UNKNOWN", "WEIRD", None),
        ("4", "UNKNOWN", "", "bad id"),
        ("5", "UNKNOWN", "", "the gateway's answer does not mention this id"),
    ]
    only_error = GW.parse_status(["9"], answer({"success_request": {"add_info": "Incorrect id"}}))
    assert only_error[0].error == "Incorrect id"


def test_balance_senders_and_sender_states() -> None:
    """Money is a Decimal; sender names and their states decode, in English or Russian."""
    balance = GW.parse_balance(
        answer({"success_request": {"info": {"money": "8111.1700", "currency": "UAH"}}})
    )
    assert str(balance.money) == "8111.1700" and balance.currency == "UAH"
    with pytest.raises(ResponseDecodeError):
        GW.parse_balance(answer({"success_request": {"info": {"money": "lots"}}}))
    assert GW.parse_senders(answer({"success_request": {"info": ["test1", "test2"]}})) == [
        "test1",
        "test2",
    ]
    states = GW.parse_sender_status(
        answer({"success_request": {"info": {"a": "Approved", "b": "На модерации", "c": "??"}}})
    )
    assert [(s.sender, s.state.value) for s in states] == [
        ("a", "approved"),
        ("b", "moderation"),
        ("c", "unknown"),
    ]
    assert (
        GW.parse_sender_status(
            answer({"success_request": {"add_info": {"x": "Error. Data not found"}}})
        )
        == []
    )
    with pytest.raises(RejectedError, match="company: Legal name"):
        GW.parse_register(
            answer(
                {
                    "success_request": {
                        "add_info": {"company": "Legal name of the company cannot be blank."}
                    }
                }
            )
        )
