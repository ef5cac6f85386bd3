"""The ``smsbridge`` command."""

from __future__ import annotations

import argparse
import sys

import anyio

from .demo import run_demo

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="smsbridge", description="Bulk SMS from the shell.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="a real send through the bundled fake gateway")
    demo.add_argument("--recipients", type=int, default=5_000)
    demo.add_argument("--rate", type=int, default=9)
    args = parser.parse_args(argv)
    if args.command == "demo":
        report = anyio.run(run_demo, args.recipients, args.rate)
        return 0 if report.failed == report.uncertain == 0 else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
