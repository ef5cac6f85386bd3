"""The ``smsbridge`` command: campaigns from the shell, resumable through a journal.

Exit status: 0 when every recipient has an outcome and none is ``failed`` or ``uncertain``;
1 otherwise (including a campaign stopped before its end); 2 for usage and configuration
errors, with one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import anyio
import anyio.to_thread
import msgspec

from .. import __version__
from .._core.client import Client
from .._core.errors import (
    ConfigurationError,
    ConnectError,
    InvalidInputError,
    SmsBridgeError,
)
from .._core.gateway import Batch, ChunkPacker, Packer, UniquePhonePacker
from .._core.models import Counts, Report
from .._core.phones import InvalidPhone, PhoneRules
from .._core.segments import sms_segments
from .._smsclub.client import SmsClub
from .._smsplus.adapter import DEFAULT_BATCH as SMSPLUS_BATCH
from .._smsplus.client import SmsPlus
from .._webcom.client import Webcom
from .campaign import run_campaign, to_thread
from .inputs import Mode, Recipients
from .journal import Campaign, Journal
from .progress import Progress

__all__ = ["main"]


class UsageError(Exception):
    """A usage or configuration problem: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass(frozen=True)
class Provider:
    """What the command needs to know of a gateway."""

    name: str
    make: Callable[..., Client[Any]]
    phones: Callable[[], PhoneRules]
    batch_size: int
    retry_safe: bool


