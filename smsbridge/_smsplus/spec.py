"""SMSPlus, declared: everything the rest of smsbridge knows of this gateway."""

from __future__ import annotations

from .._core.gateway import GatewaySpec

__all__ = ["SPEC"]

SPEC = GatewaySpec(
    name="smsplus",
    title="SMSPlus",
    default_url="https://smsplus.az",
    region="AZ",
    countries=("AZ",),
    batch_size=100,
    messages=frozenset({"template"}),
    calls=frozenset({"templates"}),
    client="smsbridge._smsplus.client:SmsPlus",
    fake="smsbridge._smsplus.fake:FakeSmsPlus",
)
"""Bearer token; approved templates only; Azerbaijani numbers; no documented request size
(100, so that one bad entry refuses few recipients)."""
