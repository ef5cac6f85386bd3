"""What SMS Club's words mean, in the three languages its API and cabinet speak.

The gateway answers in English, Russian or Ukrainian (its site and cabinet are in all three;
its own PHP SDK maps the Russian status words, public clients show Russian and Ukrainian
refusals). Texts are matched after normalising both sides (case, surrounding space, trailing
dots, an ``error:`` prefix) by containment. One row per meaning, the languages side by side.
"""

from __future__ import annotations

import enum
import re

from .._core.models import DeliveryState

__all__ = ["STATUS_WORDS", "TABLE", "Kind", "kind_of", "state_of"]


class Kind(enum.Enum):
    """What a refusal text says."""

    BALANCE = "balance"
    """The account cannot pay: stop the send; the number was not sent (``failed``)."""
    NUMBER = "number"
    """This number cannot be sent to (malformed, unknown, on the black list)."""
    SENDER = "sender"
    """The sender name is missing, unknown or not approved."""


TABLE: tuple[tuple[Kind, str, str, str], ...] = (
    # kind, English, Russian, Ukrainian
    (Kind.BALANCE, "Not enough money", "Недостаточно средств", "Недостатньо коштів"),
    (Kind.BALANCE, "Insufficient funds", "Недостаточно денег", "Недостатньо грошей"),
    (Kind.NUMBER, "Incorrect phone number", "Некорректный номер", "Некоректний номер"),
    (Kind.NUMBER, "in the black list", "в черном списке", "у чорному списку"),
    (Kind.SENDER, "Sender name", "Альфа имя", "Альфа Ім'я"),
    (Kind.SENDER, "Sender Name", "Имя отправителя", "Ім'я відправника"),
)
"""Refusal texts. Documented or seen in public clients: "Not enough money…", "Incorrect
phone number", "Некорректный номер получателя", "Некоректне Альфа Ім'я" and the black-list
text; the other languages' rows are translations, as an assumption."""

STATUS_WORDS: dict[str, DeliveryState] = {
    # the API's own (documented)
    "enroute": DeliveryState.ENROUTE,
    "delivrd": DeliveryState.DELIVRD,
    "expired": DeliveryState.EXPIRED,
    "undeliv": DeliveryState.UNDELIV,
    "rejectd": DeliveryState.REJECTD,
    # Russian, as the gateway's own SDK maps them
    "ожидает отправки": DeliveryState.ENROUTE,
    "отправлено": DeliveryState.ENROUTE,
    "доставлено": DeliveryState.DELIVRD,
    "просрочено": DeliveryState.EXPIRED,
    "недоставляемое": DeliveryState.UNDELIV,
    "отклонено": DeliveryState.REJECTD,
    # Ukrainian, as the cabinet shows them
    "очікує відправки": DeliveryState.ENROUTE,
    "відправлено": DeliveryState.ENROUTE,
    "прострочено": DeliveryState.EXPIRED,
    "недоставлене": DeliveryState.UNDELIV,
    "відхилено": DeliveryState.REJECTD,
}
"""Status words in the shared vocabulary ("доставлено" is Russian and Ukrainian alike)."""

_PREFIX = re.compile(r"^\s*(error|ошибка|помилка)\s*:\s*", re.IGNORECASE)


def _normal(text: str) -> str:
    text = _PREFIX.sub("", text).casefold().replace("ё", "е").replace("’", "'")
    return " ".join(text.split()).rstrip(". ")


_PATTERNS = tuple((kind, _normal(phrase)) for kind, *phrases in TABLE for phrase in phrases)


def kind_of(text: str) -> Kind | None:
    """The meaning of a refusal text, or ``None`` when it is not a known one."""
    normal = _normal(text)
    for kind, pattern in _PATTERNS:
        if pattern in normal:
            return kind
    return None


def state_of(word: str) -> DeliveryState:
    """A status word in the shared vocabulary; ``UNKNOWN`` for one nobody has seen."""
    return STATUS_WORDS.get(_normal(word), DeliveryState.UNKNOWN)
