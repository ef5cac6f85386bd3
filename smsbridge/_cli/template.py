"""What a template send learns from the gateway before the rows are read: how many
parameters the template takes (a row's last one may then be empty)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._core.errors import SmsBridgeError
from .._core.gateway import Message
from .inputs import Recipients

__all__ = ["fit_parameters"]


async def fit_parameters(
    clients: Iterable[Any], message: Message, recipients: Recipients
) -> str | None:
    """Tell the rows how many parameters the template takes, asking the first of
    ``clients`` that has templates; ``None`` once told (or where no row carries parameters),
    else why the parameters go unchecked (their trailing empty ones are then left off)."""
    if message.template is None or not recipients.parametrised:
        return None
    for client in clients:
        lookup = getattr(client, "templates", None)
        if lookup is None:
            continue
        try:
            found = await lookup([message.template])
        except SmsBridgeError as e:  # a send says so itself; a plan tells it
            return f"the template could not be looked up ({e})"
        if not found or found[0].parameters is None:
            return "the gateway did not say how many parameters the template takes"
        recipients.takes(found[0].parameters)
        return None
    return None
