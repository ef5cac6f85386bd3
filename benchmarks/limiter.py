"""The rate limiter at the real 9 requests/s, against the fake SMS Club in its own process:
achieved rate and busiest sliding second from a cold start and right after an idle pause,
next to a plain token bucket (capacity 9, refilled 9/s) and a leaky bucket (aiolimiter's
algorithm) driven the same way.

    .venv/bin/python benchmarks/limiter.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from smsbridge import SlidingWindowLimiter, SmsClub
from smsbridge.testing import FakeProcess, busiest_window

from _common import TOKEN, numbers


class TokenBucket:
    """A textbook token bucket: ``capacity`` tokens, refilled at ``rate`` per second."""

    def __init__(self, capacity: int, rate: float) -> None:
        self.capacity, self.rate = capacity, rate
        self.tokens, self.stamp = float(capacity), time.monotonic()
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)

    async def defer(self, seconds: float) -> None:
        await asyncio.sleep(0)


class LeakyBucket:
    """aiolimiter's algorithm: a bucket of ``capacity`` draining at ``rate`` per second."""

    def __init__(self, capacity: int, rate: float) -> None:
        self.capacity, self.rate = capacity, rate
        self.level, self.stamp = 0.0, time.monotonic()
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                self.level = max(0.0, self.level - (now - self.stamp) * self.rate)
                self.stamp = now
                if self.level + 1 <= self.capacity:
                    self.level += 1
                    return
                await asyncio.sleep((self.level + 1 - self.capacity) / self.rate)

    async def defer(self, seconds: float) -> None:
        await asyncio.sleep(0)


async def phase(sms: SmsClub, start: int, seconds: float) -> None:
    """Enough demand to keep the limiter busy for longer than `seconds`."""
    count = int(9 * 100 * (seconds + 2))
    await sms.send("Sale", to=numbers(count, start), sender="Shop", keep="none")


async def run(name: str, limiter: object, seconds: float, idle: float) -> None:
    async with FakeProcess("smsclub", "--token", TOKEN, "--rate-limit", "9") as fake:
        sms = SmsClub(TOKEN, base_url=fake.url, limiter=limiter, concurrency=10)  # type: ignore[arg-type]
        async with sms:
            marks = []
            for n in range(2):
                marks.append(time.monotonic())
                await phase(sms, n * 1_000_000, seconds)
                await asyncio.sleep(idle)
        record = await fake.record()
    starts = sorted(r.at for r in record.requests)
    cells = []
    sustained = []
    for n, mark in enumerate(marks):
        end = marks[n + 1] if n + 1 < len(marks) else float("inf")
        phase_starts = [t for t in starts if mark <= t < end]
        first = phase_starts[0]
        in_window = sum(1 for t in phase_starts if t < first + seconds)
        cells.append(f"{in_window / seconds:5.2f}/s")
        # the gap between a start and the one 9 later, averaged over the whole phase
        gaps = [b - a for a, b in zip(phase_starts, phase_starts[9:], strict=False)]
        sustained.append(9 / (sum(gaps) / len(gaps)))
    print(
        f"{name:<28}{cells[0]:>12}{cells[1]:>12}{min(sustained):>10.2f}/s"
        f"{busiest_window(starts):>9}{record.count(429):>7}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--idle", type=float, default=3.0)
    args = parser.parse_args()
    print(
        f"9 req/s allowed; as the gateway saw it: the rate over the first {args.seconds:g} s "
        "of each phase, the sustained rate (9 per mean gap between a start and the 9th after "
        "it), the busiest sliding second, and 429 answers"
    )
    print(
        f"{'limiter':<28}{'cold start':>12}{'after idle':>12}{'sustained':>12}"
        f"{'busiest':>9}{'429s':>7}"
    )
    await run("smsbridge sliding window", SlidingWindowLimiter(9), args.seconds, args.idle)
    await run("token bucket (9, 9/s)", TokenBucket(9, 9.0), args.seconds, args.idle)
    await run("leaky bucket (9, 9/s)", LeakyBucket(9, 9.0), args.seconds, args.idle)


if __name__ == "__main__":
    asyncio.run(main())
