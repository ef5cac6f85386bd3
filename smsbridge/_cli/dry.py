"""A dry run's client: the environment's credentials where it has them, else placeholders on
a transport that asks the gateway nothing."""

from __future__ import annotations

import argparse
from typing import Any

from .._core.client import Client
from .._core.errors import ConfigurationError, ConnectError
from .._core.gateway import GatewaySpec
from .._core.retry import RetryPolicy

__all__ = ["dry_client"]


class _Offline:
    """The transport of a dry run without credentials: it asks the gateway nothing (a
    template is then not looked up, nor its parameters checked), where a placeholder token
    went to the gateway's real address."""

    async def send(self, request: Any, ready: Any = None) -> Any:
        raise ConnectError("a dry run without credentials asks the gateway nothing")

    async def aclose(self) -> None:
        """Nothing to release."""


def dry_client(
    declaration: GatewaySpec, args: argparse.Namespace, make: Any
) -> tuple[Client[Any], bool]:
    """The client of a dry run, and whether it is offline: the environment's credentials if
    it has them (a template is looked up, as a send would), else placeholders on a transport
    that asks the gateway nothing."""
    try:
        return make(declaration, args), False
    except ConfigurationError:  # no credentials (anything else is said again below)
        placeholders = dict.fromkeys(declaration.credentials[0], "dry-run")
        offline = {"transport": _Offline(), "retry": RetryPolicy(attempts=1)}
        return make(declaration, args, **placeholders, **offline), True
