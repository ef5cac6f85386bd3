"""What Webcom's error texts mean, in both languages the platform speaks.

The platform answers in English or Russian (its Russian pages, and the public clients of its
sibling brands, compare these exact strings). A text is matched after normalising both sides
(case, surrounding space, trailing dots, an ``error:`` prefix) by containment, so a longer
sentence around a known phrase still matches. One row per meaning, both languages side by side.
"""

from __future__ import annotations

import enum
import re

__all__ = ["TABLE", "Kind", "kind_of"]


class Kind(enum.Enum):
    """What a text says happened."""

    ACCOUNT = "account"
    """The credentials or the account cannot send: stop the send; nothing was sent."""
    BALANCE = "balance"
    """The account is out of messages: stop the send; nothing was sent."""
    QUEUED = "queued"
    """Held by the gateway until the account is topped up: not refused, must not be resent."""
    NUMBER = "number"
    """One number's problem (stop list, closed destination, bad length, missing)."""
    CONTENT = "content"
    """The text or the sender was refused: the request's recipients are rejected."""
    FORMAT = "format"
    """The request itself was malformed: every request would fail the same way."""
    REPEAT = "repeat"
    """An identical request came shortly before: it may have been processed."""
    RATE = "rate"
    """Too many requests."""
    NOT_FOUND = "not_found"
    """A status asked for an id the gateway does not know."""


TABLE: tuple[tuple[Kind, str, str], ...] = (
    # kind, English (the JSON document), Russian (the Russian pages and sibling clients)
    (Kind.ACCOUNT, "Your account is locked", "Ваш аккаунт заблокирован"),
    (Kind.ACCOUNT, "Incorrect login or password", "Неправильный логин или пароль"),
    (Kind.ACCOUNT, "Account blocked", "Аккаунт заблокирован"),
    (Kind.QUEUED, "will be sent as soon as you top up", "будет отправлена как только вы пополните"),
    # the same in other words (the plural, another English): the stem that says it waits
    (Kind.QUEUED, "once you top up", "как только вы пополните"),
    # short of money without saying it waits: it may be held until paid all the same, and
    # sent then; taken as held (uncertain, the send stopped), never as a refusal to resend
    (Kind.QUEUED, "Insufficient funds", "Недостаточно средств"),
    (Kind.BALANCE, "We have run out of SMS", "У нас закончились SMS"),
    (Kind.BALANCE, "Out of SMS", "Закончились SMS"),
    (Kind.NUMBER, "Specify phone number", "Укажите номер телефона"),
    (Kind.NUMBER, "Phone number is on the stop list", "Номер телефона присутствует в стоп-листе"),
    (
        Kind.NUMBER,
        "Phone number must be less than 15 characters",
        "Номер телефона должен быть меньше 15 символов",
    ),
    (Kind.NUMBER, "This destination is closed", "Данное направление закрыто"),
    (Kind.CONTENT, "SMS text rejected by moderator", "Текст SMS отклонен модератором"),
    (Kind.CONTENT, "There is no such sender", "Такого отправителя нет"),
    (Kind.CONTENT, "The sender has not been moderated", "Отправитель не прошел модерацию"),
    (Kind.CONTENT, "The sender must not exceed", "Отправитель не должен превышать"),
    (Kind.CONTENT, "No sender", "Нет отправителя"),
    (Kind.CONTENT, "No message text", "Нет текста сообщения"),
    (Kind.CONTENT, "No link", "Нет ссылки"),
    (Kind.CONTENT, "Provide the name of the contact", "Укажите название контакта"),
    (Kind.FORMAT, "Incorrect JSON document format", "Неправильный формат"),
    (Kind.FORMAT, "POST data is missing", "POST данные отсутствуют"),
    (Kind.REPEAT, "more than one identical request", "более одного одинакового запроса"),
    (Kind.RATE, "Too many requests", "Слишком много запросов"),
    (Kind.NOT_FOUND, "SMS not found", "Сообщение с таким ID не принималось"),
)
"""Every known text. English texts for ``QUEUED`` and ``REPEAT`` are not documented: the
rows carry the Russian ones, and an English phrase of the same meaning as an assumption."""

_PREFIX = re.compile(r"^\s*(error|ошибка)\s*:\s*", re.IGNORECASE)
_PUNCTUATION = re.compile(r"[^\w\s]")


def _normal(text: str) -> str:
    # words only: punctuation (a comma Russian grammar puts before "как только") is no part
    # of what a text means
    words = _PUNCTUATION.sub(" ", _PREFIX.sub("", text).casefold().replace("ё", "е"))
    return " ".join(words.split())


_PATTERNS = tuple(
    (kind, _normal(phrase)) for kind, english, russian in TABLE for phrase in (english, russian)
)


def kind_of(text: str) -> Kind | None:
    """The meaning of a gateway text, or ``None`` when it is not a known one."""
    normal = _normal(text)
    for kind, pattern in _PATTERNS:
        if pattern in normal:
            return kind
    return None
