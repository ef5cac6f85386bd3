"""SMS Club, declared: everything the rest of smsbridge knows of this gateway."""

from __future__ import annotations

from .._core.gateway import GatewaySpec

__all__ = ["SPEC"]

SPEC = GatewaySpec(
    name="smsclub",
    title="SMS Club",
    default_url="https://im.smsclub.mobi",
    region="UA",
    batch_size=100,
    max_batch=100,
    repeat_guard=120.0,
    messages=frozenset({"text", "personal"}),
    calls=frozenset({"status", "balance", "senders"}),
    client="smsbridge._smsclub.client:SmsClub",
    fake="smsbridge._smsclub.fake:FakeSmsClub",
)
"""Bearer token; 100 numbers per request (documented); no idempotency key, but a 453 for the
same text to the same number within 2 minutes (documented), which makes a repeat of an
ambiguous request safe within that time."""
