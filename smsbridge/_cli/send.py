"""``smsbridge send``: a campaign from the shell, for any gateway of the registry, resumable
through its journal; ``--dry-run`` plans it on the very same path and sends nothing."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import anyio

from .._campaign import FINAL, Campaign, Journal, recover_in_flight, run_campaign, to_thread
from .._core.client import Client
from .._core.errors import GatewayError, SmsBridgeError, StateBackendError
from .._core.gateway import GatewaySpec, Message
from .._core.limiter import DEFAULT_MARGIN
from .._core.models import Outcome, Report, Status
from .._core.segments import sms_segments
from .._gateways import client_class, spec
from .args import UsageError, check_to, said_empty
from .campaign import campaign_of, open_journal
from .dry import dry_client
from .inputs import Mode, Recipients
from .interrupt import stopping_on_sigint
from .outcomes import OutcomeFile
from .output import Reasons, counts_table, duration, json_line, line
from .progress import Progress
from .template import fit_parameters

__all__ = ["make_client", "send_command", "stopped_by"]


def make_client(declaration: GatewaySpec, args: argparse.Namespace, **extra: Any) -> Client[Any]:
    """The gateway's client, credentials from the environment, settings from the options."""
    options: dict[str, Any] = dict(extra)
    if getattr(args, "rate", None):
        options["rate"] = args.rate
    if getattr(args, "window_ttl", None) is not None:
        options["window_ttl"] = args.window_ttl
    client: Client[Any] = client_class(declaration)(**options)
    return client


def _message(declaration: GatewaySpec, args: argparse.Namespace, personal: bool) -> Message:
    """The message the options describe, if the gateway can carry it."""
    kinds, title = declaration.messages, declaration.title
    if args.template is not None:
        if "template" not in kinds:
            raise UsageError(f"{title} sends texts: give --text, not --template")
        return Message(sender=args.sender, template=args.template)
    if "text" not in kinds and "personal" not in kinds:
        raise UsageError(f"{title} sends templates: give --template ID")
    if personal:
        if "personal" not in kinds:
            raise UsageError(f"{title} sends one text to all: the file's text column cannot go")
        return Message(sender=args.sender)
    if args.text is None:
        raise UsageError("give --text (or a 'text' column in --to-file)")
    return Message(sender=args.sender, text=args.text)


def _recipients(args: argparse.Namespace, mode: Mode) -> Recipients:
    if not args.to and args.to_file is None:
        raise UsageError("no recipients: give --to PHONE or --to-file FILE")
    if mode == "params" and args.text_column is not None:  # a send or a route
        raise UsageError("--text-column names a text; a template's rows bring param1..param3")
    return Recipients(
        args.to,
        args.to_file,
        mode,
        args.text,
        phone_column=args.phone_column,
        text_column=args.text_column,
    )


async def send_command(args: argparse.Namespace) -> int:
    """Run (or plan) the campaign the options describe."""
    if args.outcomes is not None:
        OutcomeFile.check(args.outcomes, [args.to_file, args.journal])
    if args.provider == "route":
        from .route import route_command

        recipients = _recipients(args, "params" if args.template is not None else "texts")
        try:
            return await route_command(
                args,
                recipients,
                lambda declaration, **extra: make_client(declaration, args, **extra),
            )
        finally:
            recipients.close()
    if args.route:
        raise UsageError("--route goes with 'send route'")
    declaration = spec(args.provider)
    kinds = declaration.messages
    if args.template is not None or kinds == {"template"}:
        mode: Mode = "params"
    else:
        mode = "texts"
    recipients = _recipients(args, mode)
    try:
        message = _message(declaration, args, recipients.personalised)
        check_to(
            args,
            personalised=recipients.personalised,
            parametrised=recipients.parametrised,
        )
        if message.kind == "text":
            recipients.mode = "phones"
        digest, total = recipients.scan()
        if not total:
            said_empty(args)
        if args.dry_run:
            if args.outcomes is not None:
                raise UsageError("--outcomes records a send; a dry run sends nothing")
            return await _plan(declaration, args, message, recipients, total)
        return await _run(declaration, args, message, recipients, digest, total)
    finally:
        recipients.close()


async def _run(
    declaration: GatewaySpec,
    args: argparse.Namespace,
    message: Message,
    recipients: Recipients,
    digest: str,
    total: int,
) -> int:
    campaign = campaign_of(declaration.name, args, message, digest, total, recipients.reading())
    client = make_client(declaration, args)
    journal = open_journal(args.journal) if args.journal is not None else None
    try:
        return await _journaled(declaration, args, message, recipients, campaign, client, journal)
    finally:  # also where the journal refused this campaign: its hold on the file goes
        if journal is not None:
            journal.close()


