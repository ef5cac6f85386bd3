"""The error tree and the result models as units."""

from __future__ import annotations

import msgspec

from smsbridge import (
    AuthenticationError,
    ConnectError,
    Counts,
    DuplicateMessageError,
    Outcome,
    RejectedError,
    Report,
    SmsBridgeError,
    Status,
    TransportTimeoutError,
    UnavailableError,
)


def test_each_error_says_whether_the_request_may_have_gone_and_whether_it_is_the_account() -> None:
    """The two facts every handler needs, right on the class."""
    assert (ConnectError("x").maybe_processed, ConnectError("x").account_wide) == (False, False)
    assert TransportTimeoutError("x").maybe_processed is True
    assert UnavailableError("x").maybe_processed is True
    assert AuthenticationError("x").account_wide is True
    assert isinstance(DuplicateMessageError("x"), RejectedError)
    assert SmsBridgeError("x", maybe_processed=True).maybe_processed is True


def test_an_error_reads_well_and_names_the_gateway_but_no_secret() -> None:
    """provider, status, code and the gateway's words; the message once."""
    error = RejectedError(
        "the gateway refused the request",
        provider="smsclub",
        status=400,
        code="src_addr",
        gateway_message="Sender name is incorrect",
    )
    assert str(error) == (
        "the gateway refused the request | provider=smsclub | http=400 | code=src_addr | "
        "gateway said: 'Sender name is incorrect'"
    )
    assert repr(error).startswith("RejectedError(")


def test_a_report_counts_and_says_whether_all_went_well() -> None:
    """total, ok, counts() and the outcome helpers."""
    outcomes = (
        Outcome(index=0, phone="1", status=Status.ACCEPTED, message_id="a"),
        Outcome(index=1, phone="2", status=Status.REJECTED, reason="bad"),
    )
    report = Report(accepted=1, rejected=1, requests=1, outcomes=outcomes)
    assert report.total == 2 and report.ok
    assert report.message_ids() == ["a"]
    assert report.by_status(Status.REJECTED) == [outcomes[1]]
    assert msgspec.json.decode(msgspec.json.encode(report.counts()), type=Counts) == Counts(
        accepted=1, rejected=1, requests=1
    )
    assert not Report(uncertain=1).ok and not Report(stopped=True).ok