PROVIDERS = {
    "smsclub": Provider("smsclub", SmsClub, lambda: PhoneRules("UA"), 100, False),
    "smsplus": Provider(
        "smsplus", SmsPlus, lambda: PhoneRules("AZ", countries=["AZ"]), SMSPLUS_BATCH, False
    ),
    "webcom": Provider("webcom", Webcom, lambda: PhoneRules("RU"), 100, True),
}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def _parser() -> _Parser:
    parser = _Parser(prog="smsbridge", description="Bulk SMS from the shell.")
    parser.add_argument("--version", action="version", version=f"smsbridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    providers = sorted(PROVIDERS)

    send = commands.add_parser("send", help="send a campaign (resumable with --journal)")
    send.add_argument("provider", choices=providers)
    send.add_argument("--sender", required=True)
    what = send.add_mutually_exclusive_group()
    what.add_argument("--text", help="the text (or the default for rows without one)")
    what.add_argument("--template", type=_positive, help="SMSPlus template id")
    send.add_argument("--to", action="append", default=[], metavar="PHONE")
    send.add_argument("--to-file", type=Path, metavar="FILE", help="a CSV or a list; - reads stdin")
    send.add_argument("--phone-column", metavar="NAME", help="the header's phone column")
    send.add_argument("--text-column", metavar="NAME", help="the header's text column")
    send.add_argument("--journal", type=Path, metavar="FILE")
    send.add_argument("--rate", type=_positive, metavar="REQ_PER_S", help="requests per second")
    send.add_argument(
        "--window-ttl",
        type=_seconds,
        metavar="SECONDS",
        help="duplicate window (default 120; 0 turns it off)",
    )
    send.add_argument("--json", action="store_true", help="end with one JSON line of counts")
    send.add_argument("--dry-run", action="store_true", help="plan only; send nothing")

    status = commands.add_parser("status", help="delivery states of message ids")
    status.add_argument("provider", choices=providers)
    status.add_argument("ids", nargs="+", metavar="ID")
    status.add_argument("--json", action="store_true")
    for name, text in (("balance", "money on the account"), ("senders", "sender names")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("provider", choices=providers)
        sub.add_argument("--json", action="store_true")
    templates = commands.add_parser("templates", help="SMSPlus templates")
    templates.add_argument("provider", choices=["smsplus"])
    templates.add_argument("--json", action="store_true")

    journal = commands.add_parser("journal", help="what a campaign journal holds")
    journal.add_argument("file", type=Path)
    journal.add_argument("--json", action="store_true")

    demo = commands.add_parser("demo", help="a real send through the bundled fake gateway")
    demo.add_argument("--recipients", type=_positive, default=5_000)
    demo.add_argument("--rate", type=_positive, default=9)

    fake = commands.add_parser("fake-gateway", help="serve a fake gateway on loopback")
    fake.add_argument("provider", choices=providers)
    fake.add_argument("--port", type=int, default=8080)
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--token", action="append")
    fake.add_argument("--rate-limit", default="9")
    return parser


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _json(value: Any) -> None:
    _out(msgspec.json.encode(value).decode())


def _client(provider: Provider, args: argparse.Namespace) -> Client[Any]:
    options: dict[str, Any] = {}
    if getattr(args, "rate", None):
        options["rate"] = args.rate
    if getattr(args, "window_ttl", None) is not None:
        options["window_ttl"] = args.window_ttl
    return provider.make(**options)


# ------------------------------------------------------------------------ send


def _mode(provider: Provider, args: argparse.Namespace, recipients: Recipients) -> None:
    if provider.name == "smsplus":
        if args.template is None:
            raise UsageError("smsplus sends templates: give --template ID")
    elif args.template is not None:
        raise UsageError(f"{provider.name} sends texts: give --text, not --template")
    elif args.text is None and not recipients.personalised:
        raise UsageError("give --text (or a 'text' column in --to-file)")
    if not args.to and args.to_file is None:
        raise UsageError("no recipients: give --to PHONE or --to-file FILE")


def _campaign(
    provider: Provider, args: argparse.Namespace, digest: str, total: int, personal: bool
) -> Campaign:
    if provider.name == "smsplus":
        content = f"template {args.template}"
    elif personal:
        fallback = f" (else {args.text!r})" if args.text else ""
        content = f"texts from the file's text column{fallback}"
    else:
        content = f"text {args.text!r}"
    source = str(args.to_file) if args.to_file else "--to"
    key = hashlib.sha256(
        msgspec.json.encode([provider.name, args.sender, args.template, args.text, digest])
    ).hexdigest()
    description = (
        f"{provider.name}, sender {args.sender!r}, {content}, {total:,} recipients from "
        f"{source} (input {digest[:12]})"
    )
    return Campaign(key=key, description=description, total=total)


async def _send(args: argparse.Namespace) -> int:
    provider = PROVIDERS[args.provider]
    mode: Mode = "params" if provider.name == "smsplus" else "texts"
    recipients = Recipients(
        args.to,
        args.to_file,
        mode,
        args.text,
        phone_column=args.phone_column,
        text_column=args.text_column,
    )
    _mode(provider, args, recipients)
    if mode == "texts" and not recipients.personalised:
        recipients.mode = "phones"
    digest, total = recipients.scan()
    if args.dry_run:
        return _dry_run(provider, args, recipients, total)
    campaign = _campaign(provider, args, digest, total, recipients.personalised)
    client = _client(provider, args)

    journal: Journal | None = None
    send_key = os.urandom(16)
    recovered = 0
    if args.journal is not None:
        journal = _open_journal(args.journal)
        send_key = journal.bind(campaign, send_key)
        recovered = journal.recover(retry_safe=provider.retry_safe)
    already = journal.summary() if journal else None
    done_before = (total - already.left) if already and already.left is not None else 0

    stop = anyio.Event()
    progress = Progress.create(total, done_before, enabled=not args.json)
    if recovered and not args.json:
        verb = "sending again with the same ids" if provider.retry_safe else "marked uncertain"
        sys.stderr.write(
            f"{recovered:,} recipients were in flight when the last run stopped: {verb}\n"
        )

    def interrupted() -> None:
        if stop.is_set():
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
            return
        stop.set()
        sys.stderr.write("\nStopping after the requests in flight (Ctrl-C again to abort)...\n")

    async def send(rows: Iterator[tuple[int, Any]], options: dict[str, Any]) -> Report:
        return await _dispatch(client, args, rows, options, personal=recipients.personalised)

    loop_signals = _SigintHandler(interrupted)
    try:
        with progress:
            async with client:
                report = await run_campaign(
                    send,
                    recipients.rows,
                    client=client,
                    journal=journal,
                    send_key=send_key,
                    stop=stop,
                    progress=progress,
                    offload=to_thread(),
                )
    finally:
        loop_signals.restore()

    counts = report.counts()
    left = 0
    if journal is not None:
        summary = journal.summary()
        counts, left = summary.counts, summary.left or 0
        journal.close()
    elif report.stopped:
        left = total - report.total
    _summary(campaign, counts, report, left, args, stop.is_set())
    complete = left == 0 and not counts.failed and not counts.uncertain
    return 0 if complete and report.error is None else 1


def _open_journal(path: Path) -> Journal:
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"cannot keep a journal at {path}: no folder {folder}")
    if not path.exists() and not os.access(folder, os.W_OK):
        raise UsageError(f"cannot keep a journal at {path}: {folder} is not writable")
    try:
        return Journal(path)
    except OSError as e:
        raise UsageError(f"cannot keep a journal at {path}: {e.strerror or e}") from None


async def _dispatch(
    client: Client[Any],
    args: argparse.Namespace,
    source: Iterator[tuple[int, Any]],
    options: dict[str, Any],
    *,
    personal: bool,
) -> Report:
    entries: Any = source  # (index, entry) pairs: the send methods take them with indexed=True
    if isinstance(client, SmsPlus):
        return await client.send_template(args.template, sender=args.sender, to=entries, **options)
    if isinstance(client, SmsClub | Webcom):
        if personal:
            return await client.send_personal(entries, sender=args.sender, **options)
        return await client.send(args.text, to=entries, sender=args.sender, **options)
    raise ConfigurationError(f"no send for {type(client).__name__}")


def _summary(
    campaign: Campaign,
    counts: Counts,
    report: Report,
    left: int,
    args: argparse.Namespace,
    interrupted: bool,
) -> None:
    if args.json:
        _json(counts)
        return
    _out(f"Campaign: {campaign.description}")
    for name in ("accepted", "rejected", "suppressed", "failed", "uncertain", "requests"):
        _out(f"  {name:<11}{getattr(counts, name):>10,}")
    if left:
        _out(f"  {'left':<11}{left:>10,}")
    rate = report.requests / report.elapsed if report.elapsed else 0.0
    _out(
        f"This run: {report.total:,} recipients, {report.requests:,} requests in "
        f"{report.elapsed:.1f} s ({rate:.1f} requests/s)"
    )
    if report.error is not None:
        _out(f"Stopped by the gateway: {report.error}")
    if args.journal is not None and (left or interrupted or counts.failed):
        _out(f"Resume with the same command; the journal {args.journal} knows where it stopped.")


def _dry_run(
    provider: Provider, args: argparse.Namespace, recipients: Recipients, total: int
) -> int:
    rules = provider.phones()
    seen: set[int] = set()
    invalid: list[tuple[int, str, str]] = []
    duplicates = valid = 0
    segments_total = segments_max = 0
    encodings: dict[str, int] = {}
    # the gateways' own packers, so the count of requests is the one a send would make
    packer: Packer = (
        UniquePhonePacker(provider.batch_size)
        if provider.name == "smsplus"
        else ChunkPacker(provider.batch_size)
    )
    requests = 0
    for index, entry in recipients.rows():
        raw, text, params = (
            (entry, args.text, ())
            if isinstance(entry, str)
            else (
                (entry[0], entry[1], ())
                if recipients.mode == "texts"
                else (entry[0], None, entry[1])
            )
        )
        try:
            phone = rules.normalise(raw)
        except InvalidPhone as e:
            invalid.append((index, str(raw), str(e)))
            continue
        key = hash((phone, text, tuple(params)))
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        valid += 1
        if text:
            cost = sms_segments(text)
            segments_total += cost.segments
            segments_max = max(segments_max, cost.segments)
            encodings[cost.encoding] = encodings.get(cost.encoding, 0) + 1
        requests += len(packer.pack(Batch([index], [phone], None, [tuple(params)])))
    requests += len(packer.flush())
    rate = args.rate or 9
    eta = requests / (rate / 1.015) if requests else 0.0
    plan = {
        "recipients": total,
        "invalid": len(invalid),
        "duplicates": duplicates,
        "to_send": valid,
        "requests": requests,
        "sms_segments": segments_total,
        "max_segments_per_message": segments_max,
        "encodings": encodings,
        "eta_seconds": round(eta, 1),
    }
    if args.json:
        _json(plan)
        return 0
    _out(f"Dry run: {provider.name}, sender {args.sender!r}; nothing will be sent")
    _out(f"  recipients        {total:>10,}")
    _out(f"  invalid numbers   {len(invalid):>10,}")
    for index, raw, reason in invalid[:10]:
        _out(f"    #{index} {raw!r}: {reason}")
    _out(f"  duplicates        {duplicates:>10,}")
    _out(f"  to send           {valid:>10,}")
    _out(f"  requests          {requests:>10,}")
    if encodings:
        kinds = ", ".join(f"{n:,} {e}" for e, n in sorted(encodings.items()))
        most = f"at most {segments_max} per message"
        _out(f"  SMS segments      {segments_total:>10,}   ({kinds}; {most})")
    elif provider.name == "smsplus":
        _out("  SMS segments      depends on the template's text (smsbridge templates smsplus)")
    _out(f"  ETA at {rate}/s       {_duration(eta):>10}")
    return 0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(math.ceil(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class _SigintHandler:
    """Ctrl-C sets a flag through the event loop instead of raising."""

    def __init__(self, handler: Callable[[], None]) -> None:
        import asyncio

        self._loop = asyncio.get_running_loop()
        self._loop.add_signal_handler(signal.SIGINT, handler)

    def restore(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.remove_signal_handler(signal.SIGINT)


# ------------------------------------------------------------------------ other commands


async def _status(args: argparse.Namespace) -> int:
    client = _client(PROVIDERS[args.provider], args)
    if not isinstance(client, SmsClub | Webcom):
        raise UsageError(f"{args.provider} has no status call")
    async with client:
        states = await client.status(args.ids)
    if args.json:
        _json(states)
    for state in states if not args.json else ():
        extra = f"  ({state.error})" if state.error else ""
        _out(f"{state.message_id}  {state.state.value}  {state.raw}{extra}")
    return 0


async def _balance(args: argparse.Namespace) -> int:
    client = _client(PROVIDERS[args.provider], args)
    if not isinstance(client, SmsClub | Webcom):
        raise UsageError(f"{args.provider} has no balance call")
    async with client:
        balance = await client.balance()
    if args.json:
        _json(balance)
        return 0
    _out(f"{balance.money} {balance.currency}")
    for package in balance.packages:
        count = "unlimited" if package.count is None else f"{package.count:,}"
        _out(f"  {package.channel} {package.area}: {count}")
    return 0


async def _senders(args: argparse.Namespace) -> int:
    client = _client(PROVIDERS[args.provider], args)
    if not isinstance(client, SmsClub):
        raise UsageError(f"{args.provider} has no sender-name call")
    async with client:
        names = await client.senders()
    if args.json:
        _json(names)
    else:
        for name in names:
            _out(name)
    return 0


async def _templates(args: argparse.Namespace) -> int:
    client = _client(PROVIDERS["smsplus"], args)
    assert isinstance(client, SmsPlus)
    async with client:
        found = await client.templates()
    if args.json:
        _json(found)
    else:
        for template in found:
            _out(
                f"{template.id}  {template.name or ''}  ({template.parameters} parameters)  "
                f"{template.text or ''}"
            )
    return 0


def _journal(args: argparse.Namespace) -> int:
    journal = Journal(args.file, create=False)
    try:
        summary = journal.summary()
    finally:
        journal.close()
    if args.json:
        _json(summary)
        return 0
    _out(f"Campaign: {summary.description}")
    for name in ("accepted", "rejected", "suppressed", "failed", "uncertain", "requests"):
        _out(f"  {name:<11}{getattr(summary.counts, name):>10,}")
    _out(f"  {'left':<11}{summary.left if summary.left is not None else '?':>10}")
    _out(f"  runs: {summary.runs}; batches in flight when a run died: {summary.open_intents}")
    return 0


def _fake_gateway(args: argparse.Namespace) -> int:
    from ..testing.__main__ import main as serve

    argv = [args.provider, "--host", args.host, "--port", str(args.port)]
    for token in args.token or []:
        argv += ["--token", token]
    argv += ["--rate-limit", args.rate_limit]
    serve(argv)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        if args.command == "journal":
            return _journal(args)
        if args.command == "fake-gateway":
            return _fake_gateway(args)
        if args.command == "demo":
            from .demo import run_demo

            report = anyio.run(run_demo, args.recipients, args.rate)
            return 0 if report.failed == report.uncertain == 0 else 1
        command = {
            "send": _send,
            "status": _status,
            "balance": _balance,
            "senders": _senders,
            "templates": _templates,
        }[args.command]
        return anyio.run(command, args)
    except (UsageError, ConfigurationError, InvalidInputError) as e:
        sys.stderr.write(f"smsbridge: {e}\n")
        return 2
    except SmsBridgeError as e:
        sys.stderr.write(f"smsbridge: {e}\n")
        return 2 if _unreachable(e) else 1


def _unreachable(error: SmsBridgeError) -> bool:
    """The gateway was never reached as configured (nothing listens, a wrong base URL): a
    setup problem, exit 2, where a gateway that refused the account is exit 1."""
    return isinstance(error, ConnectError) or (
        error.account_wide
        and not error.maybe_processed
        and error.status is not None
        and (error.status in (404, 405) or 300 <= error.status < 400)
    )


def entry_point() -> None:
    """The console script."""
    sys.exit(main())