async def _journaled(
    declaration: GatewaySpec,
    args: argparse.Namespace,
    message: Message,
    recipients: Recipients,
    campaign: Campaign,
    client: Client[Any],
    journal: Journal | None,
) -> int:
    total = campaign.total
    send_key = os.urandom(16)
    recovered = again = 0
    if journal is not None:
        send_key = journal.bind(campaign, send_key)
        recovered, again = recover_in_flight(journal, client)
    stop = anyio.Event()
    outcomes = None
    if args.outcomes is not None:
        outcomes = OutcomeFile(
            args.outcomes, keep_apart=[args.to_file, args.journal], on_error=stop.set
        )
    if outcomes is not None and journal is not None:
        for earlier in journal.outcomes(FINAL):  # what earlier runs settled, then this run's
            outcomes.write(earlier)
    already = journal.summary() if journal else None
    done_before = (total - already.left) if already and already.left is not None else 0
    chatty = not (args.json or args.quiet)
    progress = Progress.create(total, done_before, enabled=chatty)
    if recovered and chatty:
        if declaration.retry_safe:
            verb = "sending again with the same ids"
        elif again == recovered:
            verb = f"sending again within {declaration.title}'s duplicate guard"
        elif again:
            verb = f"{again:,} sent again within the duplicate guard, the rest uncertain"
        else:
            verb = "marked uncertain (too long ago to ask the gateway again)"
        sys.stderr.write(
            f"{recovered:,} recipients were in flight when the last run stopped: {verb}\n"
        )

    async def send(rows: Iterator[tuple[int, Any]], options: dict[str, Any]) -> Report:
        if outcomes is not None:
            options["on_outcome"] = outcomes.write
        return await client.send_message(message, to=rows, **options)

    reasons = Reasons()
    with stopping_on_sigint(stop), progress, outcomes or contextlib.nullcontext():
        async with client:
            await fit_parameters([client], message, recipients)
            report = await run_campaign(
                send,
                recipients.rows,
                client=client,
                journal=journal,
                send_key=send_key,
                stop=stop,
                offload=to_thread(),
                done=progress.advance,
                told=reasons.note,
            )
    counts = report.counts()
    left = 0
    if journal is not None:
        summary = journal.summary()
        counts, left = summary.counts, summary.left or 0
    elif report.stopped:
        left = total - report.total
    if args.json:
        json_line(counts)
    elif args.quiet:
        counts_table(counts, left, journal=journal is not None)
    else:
        line(f"Campaign: {campaign.description}")
        counts_table(counts, left, journal=journal is not None)
        rate = report.requests / report.elapsed if report.elapsed else 0.0
        line(
            f"This run: {report.total:,} recipients, {report.requests:,} requests in "
            f"{report.elapsed:.1f} s ({rate:.1f} requests/s)"
        )
        reasons.show()
        if report.error is not None:
            line(stopped_by(report.error))
        if args.journal is not None and (left or stop.is_set() or counts.failed):
            line(f"Resume with the same command; the journal {args.journal} knows where.")
    complete = left == 0 and not counts.failed and not counts.uncertain
    problem = outcomes.problem() if outcomes is not None else None
    if problem is not None:
        sys.stderr.write(f"smsbridge: {problem}; the send stopped\n")
    return 0 if complete and report.error is None and problem is None else 1


async def _plan(
    declaration: GatewaySpec,
    args: argparse.Namespace,
    message: Message,
    recipients: Recipients,
    total: int,
) -> int:
    """The dry run: the engine's own path with nothing sent (no credentials needed)."""
    client, offline = dry_client(declaration, args, make_client)
    invalid: list[Outcome] = []
    texts: dict[int, str] = {}
    segments = {"total": 0, "max": 0}
    encodings: dict[str, int] = {}

    def note(outcome: Outcome) -> None:
        if outcome.status is Status.REJECTED and len(invalid) < 10:
            invalid.append(outcome)
        text = message.text if message.kind == "text" else texts.pop(outcome.index, None)
        if outcome.status is Status.ACCEPTED and text:
            cost = sms_segments(text)
            segments["total"] += cost.segments
            segments["max"] = max(segments["max"], cost.segments)
            encodings[cost.encoding] = encodings.get(cost.encoding, 0) + 1

    def rows() -> Iterator[tuple[int, Any]]:
        for index, entry in recipients.rows():
            if message.kind == "personal":
                texts[index] = entry[1]
            yield index, entry

    async with client:
        unchecked = (
            "no credentials to look the template up"
            if offline
            else await fit_parameters([client], message, recipients)
        )
        report = await client.plan(message, to=rows(), indexed=True, on_outcome=note, keep="none")
    rate = args.rate or 9
    eta = report.requests / (rate / (1 + DEFAULT_MARGIN)) if report.requests else 0.0
    plan = {
        "recipients": total,
        "invalid": report.rejected,
        "duplicates": report.suppressed,
        "to_send": report.accepted,
        "requests": report.requests,
        "sms_segments": segments["total"],
        "max_segments_per_message": segments["max"],
        "encodings": encodings,
        "eta_seconds": round(eta, 1),
    }
    if args.json:
        json_line(plan)
        return 0
    line(f"Dry run: {declaration.name}, sender {args.sender!r}; nothing will be sent")
    line(f"  recipients        {total:>10,}")
    line(f"  invalid numbers   {report.rejected:>10,}")
    for outcome in invalid:
        line(f"    #{outcome.index} {outcome.phone!r}: {outcome.reason}")
    line(f"  duplicates        {report.suppressed:>10,}")
    line(f"  to send           {report.accepted:>10,}")
    line(f"  requests          {report.requests:>10,}")
    if encodings:
        kinds = ", ".join(f"{n:,} {e}" for e, n in sorted(encodings.items()))
        most = f"at most {segments['max']} per message"
        line(f"  SMS segments      {segments['total']:>10,}   ({kinds}; {most})")
    elif message.kind == "template":
        hint = f"smsbridge templates {declaration.name}"
        line(f"  SMS segments      depends on the template's text ({hint})")
    if unchecked is not None and message.kind == "template":
        line(f"  parameters        not checked: {unchecked}")
    line(f"  ETA at {rate}/s       {duration(eta):>10}")
    return 0


def stopped_by(error: SmsBridgeError) -> str:
    """The summary's line for what stopped a send: the gateway, or what the client relies on
    (the shared state, a send of the same key elsewhere)."""
    if isinstance(error, GatewayError):
        return f"Stopped by the gateway: {error}"
    if isinstance(error, StateBackendError):
        return f"Stopped: the shared state failed: {error}"
    return f"Stopped: {error}"
