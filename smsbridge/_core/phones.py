"""Phone-number normalisation: whatever people type, into the digits the gateways want.

All three gateways take the international number as bare digits, country code first
(``380989361131``). Input may carry ``+``, ``00``, spaces, dashes, brackets, or be written in
the gateway's home national format (``098 936 11 31`` for Ukraine). A number is rejected when
it *cannot* be valid: no such country code, a national part of a length no mobile number of
that country has, or a country the gateway does not serve. Whether the number is actually
assigned is the gateway's call (it reports such numbers per recipient, at no cost), unless
``strict`` asks phonenumbers' full range check.

Bare digits already in the gateway's form take a fast path of a few dictionary lookups, as a
million-number campaign is mostly such digits; anything else is parsed by phonenumbers.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Collection, Sequence
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneMetadata

from .errors import ConfigurationError

__all__ = [
    "UNSEEN",
    "InvalidPhone",
    "PhoneRules",
    "compact",
    "international",
    "parsed",
    "shown",
    "unmeant",
]

_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2212"  # hyphens, en and em dashes, minus
# what copying leaves unseen: zero-width characters, direction marks, a byte-order mark, a
# soft hyphen, and the spaces word processors and locales set (no-break, narrow, thin, em...)
UNSEEN = (
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\ufeff\u00ad"
    "\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
)
"""What copying leaves in a number unseen (the masking of logs reads through it too)."""
_UNSEEN_MARKS = str.maketrans("", "", UNSEEN)
_SEPARATORS = str.maketrans("", "", " \t()./" + _DASHES)
_EDGES = ",;:!\u3002\u3001"  # a list's or a sentence's punctuation round a number
_NOT_FIRST = _DASHES + "./)"  # "-380..." is no number
_NOT_LAST = _DASHES + "/("  # a full stop may end a sentence that ends with a number
_MAX_INPUT = 64
_UNSEEN: tuple[int, frozenset[int]] = (-1, frozenset())


class InvalidPhone(ValueError):
    """A recipient's number cannot be valid; the message is the per-recipient reason."""


# a number a spreadsheet or pandas wrote as a float: a last group of zeros, or of one digit,
# after a dot (read in any script's forms: a full-width dot is one too)
_DECIMAL_END = re.compile(r"\d\s*\.\s*(?:0+|\d)\D*$")


def unmeant(text: str, bare: str) -> str | None:
    """Why ``text`` (``bare`` once :func:`compact`) would reach a number nobody wrote, if it
    would: phonenumbers reads letters as a keypad's digits (``380 50 TAXI 777``), finds a
    number among words, a star as a digit, and a float's ``.0`` as one more digit."""
    if len(text) > _MAX_INPUT:
        return "not a phone number: too long"
    if "." in text or not text.isascii():
        seen = unicodedata.normalize("NFKC", text.translate(_UNSEEN_MARKS))
        if _DECIMAL_END.search(seen):
            return "not a phone number: written as a decimal"
    if bare.isdigit():
        return None
    if any(c.isalpha() for c in bare):
        return "not a phone number: letters in it"
    if "*" in bare or "?" in bare:  # a keypad's star; a digit someone was unsure of
        return "not a phone number"
    return None


def parsed(text: str, region: str | None) -> phonenumbers.PhoneNumber:
    """``text`` read by phonenumbers (``region``: the home country of a national form), or
    :class:`InvalidPhone`: nothing it reads as a number, or one with an extension ("#12",
    ",12", ";12"), which takes no SMS."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone("not a phone number") from None
    if number.extension:
        raise InvalidPhone("not a phone number: it has an extension")
    return number


def international(number: phonenumbers.PhoneNumber) -> str:
    """A parsed number's international digits, country code first."""
    return f"{number.country_code}{phonenumbers.national_significant_number(number)}"


def compact(text: str) -> str:
    """``text`` (stripped) without the separators people type inside a number (spaces,
    dashes, brackets, dots, slashes), what copying leaves unseen, a ``tel:`` link's scheme
    and a list's punctuation round it; :class:`InvalidPhone` when a dash or slash stands at
    either end, as in ``-380501234567``, which is not a number that was meant."""
    text = text.translate(_UNSEEN_MARKS).strip().strip(_EDGES).strip()
    if text[:4].lower() == "tel:":  # a link's number (RFC 3966)
        text = text[4:].strip()
    if text[:1] in _NOT_FIRST or text[-1:] in _NOT_LAST:
        raise InvalidPhone("not a phone number")
    bare = text.translate(_SEPARATORS)
    if bare.isascii():
        return bare
    # digits of other scripts (full-width, Arabic-Indic...) as the ASCII digits they are, so
    # that the country code is read from them as from ASCII (not as a national number)
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in bare)


