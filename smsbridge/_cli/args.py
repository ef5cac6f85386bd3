"""The command's arguments, built from the registry of gateways: a gateway's word, what it
can send and which calls it has all come from its declaration."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from .. import __version__
from .._core.limiter import MAX_LIMIT
from .._gateways import GATEWAYS
from ..testing.serve import add_fake_arguments
from .output import line

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

__all__ = ["UsageError", "check_to", "parser", "said_empty"]


class UsageError(Exception):
    """A usage or configuration problem: one line on stderr, exit status 2."""


def check_to(args: argparse.Namespace, *, personalised: bool, parametrised: bool) -> None:
    """``--to``'s numbers beside a file whose rows bring their own texts or parameters:
    they would bring none (each was rejected, "empty text" or no parameters)."""
    if not args.to:
        return
    if personalised and args.text is None:
        raise UsageError(
            "--to's numbers need --text: the file's rows bring their own texts, --to's bring none"
        )
    if parametrised:
        raise UsageError(
            "--to's numbers bring no template parameters, the file's rows do: put them in the file"
        )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        # help and the version: one that cannot be written is an error, exit 1 (argparse
        # would drop it without a word and exit 0)
        if file is sys.stdout:  # (None where it is closed)
            line(message.removesuffix("\n"))
        else:
            super()._print_message(message, file)


def rate(text: str) -> int:
    """Requests per second: a whole number from 1 to what a limiter can count."""
    value = positive(text)
    if value > MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_LIMIT:,}, got {value}")
    return value


def positive(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def seconds(text: str) -> float:
    """Zero or more seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def text(value: str) -> str:
    """Text given on the command line, which the gateways take as UTF-8: bytes the terminal
    passed that are not UTF-8 are refused here (they could never be sent)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        shown = value.encode("utf-8", "surrogateescape" if _escaped(value) else "replace")
        raise argparse.ArgumentTypeError(f"not UTF-8 text: {shown!r}") from None
    return value


def _escaped(value: str) -> bool:
    """Whether every character UTF-8 cannot carry stands for a byte the terminal gave."""
    return all("\udc80" <= c <= "\udcff" for c in value if "\ud800" <= c <= "\udfff")


def _talk(command: argparse.ArgumentParser) -> None:
    """How much the command says besides its answer."""
    talk = command.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="the summary only")
    talk.add_argument("-v", "--verbose", action="store_true", help="a line per request on stderr")


def parser() -> argparse.ArgumentParser:
    """The whole command line."""
    gateways = sorted(GATEWAYS)
    top = _Parser(prog="smsbridge", description="Bulk SMS from the shell.")
    top.add_argument("--version", action="version", version=f"smsbridge {__version__}")
    commands = top.add_subparsers(dest="command", required=True, parser_class=_Parser)

    send = commands.add_parser("send", help="send a campaign (resumable with --journal)")
    send.add_argument("provider", choices=[*gateways, "route"])
    send.add_argument(
        "--route",
        type=text,
        action="append",
        default=[],
        metavar="REGION=GATEWAY[,GATEWAY...]",
        help="with 'route': a country's gateways in order (default UA=smsclub,webcom "
        "RU=webcom AZ=smsplus)",
    )
    send.add_argument("--sender", type=text, required=True)
    what = send.add_mutually_exclusive_group()
    what.add_argument("--text", type=text, help="the text (or the default for rows without one)")
    what.add_argument("--template", type=positive, help="an approved template's id")
    send.add_argument("--to", type=text, action="append", default=[], metavar="PHONE")
    send.add_argument("--to-file", type=Path, metavar="FILE", help="a CSV or a list; - is stdin")
    send.add_argument("--phone-column", type=text, metavar="NAME", help="the header's phone column")
    send.add_argument("--text-column", type=text, metavar="NAME", help="the header's text column")
    send.add_argument("--journal", type=Path, metavar="FILE")
    send.add_argument("--rate", type=rate, metavar="REQ_PER_S", help="requests per second")
    send.add_argument(
        "--window-ttl",
        type=seconds,
        metavar="SECONDS",
        help="duplicate window (default 120; 0 turns it off)",
    )
    send.add_argument(
        "--outcomes",
        type=Path,
        metavar="FILE",
        help="one row per recipient as it ends: CSV, or JSON Lines for *.jsonl",
    )
    send.add_argument("--json", action="store_true", help="end with one JSON line of counts")
    send.add_argument("--dry-run", action="store_true", help="plan only; send nothing")
    _talk(send)

    for name, about in (
        ("status", "delivery states of message ids"),
        ("balance", "money on the account"),
        ("senders", "sender names"),
        ("templates", "approved templates"),
    ):
        call = commands.add_parser(name, help=about)
        call.add_argument("provider", choices=gateways)
        if name == "status":
            call.add_argument("ids", type=text, nargs="+", metavar="ID")
        call.add_argument("--json", action="store_true")
        _talk(call)

    journal = commands.add_parser("journal", help="what a campaign journal holds")
    journal.add_argument("file", type=Path)
    journal.add_argument("--json", action="store_true")
    journal.add_argument(
        "--outcomes", type=Path, metavar="FILE", help="export every recipient's outcome"
    )

    demo = commands.add_parser("demo", help="a real send through the bundled fake gateway")
    demo.add_argument("--recipients", type=positive, default=5_000)
    demo.add_argument("--rate", type=rate, default=9)

    fake = commands.add_parser("fake-gateway", help="serve a fake gateway on loopback")
    add_fake_arguments(fake, port=8080)
    return top


def said_empty(args: argparse.Namespace) -> None:
    """A file of no recipients (a wrong or empty export, most likely) is said, unless
    ``--quiet``; it is not an error: a scheduled campaign may have nobody to send to."""
    if args.to_file is not None and not getattr(args, "quiet", False):
        sys.stderr.write(f"smsbridge: {args.to_file} holds no recipients: nothing to send\n")
