"""``smsbridge send route``: one campaign over several gateways by the numbers' countries,
failing over per recipient only where the message surely did not go (see :class:`Router`)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from typing import Any

import anyio

from .._campaign import FINAL, Journal, recover_in_flight, run_routed_campaign, to_thread
from .._core.client import Client, InsecureTransportWarning
from .._core.errors import ConfigurationError
from .._core.gateway import GatewaySpec, Message
from .._core.limiter import DEFAULT_MARGIN
from .._core.models import Counts, Outcome
from .._core.segments import sms_segments
from .._gateways import GATEWAYS, spec
from .._router import RoutedReport, Router
from .args import UsageError, check_to, said_empty
from .campaign import campaign_of, open_journal
from .dry import dry_client
from .inputs import Recipients
from .interrupt import stopping_on_sigint
from .outcomes import OutcomeFile
from .output import Reasons, counts_table, duration, json_line, line
from .progress import Progress
from .template import fit_parameters

__all__ = ["DEFAULT_ROUTES", "route_command"]

DEFAULT_ROUTES: dict[str, tuple[str, ...]] = {
    "UA": ("smsclub", "webcom"),
    "RU": ("webcom",),
    "AZ": ("smsplus",),
}
"""The routes without ``--route``: each country's gateways, in order."""


def _routes(given: list[str]) -> dict[str, tuple[str, ...]]:
    routes: dict[str, tuple[str, ...]] = {}
    for text in given:
        region, _, names = text.partition("=")
        gateways = tuple(n.strip() for n in names.split(","))
        if not region.strip() or not all(gateways):
            raise UsageError(f"--route {text!r}: give REGION=GATEWAY[,GATEWAY...]")
        for name in gateways:
            if name not in GATEWAYS:
                raise UsageError(f"--route {text!r}: no gateway {name!r}")
        if len(set(gateways)) < len(gateways):
            raise UsageError(f"--route {text!r}: a gateway named twice")
        key = region.strip().upper()
        if key in routes:
            raise UsageError(f"--route {text!r}: {key} has a route already")
        routes[key] = gateways
    return routes


def _clients(
    routes: dict[str, tuple[str, ...]], explicit: bool, make: Any
) -> tuple[dict[str, Client[Any]], dict[str, str]]:
    """One client per gateway named, and the gateways left out with why: without
    ``--route``, a gateway with no credentials in the environment leaves the routes (the
    caller says so on stderr); with ``--route`` it is an error."""
    clients: dict[str, Client[Any]] = {}
    left_out: dict[str, str] = {}
    for names in routes.values():
        for name in names:
            if name in clients or name in left_out:
                continue
            try:
                clients[name] = make(spec(name))
            except ConfigurationError as e:
                if explicit:
                    raise
                left_out[name] = str(e)
    return clients, left_out


def _message(args: argparse.Namespace, personal: bool) -> Message:
    if args.template is not None:
        return Message(sender=args.sender, template=args.template)
    if personal:
        return Message(sender=args.sender)
    if args.text is None:
        raise UsageError("give --text or --template")
    return Message(sender=args.sender, text=args.text)