@functools.cache
def _mobile_lengths(cc: int) -> frozenset[int]:
    """Possible national-number lengths of mobile numbers under country code ``cc``."""
    lengths: set[int] = set()
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc, ()):
        if region == "001":
            meta = PhoneMetadata.metadata_for_nongeo_region(cc)
        else:
            meta = PhoneMetadata.metadata_for_region(region)
        if meta is None:
            continue
        mobile = meta.mobile.possible_length if meta.mobile is not None else ()
        general = meta.general_desc.possible_length if meta.general_desc is not None else ()
        chosen = mobile if mobile and tuple(mobile) != (-1,) else general
        lengths.update(n for n in chosen if n > 0)
    return frozenset(lengths)


# country codes are prefix-free: at most one of a number's first 1, 2 or 3 digits is one
_CC_BY_PREFIX: dict[str, int] = {str(cc): cc for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}


def shown(raw: object) -> str:
    """``raw`` as text for an outcome, whatever it is (an int may be too long for ``str``)."""
    try:
        return str(raw)
    except ValueError:
        return f"({type(raw).__name__} too long to show)"
    except Exception:  # a str() of the caller's own that fails
        return f"({type(raw).__name__} that cannot be shown)"


def _alternatives(lengths: str) -> str:
    return "|".join(f"[1-9][0-9]{{{int(n) - 1}}}" for n in lengths.split("|"))


def _zero_led(digits: str) -> bool:
    """Whether international digits whose national part begins with 0 are a number as they
    stand (Italy's 06..., a few African plans): the parser keeps that zero, and the number is
    in the country's plan. (Where the national prefix is not 0, the parser keeps any zero:
    +7 050... is a Ukrainian 050 typed after Russia's code, no Russian number.)"""
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return False
    kept = international(number) == digits
    return kept and phonenumbers.is_valid_number(number)


def _region_ccs(regions: Collection[str]) -> frozenset[int]:
    ccs: set[int] = set()
    for region in regions:
        cc = phonenumbers.country_code_for_region(region.upper())
        if not cc:
            raise ConfigurationError(f"unknown region code {region!r}")
        ccs.add(cc)
    return frozenset(ccs)


class _Home(NamedTuple):
    """Home-country numbers in gateway form: the country code, then a digit other than 0,
    to ``size`` digits in all where that is the only size (else 0); ``pattern`` matches
    such numbers of any size, one per line."""

    cc: str
    size: int
    pattern: re.Pattern[str]

    def read(self, raws: Sequence[object]) -> list[str] | None:
        """The numbers as plain ``str`` when every one of ``raws`` is such a number, else
        ``None``: a chunk checked at once by string operations that run in C."""
        try:
            joined = "\n".join(raws)  # type: ignore[arg-type]
        except TypeError:  # not all strings
            return None
        size, n = self.size, len(raws)
        if joined.count("\n") != n - 1:  # a line break within an entry
            return None
        if not size:
            return joined.split("\n") if self.pattern.fullmatch(joined) else None
        # a line break after every `size` characters: each is `size` long
        if len(joined) != n * (size + 1) - 1 or joined[size :: size + 1] != "\n" * (n - 1):
            return None
        digits = joined.replace("\n", "")
        if not (digits.isascii() and digits.encode().isdigit()):
            return None
        # the k-th digit of every number, as one string: the country code's digits
        # throughout, then no 0
        for place, digit in enumerate(self.cc):
            if digits[place::size] != digit * n:
                return None
        if "0" in digits[len(self.cc) :: size]:
            return None
        return joined.split("\n")  # plain str, whatever subclass came in


