"""Fake gateways and a fake clock, for smsbridge's tests and for yours.

The fakes are real aiohttp servers on loopback that behave as the gateways' documents say
(authentication, limits, partial success, error codes) and can inject faults. Each records
every request and every message it accepted, so a test can assert exactly who got what::

    async with FakeSmsClub() as fake, SmsClub("test-token", base_url=fake.url) as sms:
        report = await sms.send("hi", to=["380501234567"], sender="Shop")
        assert [m.phone for m in fake.sent] == ["380501234567"]
"""

from .._fake import (
    Disconnect,
    FakeAnswer,
    FakeGateway,
    FakeOptions,
    FakeRequest,
    Fault,
    Faults,
    Record,
    Reply,
    RequestRecord,
    SentMessage,
    Stall,
    busiest_window,
)
from .._smsclub.fake import FakeSmsClub
from .._smsplus.fake import FakeSmsPlus
from .._webcom.fake import FakeWebcom
from ._clock import FakeClock
from ._process import FakeProcess

__all__ = [
    "Disconnect",
    "FakeAnswer",
    "FakeClock",
    "FakeGateway",
    "FakeOptions",
    "FakeProcess",
    "FakeRequest",
    "FakeSmsClub",
    "FakeSmsPlus",
    "FakeWebcom",
    "Fault",
    "Faults",
    "Record",
    "Reply",
    "RequestRecord",
    "SentMessage",
    "Stall",
    "busiest_window",
]
