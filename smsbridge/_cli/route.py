"""``smsbridge send route``: one campaign over several gateways by the numbers' countries,
failing over per recipient only where the message surely did not go (see :class:`Router`)."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from typing import Any

import anyio

from .._core.client import Client, InsecureTransportWarning
from .._core.errors import ConfigurationError
from .._core.gateway import Message
from .._core.limiter import DEFAULT_MARGIN
from .._core.models import Outcome
from .._gateways import GATEWAYS, spec
from .._router import RoutedReport, Router
from .args import UsageError
from .inputs import Recipients
from .interrupt import stopping_on_sigint
from .outcomes import OutcomeFile
from .output import counts_table, duration, json_line, line
from .progress import Progress

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
        gateways = tuple(n.strip() for n in names.split(",") if n.strip())
        if not region.strip() or not gateways:
            raise UsageError(f"--route {text!r}: give REGION=GATEWAY[,GATEWAY...]")
        for name in gateways:
            if name not in GATEWAYS:
                raise UsageError(f"--route {text!r}: no gateway {name!r}")
        key = region.strip().upper()
        if key in routes:
            raise UsageError(f"--route {text!r}: {key} has a route already")
        routes[key] = gateways
    return routes


def _clients(
    routes: dict[str, tuple[str, ...]], explicit: bool, make: Any
) -> tuple[dict[str, Client[Any]], dict[str, str]]:
    """One client per gateway named, and the gateways left out with why: without
    ``--route``, a gateway with no credentials in the environment leaves the routes (said on
    stderr); with ``--route`` it is an error."""
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
                sys.stderr.write(f"route: {name} left out ({e})\n")
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
    if args.journal is not None:
        raise UsageError(
            "--journal is not supported with route yet: a resume cannot yet tell "
            "which gateway a recipient in flight was on"
        )
    if args.dry_run and args.outcomes is not None:
        raise UsageError("--outcomes records a send; a dry run sends nothing")
    explicit = bool(args.route)
    wanted = _routes(args.route) if explicit else dict(DEFAULT_ROUTES)
    message = _message(args, recipients.personalised)
    if message.kind == "text":
        recipients.mode = "phones"
    _, total = recipients.scan()
    if args.dry_run:  # a plan needs no account: placeholders, as for one gateway
        plain = make
        make = lambda d: plain(d, **dict.fromkeys(d.credentials[0], "dry-run"))  # noqa: E731
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
    stop = anyio.Event()
    outcomes = None
    if args.outcomes is not None:
        outcomes = OutcomeFile(args.outcomes, keep_apart=[args.to_file], on_error=stop.set)
    async with contextlib.AsyncExitStack() as stack:
        with warnings.catch_warnings():
            if args.dry_run:  # nothing will travel: no warning about how it would
                warnings.simplefilter("ignore", InsecureTransportWarning)
            for client in clients.values():
                await stack.enter_async_context(client)
        router = Router(routes, unavailable=unavailable)
        entries = (entry for _, entry in recipients.rows())
        if args.dry_run:
            report = await router.plan(message, to=entries)
            return _planned(args, report, total)
        chatty = not (args.json or args.quiet)
        progress = Progress.create(total, 0, enabled=chatty)

        def note(outcome: Outcome) -> None:
            progress.advance(1)
            if outcomes is not None:
                outcomes.write(outcome)

        with stopping_on_sigint(stop), progress, outcomes or contextlib.nullcontext():
            report = await router.send_message(
                message, to=entries, on_outcome=note, keep="none", stop=stop
            )
    _summary(args, report, routes)
    problem = outcomes.problem() if outcomes is not None else None
    if problem is not None:
        sys.stderr.write(f"smsbridge: {problem}; the send stopped\n")
    return 0 if report.ok and problem is None else 1


def _summary(args: argparse.Namespace, report: RoutedReport, routes: dict[str, Any]) -> None:
    if args.json:
        counts: dict[str, Any] = {
            name: getattr(report, name)
            for name in ("accepted", "rejected", "suppressed", "failed", "uncertain", "requests")
        }
        counts["by_gateway"] = report.by_gateway
        json_line(counts)
        return
    counts_table(report.counts())
    if args.quiet:
        return
    for name, per in sorted(report.by_gateway.items()):
        line(
            f"  {name}: {per.accepted:,} accepted, {per.rejected:,} rejected, "
            f"{per.suppressed:,} suppressed, {per.failed:,} failed, {per.uncertain:,} uncertain "
            f"in {per.requests:,} requests"
        )
    if report.moved:
        line(f"  {report.moved:,} recipients went on to the next gateway of their route")
    for name, error in sorted(report.errors.items()):
        line(f"Stopped on {name}: {error}")
    shown = ", ".join(f"{r}={'+'.join(c.spec.name for c in cs)}" for r, cs in routes.items())
    line(f"Routes: {shown}")


def _planned(args: argparse.Namespace, report: RoutedReport, total: int) -> int:
    rate = args.rate or 9
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
            f"{duration(per['eta_seconds'])} at {rate}/s"
        )
    return 0


def _rejected_by(report: RoutedReport) -> int:
    return sum(per.rejected for per in report.by_gateway.values())
