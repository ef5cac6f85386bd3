"""The ``smsbridge`` command: campaigns from the shell, resumable through a journal.

Exit status: 0 when every recipient has an outcome and none is ``failed`` or ``uncertain``;
1 otherwise (including a campaign stopped before its end, a gateway that refused the
account, or one a send could not reach: its recipients end ``failed``, the reason in the
summary); 2 for usage and configuration errors, and a call (``status``, ``balance``...) to a
gateway that cannot be reached as configured, with one line on stderr.

Rooms: ``args`` (the arguments, from the registry), ``send`` (a campaign, its dry run),
``route`` (a campaign over several gateways), ``calls`` (status, balance, senders,
templates, journal), ``inputs`` (the recipients' file), ``outcomes`` (the per-recipient
file), ``interrupt`` (Ctrl-C), ``output``, ``progress``, ``demo``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sqlite3
import sys
from collections.abc import Iterator

import anyio

from .._core.errors import (
    ConfigurationError,
    ConnectError,
    InvalidInputError,
    SmsBridgeError,
)
from .args import UsageError, parser
from .calls import call_command, journal_command
from .output import OutputError
from .send import send_command

__all__ = ["entry_point", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args: argparse.Namespace | None = None
    try:
        args = parser().parse_args(argv)
        if args.command == "journal":
            return journal_command(args)
        if args.command == "fake-gateway":
            from ..testing.serve import build, serve

            try:
                anyio.run(serve, build(args), args.token or ["test-token"])
            except OSError as e:  # the port taken, the host not this machine's
                sys.stderr.write(f"smsbridge: cannot serve on {args.host}:{args.port}: {e}\n")
                return 1
            return 0
        if args.command == "demo":
            from .demo import run_demo

            report = anyio.run(run_demo, args.recipients, args.rate)
            return 0 if report.failed == report.uncertain == 0 else 1
        command = send_command if args.command == "send" else call_command
        with _voice(args):
            return anyio.run(command, args)
    except (UsageError, ConfigurationError, InvalidInputError) as e:
        sys.stderr.write(f"smsbridge: {e}\n")
        return 2
    except OutputError as e:  # what was sent is sent: the summary alone is lost
        sys.stdout = None  # nothing more to flush into it at exit
        sys.stderr.write(f"smsbridge: {e}\n")
        return 1
    except SmsBridgeError as e:
        sys.stderr.write(f"smsbridge: {e}\n")
        return 2 if _unreachable(e) else 1
    except sqlite3.DatabaseError as e:
        journal = getattr(args, "journal", None) or getattr(args, "file", None)
        if isinstance(e, sqlite3.OperationalError):  # a disk full or failing, a lock held
            # long by another program, mid-run: what went is in the journal up to there
            sys.stderr.write(f"smsbridge: the journal {journal} could not be used: {e}\n")
            return 1
        # damaged past its first page (one damaged there is not a journal, when opened)
        sys.stderr.write(f"smsbridge: the journal {journal} is damaged: {e}\n")
        return 2


@contextlib.contextmanager
def _voice(args: argparse.Namespace) -> Iterator[None]:
    """The library's log while the command runs: with ``-v`` on stderr, a line per request
    and every retry; otherwise only the pauses a person would take for a hang (``NOTICE``:
    Redis out of reach, a dead run's hold lapsing), and with ``-q`` nothing (the command's
    own lines tell what happened, and an error is one line, not the retries that led to
    it)."""
    logger = logging.getLogger("smsbridge")
    saved = logger.level, logger.propagate, logger.disabled
    logger.disabled = False  # a host's logging.config may have switched it off
    handler = logging.StreamHandler(sys.stderr)
    if args.verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.setLevel(logging.DEBUG)
    elif not getattr(args, "quiet", False):
        handler.setFormatter(logging.Formatter("smsbridge: %(message)s"))
        handler.addFilter(lambda record: getattr(record, "notice", False))
        logger.setLevel(logging.WARNING)
    else:
        logger.setLevel(logging.CRITICAL + 1)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate, logger.disabled = saved[1], saved[2]


def _unreachable(error: SmsBridgeError) -> bool:
    """The gateway was never reached as configured (nothing listens, a wrong base URL): a
    setup problem, exit 2, where a gateway that refused the account is exit 1."""
    status = error.status
    wrong_url = status is not None and (status in (404, 405) or 300 <= status < 400)
    return isinstance(error, ConnectError) or (
        error.account_wide and not error.maybe_processed and wrong_url
    )


def entry_point() -> None:
    """The console script."""
    sys.exit(main())
