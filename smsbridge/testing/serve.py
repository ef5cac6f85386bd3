"""Serving a fake gateway from the command line: ``python -m smsbridge.testing NAME`` and
``smsbridge fake-gateway NAME`` take the same options and build the fake the registry names."""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys

import msgspec

from .._fake import FakeGateway, Faults
from .._gateways import GATEWAYS, fake_class, spec

__all__ = ["add_fake_arguments", "build", "serve"]


def add_fake_arguments(parser: argparse.ArgumentParser, *, port: int = 0) -> None:
    """The options of a fake gateway."""
    parser.add_argument("provider", choices=sorted(GATEWAYS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--token", action="append", help="accepted token (repeatable)")
    parser.add_argument("--sender", action="append", help="approved sender name (repeatable)")
    parser.add_argument("--rate-limit", default="9", help="requests per sliding second, or 'none'")
    parser.add_argument("--faults", default="{}", help="Faults as JSON")
    parser.add_argument("--language", choices=["en", "ru"], default="en")
    parser.add_argument("--template", action="append", help="a template as ID=TEXT (repeatable)")


def build(args: argparse.Namespace) -> FakeGateway:
    """The fake the options describe."""
    declaration = spec(args.provider)
    rate = None if args.rate_limit == "none" else int(args.rate_limit)
    faults = msgspec.json.decode(args.faults.encode(), type=Faults)
    extra: dict[str, object] = {}
    if args.template:
        if "template" not in declaration.messages:
            raise SystemExit(f"--template: {declaration.title} sends no templates")
        pairs = [t.split("=", 1) for t in args.template]
        extra["templates"] = {int(i): text for i, text in pairs}
    fake: FakeGateway = fake_class(declaration)(
        tokens=args.token or ["test-token"],
        senders=args.sender or ["Shop"],
        rate_limit=rate,
        faults=faults,
        language=args.language,
        host=args.host,
        port=args.port,
        **extra,
    )
    return fake


async def serve(fake: FakeGateway, tokens: list[str] | None = None) -> None:
    """Run until SIGINT or SIGTERM, saying where and with which token."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with fake:
        gc.freeze()  # start-up objects out of the collector's scans: fewer, shorter pauses
        print(f"listening on {fake.url}", flush=True)
        if tokens:
            print(f"it accepts the token {tokens[0]!r}", file=sys.stderr, flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """``python -m smsbridge.testing``."""
    parser = argparse.ArgumentParser(prog="python -m smsbridge.testing")
    add_fake_arguments(parser)
    args = parser.parse_args(argv)
    asyncio.run(serve(build(args), args.token or ["test-token"]))
