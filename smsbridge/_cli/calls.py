"""``smsbridge status | balance | senders | templates | journal``: the calls a gateway offers
(its declaration says which), and what a campaign journal holds."""

from __future__ import annotations

import argparse
from typing import Any

import msgspec

from .._campaign import Journal
from .._gateways import spec
from .args import UsageError
from .outcomes import OutcomeFile, export
from .output import counts_table, json_line, line
from .send import make_client

__all__ = ["call_command", "journal_command"]


async def call_command(args: argparse.Namespace) -> int:
    """One call of the gateway's client, its answer printed."""
    declaration = spec(args.provider)
    call = args.command
    if call not in declaration.calls:
        raise UsageError(f"{declaration.title} has no {call} call")
    client = make_client(declaration, args)
    async with client:
        method = getattr(client, call)
        if call == "status" and not all(i.strip() for i in args.ids):
            raise UsageError("status: a message id is empty")
        result: Any = await (method(args.ids) if call == "status" else method())
    if args.json:
        json_line(result)
    elif call == "status":
        for state in result:
            extra = f"  ({state.error})" if state.error else ""
            line(f"{state.message_id}  {state.state.value}  {state.raw}{extra}")
    elif call == "balance":
        line(f"{result.money} {result.currency}")
        for package in result.packages:
            count = "unlimited" if package.count is None else f"{package.count:,}"
            line(f"  {package.channel} {package.area}: {count}")
    elif call == "templates":
        for template in result:
            line(
                f"{template.id}  {template.name or ''}  ({template.parameters} parameters)  "
                f"{template.text or ''}"
            )
    else:
        for name in result:
            line(name)
    return 0


def journal_command(args: argparse.Namespace) -> int:
    """What a journal holds."""
    if args.outcomes is not None:
        OutcomeFile.check(args.outcomes, [args.file])
    journal = Journal(args.file, create=False)
    try:
        summary = journal.summary()
        by_gateway = journal.by_gateway()
        exported = export(journal.outcomes(), args.outcomes) if args.outcomes else None
    finally:
        journal.close()
    if args.json:
        json_line({**msgspec.to_builtins(summary), "by_gateway": by_gateway})
        return 0
    line(f"Campaign: {summary.description}")
    counts_table(summary.counts, summary.left, journal=True)
    if not summary.left:  # nothing left, or not known: said all the same
        line(f"  {'left':<11}{'?' if summary.left is None else 0:>10}")
    if len(by_gateway) > 1:  # a routed campaign
        for name, per in by_gateway.items():
            line(
                f"  {name}: {per.accepted:,} accepted, {per.failed:,} failed, "
                f"{per.uncertain:,} uncertain in {per.requests:,} requests"
            )
    line(f"  runs: {summary.runs}; batches in flight when a run died: {summary.open_intents}")
    if exported is not None:
        line(f"  {exported:,} outcomes written to {args.outcomes}")
    return 0
