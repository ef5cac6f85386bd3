"""Webcom Mobi (mysmpp), declared: everything the rest of smsbridge knows of this gateway."""

from __future__ import annotations

from .._core.gateway import GatewaySpec

__all__ = ["SPEC"]

SPEC = GatewaySpec(
    name="webcom",
    title="Webcom",
    default_url="http://lk.mysmpp.ru",
    plain_http_default=True,
    https_url="https://my3.webcom.mobi",
    region="RU",
    batch_size=100,
    retry_safe=True,
    credentials=(("token",), ("login", "password")),
    messages=frozenset({"text", "personal"}),
    calls=frozenset({"status", "balance"}),
    client="smsbridge._webcom.client:Webcom",
    fake="smsbridge._webcom.fake:FakeWebcom",
)
"""A token, or login and password, in the body; the documented address is plain HTTP (an
HTTPS host of the platform is known); client_id_sms makes repeats safe."""
