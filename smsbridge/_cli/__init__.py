"""The ``smsbridge`` command: campaigns from the shell, resumable through a journal.

Exit status: 0 when every recipient has an outcome and none is ``failed`` or ``uncertain``;
1 otherwise (including a campaign stopped before its end, or a gateway that refused the
account); 2 for usage and configuration errors, and a gateway that cannot be reached as
configured, with one line on stderr.

Rooms: ``args`` (the arguments, from the registry), ``send`` (a campaign, its dry run),
``calls`` (status, balance, senders, templates, journal), ``inputs`` (the recipients'
file), ``output``, ``progress``, ``demo``.
"""

from __future__ import annotations

import sys

import anyio

from .._core.errors import (
    ConfigurationError,
    ConnectError,
    InvalidInputError,
    SmsBridgeError,
)
from .args import UsageError, parser
from .calls import call_command, journal_command
from .send import send_command

__all__ = ["entry_point", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        args = parser().parse_args(argv)
        if args.command == "journal":
            return journal_command(args)
        if args.command == "fake-gateway":
            from ..testing.serve import build, serve

            anyio.run(serve, build(args), args.token or ["test-token"])
            return 0
        if args.command == "demo":
            from .demo import run_demo

            report = anyio.run(run_demo, args.recipients, args.rate)
            return 0 if report.failed == report.uncertain == 0 else 1
        command = send_command if args.command == "send" else call_command
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
    status = error.status
    wrong_url = status is not None and (status in (404, 405) or 300 <= status < 400)
    return isinstance(error, ConnectError) or (
        error.account_wide and not error.maybe_processed and wrong_url
    )


def entry_point() -> None:
    """The console script."""
    sys.exit(main())