class PhoneRules:
    """How a gateway wants its numbers.

    Args:
        default_region: ISO region (``"UA"``) whose national format is accepted, e.g.
            ``0989361131``. Bare digits not starting with ``0`` are read as international.
        countries: ISO regions the gateway serves; ``None`` for any.
        strict: also require phonenumbers to know the number range as assigned
            (slower, and stale metadata can refuse new ranges).
    """

    def __init__(
        self,
        default_region: str,
        *,
        countries: Collection[str] | None = None,
        strict: bool = False,
    ) -> None:
        self.default_region = default_region.upper()
        if not phonenumbers.country_code_for_region(self.default_region):
            raise ConfigurationError(f"unknown region code {default_region!r}")
        self.countries = None if countries is None else tuple(c.upper() for c in countries)
        self._ccs = None if countries is None else _region_ccs(countries)
        self.strict = strict
        self._home = self._home_rule()
        # first three digits -> (country-code length, possible national lengths); the fast path
        self._by_head: dict[str, tuple[int, frozenset[int]] | None] = {}

    def __repr__(self) -> str:
        return (
            f"PhoneRules(default_region={self.default_region!r}, "
            f"countries={self.countries!r}, strict={self.strict})"
        )

    def _check_digits(self, digits: str) -> str | None:
        """Reason these international digits cannot be valid, or ``None`` when they can."""
        table = _CC_BY_PREFIX
        cc = table.get(digits[:1]) or table.get(digits[:2]) or table.get(digits[:3])
        if cc is None:
            return "unknown country code"
        if self._ccs is not None and cc not in self._ccs:
            served = ", ".join(self.countries or ())
            return f"country code +{cc} is not served by this gateway (serves {served})"
        lengths = _mobile_lengths(cc)
        national = len(digits) - len(str(cc))
        if national not in lengths:
            expected = "/".join(str(n) for n in sorted(lengths))
            return (
                f"wrong length for +{cc}: {national} digits after the country code, need {expected}"
            )
        if digits[len(str(cc))] == "0" and not _zero_led(digits):
            return f"no number under +{cc} begins with 0 after the country code"
        return None

    def _home_rule(self) -> _Home | None:
        """What home-country numbers already in gateway form look like."""
        if self.strict:
            return None
        cc = phonenumbers.country_code_for_region(self.default_region)
        if self._ccs is not None and cc not in self._ccs:
            return None
        lengths = "|".join(str(n) for n in sorted(_mobile_lengths(cc)))
        one = (
            f"{cc}[1-9][0-9]{{{int(lengths) - 1}}}"
            if "|" not in lengths
            else f"{cc}(?:{_alternatives(lengths)})"
        )
        sizes = {len(str(cc)) + n for n in _mobile_lengths(cc)}
        size = sizes.pop() if len(sizes) == 1 else 0
        return _Home(str(cc), size, re.compile(f"(?:{one}\n)*{one}"))

    def normalise_many(self, raws: Sequence[object]) -> tuple[list[str], dict[int, str]]:
        """Normalise a chunk: the numbers (the input as ``str`` where invalid) and, by
        position, the reasons of the invalid ones."""
        home = self._home
        if home is not None and raws and (phones := home.read(raws)) is not None:
            return phones, {}
        phones = []
        problems: dict[int, str] = {}
        normalise = self.normalise
        for position, raw in enumerate(raws):
            try:
                phones.append(normalise(raw))
            except InvalidPhone as e:
                phones.append(raw if isinstance(raw, str) else shown(raw))
                problems[position] = str(e)
        return phones, problems

    def _head_rule(self, head: str) -> tuple[int, frozenset[int]] | None:
        table = _CC_BY_PREFIX
        cc = table.get(head[:1]) or table.get(head[:2]) or table.get(head[:3])
        rule = None
        if len(head) == 3 and cc is not None and (self._ccs is None or cc in self._ccs):
            rule = (len(str(cc)), _mobile_lengths(cc))
        if len(self._by_head) < 1000:
            self._by_head[head] = rule
        return rule

    def normalise(self, raw: object) -> str:
        """The number as the gateway's digits, or :class:`InvalidPhone` with the reason."""
        if type(raw) is str:
            digits = raw[1:] if raw[:1] == "+" else raw
            if digits.isdigit() and digits.isascii() and len(digits) <= 15 and not self.strict:
                head = digits[:3]
                known = self._by_head.get(head, _UNSEEN)
                if known is _UNSEEN:
                    known = self._head_rule(head)
                if (
                    known is not None
                    and len(digits) - known[0] in known[1]
                    and digits[known[0]] != "0"
                ):
                    return digits
        elif isinstance(raw, str | int) and not isinstance(raw, bool):
            try:
                raw = str(raw)  # an int, or a str subclass (numpy.str_...): the plain digits
            except ValueError:  # an int past Python's digit limit for str()
                raise InvalidPhone("not a phone number: too long") from None
        else:
            raise InvalidPhone(f"not a phone number: {type(raw).__name__}")
        assert isinstance(raw, str)
        return self._slow(raw)

    def _slow(self, raw: str) -> str:
        text = raw.strip()
        if not text:
            raise InvalidPhone("empty phone number")
        if len(text) > _MAX_INPUT:
            raise InvalidPhone("not a phone number: too long")
        bare = compact(text)
        reason = unmeant(text, bare)
        if reason is not None:
            raise InvalidPhone(reason)
        if bare.startswith("00"):
            bare = "+" + bare[2:]
        if bare.isascii() and bare.isdigit() and not bare.startswith("0"):
            # bare digits: the gateways' own form is international, country code first;
            # failing that, the home country's national form (Russian 8XXXXXXXXXX)
            reason = self._check_digits(bare) if len(bare) <= 15 else "too many digits"
            if reason is None:
                return self._final(bare)
            try:
                return self._parse(bare, self.default_region)
            except InvalidPhone:
                raise InvalidPhone(reason) from None
        region = None if bare.startswith("+") else self.default_region
        return self._parse(bare, region)

    def _parse(self, text: str, region: str | None) -> str:
        number = parsed(text, region)
        digits = international(number)
        reason = "too many digits" if len(digits) > 15 else self._check_digits(digits)
        if reason is not None:
            raise InvalidPhone(reason)
        return self._final(digits, number)

    def _final(self, digits: str, number: phonenumbers.PhoneNumber | None = None) -> str:
        if self.strict:
            if number is None:
                number = phonenumbers.parse("+" + digits, None)
            if not phonenumbers.is_valid_number(number):
                raise InvalidPhone(f"not an assigned number range: +{digits}")
        return digits
