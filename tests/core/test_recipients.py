"""Input entries into columns: malformed entries become reasons, never exceptions."""

from __future__ import annotations

from smsbridge._core.recipients import phone_param_pairs, phone_text_pairs, phones_only


def test_phone_text_pairs() -> None:
    """Pairs split; a missing or blank text, or no pair at all, is a per-entry reason."""
    phones, texts, params, bad = phone_text_pairs(
        [("1", "a"), ("2", " "), ("3", None), "solo", ("4", "b", "extra"), ("5", 5)]
    )
    assert list(phones) == ["1", "2", "3", "solo", "('4', 'b', 'extra')", "5"]
    assert texts == ["a", "", "", "", "", ""]
    assert params is None
    assert bad == {
        1: "empty text",
        2: "empty text",
        3: "not a (phone, text) pair",
        4: "not a (phone, text) pair",
        5: "the text is no str",
    }


def test_phone_param_pairs() -> None:
    """Tuples, lists, one string and numbers are parameters; other things are reasons."""
    phones, texts, params, bad = phone_param_pairs(
        [
            ("1", ("a", "b")),
            ("2", ["c", 7]),
            ("3", "one"),
            ("4", 42),
            ("5", (None,)),
            ("6", {"a": 1}),
            ("7", (True,)),
            ("8", b"raw"),
            9,
        ]
    )
    assert list(phones) == ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
    assert texts is None
    assert params == [("a", "b"), ("c", "7"), ("one",), ("42",), (), (), (), (), ()]
    reason = "parameters must be strings or numbers"
    assert bad == {4: reason, 5: reason, 6: reason, 7: reason, 8: "not a (phone, parameters) pair"}


def test_phones_only_passes_through() -> None:
    """Plain numbers need no unpacking."""
    chunk = ["1", 2]
    assert phones_only(chunk) == (chunk, None, None, {})
