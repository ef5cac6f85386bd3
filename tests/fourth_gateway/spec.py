"""Toy, declared."""

from __future__ import annotations

from smsbridge._core.gateway import GatewaySpec

SPEC = GatewaySpec(
    name="toy",
    title="Toy",
    default_url="https://toy.invalid",
    region="UA",
    batch_size=50,
    messages=frozenset({"text"}),
    calls=frozenset({"balance"}),
    client="tests.fourth_gateway.client:Toy",
    fake="tests.fourth_gateway.fake:FakeToy",
)
