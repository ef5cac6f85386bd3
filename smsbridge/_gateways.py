"""The registry: every gateway smsbridge knows, by name. A gateway is one package with its
declaration (:class:`~smsbridge._core.gateway.GatewaySpec`) and one line here; the command
line, the dry run, the fakes' catalogue and the web edges read this registry."""

from __future__ import annotations

import importlib
from typing import Any

from ._core.errors import ConfigurationError
from ._core.gateway import GatewaySpec
from ._smsclub import SPEC as SMSCLUB
from ._smsplus import SPEC as SMSPLUS
from ._webcom import SPEC as WEBCOM

__all__ = ["GATEWAYS", "client_class", "fake_class", "register", "spec"]

GATEWAYS: dict[str, GatewaySpec] = {s.name: s for s in (SMSCLUB, SMSPLUS, WEBCOM)}
"""Every known gateway by name."""


def register(declaration: GatewaySpec) -> None:
    """Add a gateway (a plug-in, or a test's)."""
    GATEWAYS[declaration.name] = declaration


def spec(name: str) -> GatewaySpec:
    """The declaration of gateway ``name``."""
    try:
        return GATEWAYS[name]
    except KeyError:
        known = ", ".join(sorted(GATEWAYS))
        raise ConfigurationError(f"no gateway {name!r}; known: {known}") from None


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def client_class(declaration: GatewaySpec) -> Any:
    """The client class a declaration names."""
    return _load(declaration.client)


def fake_class(declaration: GatewaySpec) -> Any:
    """The fake gateway class a declaration names."""
    return _load(declaration.fake)
