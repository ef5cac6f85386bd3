"""``python -m smsbridge.testing PROVIDER``: serve a fake gateway until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
from collections.abc import Callable

import msgspec

from ._base import FakeGateway, Faults
from ._smsclub import FakeSmsClub
from ._smsplus import FakeSmsPlus
from ._webcom import FakeWebcom

FAKES: dict[str, Callable[..., FakeGateway]] = {
    "smsclub": FakeSmsClub,
    "smsplus": FakeSmsPlus,
    "webcom": FakeWebcom,
}


def build(argv: list[str] | None = None) -> FakeGateway:
    """The fake the command line describes."""
    parser = argparse.ArgumentParser(prog="python -m smsbridge.testing")
    parser.add_argument("provider", choices=sorted(FAKES))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", action="append", help="accepted token (repeatable)")
    parser.add_argument("--sender", action="append", help="approved sender name (repeatable)")
    parser.add_argument("--rate-limit", default="9", help="requests per sliding second, or 'none'")
    parser.add_argument("--faults", default="{}", help="Faults as JSON")
    parser.add_argument(
        "--template", action="append", help="SMSPlus template as ID=TEXT (repeatable)"
    )
    args = parser.parse_args(argv)
    rate = None if args.rate_limit == "none" else int(args.rate_limit)
    faults = msgspec.json.decode(args.faults.encode(), type=Faults)
    extra: dict[str, object] = {}
    if args.template:
        if args.provider != "smsplus":
            parser.error("--template is for smsplus")
        pairs = [t.split("=", 1) for t in args.template]
        extra["templates"] = {int(i): text for i, text in pairs}
    return FAKES[args.provider](
        tokens=args.token or ["test-token"],
        senders=args.sender or ["Shop"],
        rate_limit=rate,
        faults=faults,
        host=args.host,
        port=args.port,
        **extra,
    )


async def serve(fake: FakeGateway) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with fake:
        gc.freeze()  # start-up objects out of the collector's scans: fewer, shorter pauses
        print(f"listening on {fake.url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    fake = build(argv)
    asyncio.run(serve(fake))
    sys.exit(0)


if __name__ == "__main__":
    main()
