"""Number normalisation: every common spelling to the gateways' digits, bad ones with a reason."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsbridge import ConfigurationError, PhoneRules
from smsbridge._core.phones import InvalidPhone

UA = PhoneRules("UA")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("380989361131", "380989361131"),
        ("+380989361131", "380989361131"),
        ("+380 98 936 11 31", "380989361131"),
        ("380 (98) 936-11-31", "380989361131"),
        ("00380989361131", "380989361131"),
        ("0989361131", "380989361131"),
        ("(098) 936-11-31", "380989361131"),
        ("0980000001", "380980000001"),
        (380989361131, "380989361131"),
        ("  380989361131\n", "380989361131"),
        ("+1 415 555 2671", "14155552671"),
        ("79161234567", "79161234567"),
        ("+380 0989361131", "380989361131"),  # the trunk 0 kept after the country code
        ("3800989361131", "380989361131"),
        ("950000000", "380950000000"),  # no +95 number begins 0: the home form without its 0
        ("+39 06 1234 5678", "390612345678"),  # Rome: Italy keeps the zero
        ("+380\u201398\u2013936\u201311\u201331", "380989361131"),  # en dashes, as pasted
        ("380989361131.", "380989361131"),  # the number ends a sentence
        # what copying from a messenger, a spreadsheet or a web page leaves in a number
        ("\uff0b380989361131", "380989361131"),  # a full-width plus
        ("\u202a+380 98 936 11 31\u202c", "380989361131"),  # direction marks
        ("\u200e+380 98 936 11 31", "380989361131"),
        ("+380\u200b989361131", "380989361131"),  # a zero-width space
        ("+380 98\u00ad936 11 31", "380989361131"),  # a soft hyphen
        ("+380\u3000989361131", "380989361131"),  # an ideographic space
        ("\ufeff380989361131", "380989361131"),  # a byte-order mark
        ("+380\u2015989361131", "380989361131"),  # a horizontal bar
        ("\uff08098\uff09936 11 31", "380989361131"),  # full-width brackets
        ("+380[98]9361131", "380989361131"),
        ("'380989361131", "380989361131"),  # a spreadsheet's text mark
        ('"+380989361131"', "380989361131"),
        ("tel:+380989361131", "380989361131"),  # a link's number
        ("TEL:+380-98-936-11-31", "380989361131"),
        ("380989361131,", "380989361131"),  # a list's punctuation, a sentence's
        ("380989361131;", "380989361131"),
        ("\u3002380989361131\u3002", "380989361131"),
        ("+380\u3000989\u2060361131\u200b", "380989361131"),
        ("050.123.45.67".replace("050", "098").replace("123.45.67", "936.11.31"), "380989361131"),
        ("+380\u202f98\u202f936\u202f11\u202f31", "380989361131"),  # narrow no-break spaces
        ("+380\u200998\u2009936 11 31", "380989361131"),  # thin spaces
    ],
)
def test_spellings_normalise(raw: object, expected: str) -> None:
    """Formatting, international prefixes and the home national format all normalise."""
    assert UA.normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty phone number"),
        ("abc", "not a phone number: letters in it"),
        # keypad letters would be read as digits, a number found among words, an extension
        # dropped: each would be sent to a number nobody wrote
        ("380 50 OLENA 12", "not a phone number: letters in it"),
        ("+380-50-TAXI-777", "not a phone number: letters in it"),
        ("Olena 0501234567", "not a phone number: letters in it"),
        ("0501234567 (Olena)", "not a phone number: letters in it"),
        ("050-123-45-67 дом", "not a phone number: letters in it"),
        ("380501234530x12", "not a phone number: letters in it"),
        ("+380501234530;ext=5", "not a phone number: letters in it"),
        ("380501234530#12", "not a phone number: it has an extension"),
        ("380501234530,12", "not a phone number: it has an extension"),
        ("380501234530;12", "not a phone number: it has an extension"),
        ("380501234530*12", "not a phone number"),
        ("380989361131.0", "not a phone number: written as a decimal"),  # pandas' float
        ("tel:+380989361131;ext=12", "not a phone number: letters in it"),
        ("tel:+380989361131;phone-context=x", "not a phone number: letters in it"),
        ("+380989361131.0", "not a phone number: written as a decimal"),
        ("(380989361131.0)", "not a phone number: written as a decimal"),
        ("+380 98 936 1131.5", "not a phone number: written as a decimal"),
        ("+380989361131.00", "not a phone number: written as a decimal"),
        (
            "\uff0b\uff13\uff18\uff10989361131\uff0e\uff10",
            "not a phone number: written as a decimal",
        ),
        ("+380989361131 .0", "not a phone number: written as a decimal"),
        ("+380989361131\u00ad.0", "not a phone number: written as a decimal"),
        ("+380 98 936 11 31?", "not a phone number"),  # a digit someone was unsure of
        (", -380989361131", "not a phone number"),  # a minus behind a list's comma
        ("tel: -380989361131", "not a phone number"),
        ("380989361131/ ;", "not a phone number"),
        # a zero after a code whose national prefix is not 0 is kept by the parser, and is
        # in no plan: +1 012..., and a Ukrainian 050 typed after Russia's +7
        ("+1 012 345 6789", "no number under +1 begins with 0 after the country code"),
        ("+7 050 123 45 67", "no number under +7 begins with 0 after the country code"),
        ("380001234567", "no number under +380 begins with 0 after the country code"),
        ("+380 50 123 45 67²", "not a phone number"),
        (None, "not a phone number: NoneType"),
        (True, "not a phone number: bool"),
        (3.8e11, "not a phone number: float"),
        ("38098936113", "wrong length for +380: 8 digits after the country code, need 9"),
        ("3809893611311", "wrong length for +380: 10 digits after the country code, need 9"),
        ("2809893611", "unknown country code"),
        ("1" * 70, "not a phone number: too long"),
        ("-380989361131", "not a phone number"),  # a minus is no separator at the start
        ("380989361131-", "not a phone number"),
        ("\u2212380989361131", "not a phone number"),  # a minus sign
        ("\u2014380989361131", "not a phone number"),  # an em dash
    ],
)
def test_impossible_numbers_are_refused_with_a_reason(raw: object, reason: str) -> None:
    """A number that cannot be valid raises InvalidPhone whose message is the reason."""
    with pytest.raises(InvalidPhone) as e:
        UA.normalise(raw)
    assert str(e.value) == reason


def test_served_countries_and_home_format() -> None:
    """A gateway serving one country refuses others; its national format is accepted."""
    az = PhoneRules("AZ", countries=["AZ"])
    assert az.normalise("0501234567") == "994501234567"
    with pytest.raises(InvalidPhone, match=r"\+380 is not served"):
        az.normalise("380989361131")
    assert PhoneRules("RU").normalise("8 (916) 123-45-67") == "79161234567"


def test_strict_mode_checks_assigned_ranges() -> None:
    """strict=True refuses numbers phonenumbers knows are unassigned."""
    assert PhoneRules("UA").normalise("380201234567") == "380201234567"
    with pytest.raises(InvalidPhone, match="not an assigned number range"):
        PhoneRules("UA", strict=True).normalise("380201234567")
    assert PhoneRules("UA", strict=True).normalise("380989361131") == "380989361131"


def test_unknown_region_is_a_configuration_error() -> None:
    """Rules for a region that does not exist fail at construction."""
    with pytest.raises(ConfigurationError):
        PhoneRules("XX")
    with pytest.raises(ConfigurationError):
        PhoneRules("UA", countries=["ZZ"])


@given(st.text(alphabet="+0123456789 -()", max_size=20))
def test_fast_path_agrees_with_the_full_parser(raw: str) -> None:
    """The fast path and the full parser give the same verdict; results are stable digits."""
    try:
        digits = UA.normalise(raw)
    except InvalidPhone as e:
        with pytest.raises(InvalidPhone) as full:
            UA._slow(raw)
        assert str(full.value) == str(e)
        return
    assert UA._slow(raw) == digits
    assert UA.normalise(digits) == digits
    parsed = phonenumbers.parse("+" + digits, None)
    assert f"{parsed.country_code}{phonenumbers.national_significant_number(parsed)}" == digits


_CC = {"UA": "380", "AZ": "994", "RU": "7"}
_SIZE = {"UA": 12, "AZ": 12, "RU": 11}


def _odd(number: str, cc: str) -> list[object]:
    """The ways one number can fail to be a home number in gateway form."""
    after = len(cc)
    return [
        number[:after] + "0" + number[after + 1 :],  # 0 after the country code
        "9" + number[1:] if number[0] != "9" else "8" + number[1:],  # another country code
        number[:-1],
        number + "5",
        number[:-1] + "\u0663",  # an Arabic-Indic digit
        number + "\n",
        "+" + number,
        int(number),
        None,
    ]


@pytest.mark.parametrize("region", ["UA", "AZ", "RU"])
@given(st.data())
def test_a_chunk_normalises_as_its_numbers_do_one_by_one(region: str, data: st.DataObject) -> None:
    """The chunk-at-a-time check of home numbers gives what each number gives alone: a
    chunk of home numbers, one of them perhaps spoilt in one way."""
    cc, size = _CC[region], _SIZE[region]
    national = st.integers(10 ** (size - len(cc) - 1), 10 ** (size - len(cc)) - 1)
    raws: list[object] = [
        cc + str(n) for n in data.draw(st.lists(national, min_size=1, max_size=8))
    ]
    if data.draw(st.booleans()):
        spoilt = data.draw(st.sampled_from(_odd(str(raws[0]), cc)))
        raws.insert(data.draw(st.integers(0, len(raws))), spoilt)
    rules = PhoneRules(region)
    phones, problems = rules.normalise_many(raws)
    for position, raw in enumerate(raws):
        try:
            assert phones[position] == rules.normalise(raw)
            assert type(phones[position]) is str
            assert position not in problems
        except InvalidPhone as e:
            assert problems[position] == str(e)


def test_a_chunk_of_home_numbers_is_checked_at_once() -> None:
    """Plain home numbers take the chunk check (no per-number parse); one odd one does not."""
    rules = PhoneRules("UA")
    home = rules._home
    assert home is not None
    chunk = [f"38050{i:07d}" for i in range(100)]
    assert home.read(chunk) == chunk
    for bad in (
        "380050000000",
        "390500000000",
        "38050000000",
        "3805000000001",
        "38050000000\n",
        "38050000000\u0663",
        "+38050000000",
    ):
        assert home.read([*chunk, bad]) is None, bad
        assert home.read([bad, *chunk]) is None, bad
    assert home.read([*chunk, 380500000000]) is None
    # one short and one long, whose digits run on as two numbers would
    assert home.read([*chunk, "38050000000", "3380500000001"]) is None

    class Digits(str):
        pass

    assert [type(p) for p in home.read([Digits("380500000001")]) or ()] == [str]


def test_a_line_break_inside_an_entry_is_no_second_number() -> None:
    """Where the home country's mobile numbers have several lengths (Germany), an entry
    holding two numbers on two lines is one invalid entry, not two numbers: the phones
    stay one per entry."""
    rules = PhoneRules("DE")
    phones, problems = rules.normalise_many(["4915123456789\n4915123456780", "4915123456781"])
    assert phones[1] == "4915123456781" and len(phones) == 2
    assert list(problems) == [0]


@pytest.mark.parametrize("region", ["RU", "UA", "AZ"])
@given(
    number=st.sampled_from(
        [
            "380501110017",
            "+380 50 111 0017",
            "79161234567",
            "89161234567",
            "0989361131",
            "00380501110017",
            "994501234567",
            "+1 555",
        ]
    ),
    script=st.sampled_from(["０", "٠", "۰", "०", "০"]),  # full-width, Arabic-Indic, ...
    mask=st.integers(0, 2**15 - 1),
)
def test_digits_of_other_scripts_read_as_the_ascii_digits_they_are(
    region: str, number: str, script: str, mask: int
) -> None:
    """Any of a number's digits written in another script: the same number, or the same
    reason, as in ASCII. Webcom (Russia by default) read ``３８０501110017`` as a Russian
    national number, wrong length for +7, where it is +380."""
    zero = ord(script)
    written = "".join(
        chr(zero + int(c)) if c.isdigit() and mask >> n & 1 else c for n, c in enumerate(number)
    )
    rules = PhoneRules(region)

    def read(raw: str) -> str:
        try:
            return rules.normalise(raw)
        except InvalidPhone as e:
            return f"invalid: {e}"

    assert read(written) == read(number)
