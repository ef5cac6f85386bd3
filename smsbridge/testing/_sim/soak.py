"""Many seeds, in parallel: what failed, how often each fault fired, how often each invariant
was checked.

    python -m smsbridge.testing._sim --seeds 100000 --jobs 2     # make soak SEEDS=100000
    SEED=1234 python -m smsbridge.testing._sim --explain          # one seed, told in full
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections import Counter
from collections.abc import Iterable, Sequence

import msgspec

from ..._router import RoutedReport
from .oracle import INVARIANTS, check
from .run import Trace, run

__all__ = ["SeedResult", "Summary", "faults_of", "run_seed", "soak"]


class SeedResult(msgspec.Struct, kw_only=True):
    """One seed's verdict."""

    seed: int
    violations: list[str]
    faults: dict[str, int]
    checks: dict[str, int]


class Summary(msgspec.Struct, kw_only=True):
    """Many seeds' verdicts."""

    seeds: int
    seconds: float
    failed: dict[int, list[str]]
    faults: dict[str, int]
    """Seeds in which each fault fired at least once."""
    checks: dict[str, int]
    """How many times each invariant was checked, over all seeds."""


def faults_of(trace: Trace) -> Counter[str]:
    """The fault classes that fired in a run (each counted once per run)."""
    sc = trace.scenario
    fired: Counter[str] = Counter()
    faulty = 0  # gateways that failed a request, refused one, or could not be reached
    for account, fake in zip(sc.accounts, trace.gateways.values(), strict=True):
        for record in fake.requests:
            if record.fault != "ok":
                fired[f"gateway: {record.fault}"] = 1
            elif record.status == 429:
                fired["gateway: over its own rate limit"] = 1
        faulty += account.net.refused == 1.0 or any(
            r.fault != "ok" or r.status >= 400 for r in fake.requests
        )
    if fired["gateway: rate_limited"] or fired["gateway: over its own rate limit"]:
        if sc.faults.rate_limited_body == "empty" and fired["gateway: rate_limited"]:
            fired["429 without a body"] = 1
        else:
            fired["429 with the gateway's error body"] = 1
        if sc.faults.retry_after is None and fired["gateway: rate_limited"]:
            fired["429 without Retry-After"] = 1
        else:
            fired["429 with Retry-After"] = 1
    for name in trace.stats:
        fired[name] = 1
    for send in trace.sends:
        if send.cancelled:
            fired["caller: cancelled a send"] = 1
        if send.stopped:
            fired["caller: stopped a send"] = 1
        if send.trickled:
            fired["caller: its async input made the send wait"] = 1
        if send.caller_error is not None and send.raised is not None:
            fired[f"caller: its {send.caller_error} failed"] = 1
    if trace.kills:
        fired["process killed (kill -9) and resumed"] = 1
    if any(plan.spread is not None for plan in sc.sends):
        fired["caller: an indexed input, its indices far apart"] = 1
    if sc.mode == "library" and len(sc.sends) > 1:
        fired["several sends on one client at once"] = 1
    if sc.clients > 1:
        fired["two clients on one account"] = 1
    if sc.repeat:
        fired["the same sends again within the window"] = 1
    if sc.retry_key:
        fired["keyed: runs of one send"] = 1
        if any((s.raised or "").startswith("SendInProgressError") for s in trace.sends):
            fired["keyed: a run refused while another went"] = 1
    if any("earlier run of this send" in (o.reason or "") for s in trace.sends for o in s.outcomes):
        fired["keyed: an earlier run's reservation taken over"] = 1
    if any(fake.refused for fake in trace.gateways.values()):
        fired["gateway refused numbers or requests"] = 1
    if any(getattr(fake, "held", None) for fake in trace.gateways.values()):
        fired["gateway held messages until paid"] = 1
    if any(a.language == "ru" and a.gateway == "webcom" for a in sc.accounts):
        fired["gateway answered in Russian"] = 1
    if any(a.bad_token for a in sc.accounts):
        fired["wrong credentials"] = 1
    if sc.routing is not None:
        fired["routed: a send over several gateways"] = 1
        if faulty > 1:
            fired["routed: faults on two gateways or more"] = 1
        if any(isinstance(s.report, RoutedReport) and s.report.moved for s in trace.sends):
            fired["routed: a recipient moved to the next gateway"] = 1
    if any(e.phone is None for e in sc.entries):
        fired["invalid numbers in the input"] = 1
    if len({(e.phone, e.text, e.params) for e in sc.entries}) < len(sc.entries):
        fired["repeated recipients in the input"] = 1
    return fired


def run_seed(seed: int) -> SeedResult:
    """Run and check one seed (the library's log silenced meanwhile, then as it was)."""
    silenced = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        trace = run(seed)
        violations, checks = check(trace)
        fired = faults_of(trace)
    except Exception as e:  # a crash of the run itself is a finding too
        return SeedResult(
            seed=seed,
            violations=[f"[crash] {type(e).__name__}: {e}"],
            faults={},
            checks={},
        )
    finally:
        logging.disable(silenced)
    return SeedResult(seed=seed, violations=violations, faults=dict(fired), checks=dict(checks))


def _chunk(seeds: Sequence[int]) -> list[SeedResult]:
    return [run_seed(seed) for seed in seeds]


def soak(seeds: Iterable[int], jobs: int = 1, chunk: int = 50) -> Summary:
    """Run every seed (``jobs`` processes at a time) and sum up."""
    started = time.monotonic()
    ordered = list(seeds)
    parts = [ordered[i : i + chunk] for i in range(0, len(ordered), chunk)]
    if jobs > 1:
        context = multiprocessing.get_context("fork")
        with context.Pool(jobs) as pool:
            results = [r for part in pool.imap_unordered(_chunk, parts) for r in part]
    else:
        results = [r for part in parts for r in _chunk(part)]
    faults: Counter[str] = Counter()
    checks: Counter[str] = Counter(dict.fromkeys(INVARIANTS, 0))
    failed: dict[int, list[str]] = {}
    for result in results:
        faults.update(result.faults)
        checks.update(result.checks)
        if result.violations:
            failed[result.seed] = result.violations
    return Summary(
        seeds=len(ordered),
        seconds=time.monotonic() - started,
        failed=dict(sorted(failed.items())),
        faults=dict(sorted(faults.items())),
        checks=dict(checks),
    )