async def route_command(args: argparse.Namespace, recipients: Recipients, make: Any) -> int:
    """Run (or plan) a routed campaign."""
    if args.dry_run and args.outcomes is not None:
        raise UsageError("--outcomes records a send; a dry run sends nothing")
    if args.dry_run and args.journal is not None:
        raise UsageError("--journal records a send; a dry run sends nothing")
    explicit = bool(args.route)
    wanted = _routes(args.route) if explicit else dict(DEFAULT_ROUTES)
    message = _message(args, recipients.personalised)
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
    offline: list[str] = []  # the gateways a dry run plans without credentials
    if args.dry_run:  # a plan needs no account: as for one gateway
        plain = make

        def make(d: GatewaySpec) -> Client[Any]:
            client, blind = dry_client(d, args, lambda d, _, **o: plain(d, **o))
            if blind:
                offline.append(d.name)
            return client

    clients, left_out = _clients(wanted, explicit, make)
    routes = {
        region: [clients[n] for n in names if n in clients] for region, names in wanted.items()
    }
    unavailable = {
        region: "; ".join(f"{n}: {left_out[n]}" for n in wanted[region])
        for region, route in routes.items()
        if not route
    }
    routes = {region: route for region, route in routes.items() if route}
    if not routes:
        raise UsageError("no gateway of any route has credentials in the environment")
    journal: Journal | None = None
    send_key = os.urandom(16)
    if args.journal is not None:
        shown = " ".join(f"{r}={','.join(names)}" for r, names in sorted(wanted.items()))
        campaign = campaign_of(f"route {shown}", args, message, digest, total, recipients.reading())
        journal = open_journal(args.journal)
    try:
        if journal is not None:
            send_key = journal.bind(campaign, send_key)
            _recover(journal, clients, quiet=args.json or args.quiet)
        for name, why in left_out.items():  # said once no usage error can come
            sys.stderr.write(f"smsbridge: route: {name} left out ({why})\n")
        stop = anyio.Event()
        outcomes = None
        if args.outcomes is not None:
            outcomes = OutcomeFile(
                args.outcomes, keep_apart=[args.to_file, args.journal], on_error=stop.set
            )
            if journal is not None:
                for earlier in journal.outcomes(FINAL):  # earlier runs' outcomes, then this one's
                    outcomes.write(earlier)
    except BaseException:  # the journal refused this campaign, or the outcome file: let go
        if journal is not None:
            journal.close()
        raise
    async with contextlib.AsyncExitStack() as stack:
        if journal is not None:
            stack.callback(journal.close)
        with warnings.catch_warnings():
            if args.dry_run:  # nothing will travel: no warning about how it would
                warnings.simplefilter("ignore", InsecureTransportWarning)
            for client in clients.values():
                await stack.enter_async_context(client)
        router = Router(routes, unavailable=unavailable)
        seen = [c for name, c in clients.items() if name not in offline]
        unchecked = await fit_parameters(seen, message, recipients)
        blind = [n for n in offline if hasattr(clients.get(n), "templates")]
        if blind and message.template is not None and recipients.parametrised:
            unchecked = f"no credentials to look the template up ({', '.join(blind)})"
        entries = (entry for _, entry in recipients.rows())
        if args.dry_run:
            report = await router.plan(message, to=entries)
            return _planned(args, report, total, message, unchecked)
        chatty = not (args.json or args.quiet)
        left_before = journal.summary().left if journal is not None else None
        progress = Progress.create(
            total, total - (left_before or 0) if journal else 0, enabled=chatty
        )
        reasons = Reasons()

        def note(outcome: Outcome) -> None:
            progress.advance(1)
            reasons.outcome(outcome)
            if outcomes is not None:
                outcomes.write(outcome)

        with stopping_on_sigint(stop), progress, outcomes or contextlib.nullcontext():
            if journal is None:
                report = await router.send_message(
                    message, to=entries, on_outcome=note, keep="none", stop=stop
                )
            else:
                report = await run_routed_campaign(
                    router,
                    message,
                    recipients.rows,
                    journal=journal,
                    send_key=send_key,
                    stop=stop,
                    offload=to_thread(),
                    on_outcome=note,
                )
        whole: tuple[Counts, dict[str, Counts], int] | None = None
        if journal is not None:  # the campaign over every run
            summary = journal.summary()
            whole = summary.counts, journal.by_gateway(), summary.left or 0
    _summary(args, report, routes, whole, reasons)
    problem = outcomes.problem() if outcomes is not None else None
    if problem is not None:
        sys.stderr.write(f"smsbridge: {problem}; the send stopped\n")
    if whole is not None:
        counts, _, left = whole
        complete = not (left or counts.failed or counts.uncertain or report.stopped)
        return 0 if complete and problem is None else 1
    return 0 if report.ok and problem is None else 1


