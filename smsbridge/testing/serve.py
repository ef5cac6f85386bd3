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


def _port(text: str) -> int:
    if not (text.isdigit() and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, not {text!r}")
    return int(text)


def _rate(text: str) -> int | None:
    if text == "none":
        return None
    if not (text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"a positive whole number or 'none', not {text!r}")
    return int(text)


def _faults(text: str) -> Faults:
    try:
        return msgspec.json.decode(text.encode(), type=Faults)
    except msgspec.DecodeError as e:  # a ValidationError too
        raise argparse.ArgumentTypeError(f"not the JSON of Faults: {e}") from None


def _template(text: str) -> tuple[int, str]:
    number, sep, body = text.partition("=")
    if not (sep and number.isdigit()):
        raise argparse.ArgumentTypeError(f"a template is ID=TEXT, not {text!r}")
    return int(number), body


def add_fake_arguments(parser: argparse.ArgumentParser, *, port: int = 0) -> None:
    """The options of a fake gateway."""
    parser.add_argument("provider", choices=sorted(GATEWAYS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=port)
    parser.add_argument("--token", action="append", help="accepted token (repeatable)")
    parser.add_argument("--sender", action="append", help="approved sender name (repeatable)")
    parser.add_argument(
        "--rate-limit", type=_rate, default=9, help="requests per sliding second, or 'none'"
    )
    parser.add_argument("--faults", type=_faults, default=Faults(), help="Faults as JSON")
    parser.add_argument("--language", choices=["en", "ru"], default="en")
    parser.add_argument(
        "--template", type=_template, action="append", help="a template as ID=TEXT (repeatable)"
    )


def build(args: argparse.Namespace) -> FakeGateway:
    """The fake the options describe."""
    declaration = spec(args.provider)
    extra: dict[str, object] = {}
    if args.template:
        if "template" not in declaration.messages:
            raise SystemExit(f"--template: {declaration.title} sends no templates")
        extra["templates"] = dict(args.template)
    fake: FakeGateway = fake_class(declaration)(
        tokens=args.token or ["test-token"],
        senders=args.sender or ["Shop"],
        rate_limit=args.rate_limit,
        faults=args.faults,
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
