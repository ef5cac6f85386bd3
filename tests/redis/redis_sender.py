"""One sending process for the multi-process Redis tests: says ``ready`` once started, sends
when a line arrives on stdin (so that all start together), prints its counts as JSON."""

from __future__ import annotations

import argparse
import sys

import anyio
import msgspec

from smsbridge import SmsClub


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--phone")
    args = parser.parse_args()
    if args.phone:
        phones = [args.phone]
    else:
        phones = [f"38050{i:07d}" for i in range(args.start, args.start + args.count)]
    stop = anyio.Event()

    async def stop_later() -> None:
        await anyio.sleep(args.seconds)
        stop.set()

    async with (
        SmsClub(args.token, base_url=args.url, redis_url=args.redis) as sms,
        anyio.create_task_group() as tg,
    ):
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await anyio.to_thread.run_sync(sys.stdin.readline)
        if args.seconds:
            tg.start_soon(stop_later)
        report = await sms.send("Sale", to=phones, sender="Shop", stop=stop, keep="none")
        tg.cancel_scope.cancel()
    sys.stdout.write(msgspec.json.encode(report.counts()).decode() + "\n")


if __name__ == "__main__":
    anyio.run(main)
