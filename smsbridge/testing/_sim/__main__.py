"""``python -m smsbridge.testing._sim``: run many seeds, or explain one.

python -m smsbridge.testing._sim --seeds 100000 --jobs 2
python -m smsbridge.testing._sim --seed 1234          # (or SEED=1234) told in full
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import msgspec

from .oracle import check
from .run import run
from .soak import faults_of, soak


def _explain(seed: int) -> int:
    logging.basicConfig(level=logging.WARNING, format="  log: %(message)s", stream=sys.stdout)
    trace = run(seed)
    sc = trace.scenario
    print(f"seed {seed}")
    for name, value in msgspec.to_builtins(sc).items():
        if name == "routing" and value is not None:
            for key, setting in value.items():
                if key != "accounts":
                    print(f"  routing.{key} = {setting}")
            for account in value["accounts"]:
                print(f"  gateway {account.pop('gateway')}: {account}")
        elif name != "entries":
            print(f"  {name} = {value}")
    for n, entry in enumerate(sc.entries):
        print(f"  entry {n}: {entry}")
    violations, _ = check(trace)
    print("faults fired:", ", ".join(sorted(faults_of(trace))) or "none")
    for record in trace.sends:
        report = record.report.counts() if record.report is not None else None
        print(f"{record.name}: raised={record.raised} killed={record.killed} report={report}")
        for o in record.outcomes:
            where = f" on {o.gateway}" if sc.routing is not None else ""
            print(
                f"    #{o.index} {o.phone} {o.status.value}{where} {o.message_id or o.reason or ''}"
            )
    if trace.journal is not None:
        print("journal:", trace.journal)
    for gateway, fake in trace.gateways.items():
        print(f"{gateway} sent:")
        for m in fake.sent:
            print(f"    {m.at:.4f} {m.phone} {m.text!r} id={m.id}")
        print(f"{gateway} requests:")
        for r in fake.requests:
            print(f"    {r.at:.4f} {r.status} {r.fault} {list(r.numbers)}")
    print("violations:" if violations else "no violations")
    for v in violations:
        print("   ", v)
    return 1 if violations else 0


def main(argv: list[str] | None = None) -> int:
    """Run the seeds asked for; exit 1 if any failed."""
    parser = argparse.ArgumentParser(prog="python -m smsbridge.testing._sim")
    parser.add_argument("--seeds", type=int, default=2000, help="how many seeds")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=None, help="explain this one seed")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else os.environ.get("SEED")
    if seed is not None:
        return _explain(int(seed))
    summary = soak(range(args.start, args.start + args.seeds), jobs=args.jobs)
    rate = summary.seeds / summary.seconds
    print(
        f"{summary.seeds:,} seeds in {summary.seconds:.1f} s ({rate:,.0f}/s), "
        f"{len(summary.failed)} failed"
    )
    print("faults, by the share of seeds in which they fired:")
    for name, count in sorted(summary.faults.items(), key=lambda f: -f[1]):
        print(f"  {count / summary.seeds:7.1%}  {name}")
    print("invariants, by the times they were checked:")
    for name, count in summary.checks.items():
        print(f"  {count:>12,}  {name}")
    for failed, violations in list(summary.failed.items())[:20]:
        print(
            f"seed {failed}: {violations[0]}"
            + (f" (+{len(violations) - 1})" if len(violations) > 1 else "")
        )
    if summary.failed:
        print(f"rerun one: SEED={next(iter(summary.failed))} make sim")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