def _recover(journal: Journal, clients: dict[str, Client[Any]], *, quiet: bool) -> None:
    """Settle what a dead run left in flight, each gateway by its own rules; what was in
    flight on a gateway this run does not use is ``uncertain``."""
    recovered = again = 0
    for name, client in clients.items():
        n, m = recover_in_flight(journal, client, gateway=name)
        recovered, again = recovered + n, again + m
    n, _ = journal.recover(retry_safe=False)
    recovered += n
    if recovered and not quiet:
        sys.stderr.write(
            f"{recovered:,} recipients were in flight when the last run stopped: {again:,} go "
            f"again through the gateway they were on, {recovered - again:,} are uncertain\n"
        )


def _summary(
    args: argparse.Namespace,
    report: RoutedReport,
    routes: dict[str, Any],
    whole: tuple[Counts, dict[str, Counts], int] | None,
    reasons: Reasons,
) -> None:
    counts, by_gateway, left = (report, report.by_gateway, 0) if whole is None else whole
    if args.json:
        line_counts: dict[str, Any] = {
            name: getattr(counts, name)
            for name in ("accepted", "rejected", "suppressed", "failed", "uncertain", "requests")
        }
        line_counts["by_gateway"] = by_gateway
        if whole is not None:
            line_counts["left"] = left
        json_line(line_counts)
        return
    counts_table(counts.counts(), left, journal=whole is not None)
    if args.quiet:
        return
    for name, per in sorted(by_gateway.items()):
        line(
            f"  {name}: {per.accepted:,} accepted, {per.rejected:,} rejected, "
            f"{per.suppressed:,} suppressed, {per.failed:,} failed, {per.uncertain:,} uncertain "
            f"in {per.requests:,} requests"
        )
    if report.moved:  # this run's
        line(f"  {report.moved:,} recipients went on to the next gateway of their route")
    reasons.show()
    for name, error in sorted(report.errors.items()):
        line(f"Stopped on {name}: {error}")
    shown = ", ".join(f"{r}={'+'.join(c.spec.name for c in cs)}" for r, cs in routes.items())
    line(f"Routes: {shown}")


def _planned(
    args: argparse.Namespace,
    report: RoutedReport,
    total: int,
    message: Message,
    unchecked: str | None = None,
) -> int:
    rate = args.rate or 9
    # one text: its SMS segments per message; a template's or the file's texts vary
    each = sms_segments(message.text).segments if message.kind == "text" and message.text else None
    plan: dict[str, Any] = {
        "recipients": total,
        "rejected": report.rejected,
        "duplicates": report.suppressed,
        "to_send": report.accepted,
        "requests": report.requests,
        "by_gateway": {
            name: {
                "to_send": per.accepted,
                "rejected": per.rejected,
                "duplicates": per.suppressed,
                "requests": per.requests,
                "sms_segments": None if each is None else each * per.accepted,
                "eta_seconds": round(per.requests / (rate / (1 + DEFAULT_MARGIN)), 1),
            }
            for name, per in sorted(report.by_gateway.items())
        },
    }
    if args.json:
        json_line(plan)
        return 0
    line("Dry run, routed; nothing will be sent")
    line(f"  recipients        {total:>10,}")
    line(f"  no route, invalid {report.counts().rejected - _rejected_by(report):>10,}")
    for name, per in plan["by_gateway"].items():
        line(
            f"  {name:<17} {per['to_send']:>10,} to send in {per['requests']:,} requests "
            f"(+{per['rejected']:,} rejected, {per['duplicates']:,} duplicates), "
            + (f"{per['sms_segments']:,} SMS segments, " if each is not None else "")
            + f"{duration(per['eta_seconds'])} at {rate}/s"
        )
    if unchecked is not None:
        line(f"  parameters        not checked: {unchecked}")
    return 0


def _rejected_by(report: RoutedReport) -> int:
    return sum(per.rejected for per in report.by_gateway.values())
