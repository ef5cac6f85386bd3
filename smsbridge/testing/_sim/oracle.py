"""The oracle: what must hold after every run, read from the gateways' ledgers and every outcome.

A routed world has several gateways: what one gateway did is held against the outcomes that
name it (an outcome names the gateway that decided it), and "twice" counts across all of
them; a lone gateway's world is the same with one name. So, routed, an ``uncertain``
recipient's message is in no other gateway's ledger, a ``failed`` one's in none, and an
``accepted`` one's in the ledger of the gateway its outcome names.

1. **One outcome.** Every recipient a send read has exactly one outcome (a send that ended by
   itself: every recipient of its input); a campaign's journal ends with one per row.
2. **Accepted ⊆ delivered ⊆ accepted ∪ uncertain.** Per message (number and text) and gateway
   (and, for a killed run without a journal, whose outcomes died with it, the requests it wrote),
   the gateway sent at least as many as were reported ``accepted`` by it and at most as many
   as were reported ``accepted`` or ``uncertain`` by it; an accepted message id is one the
   gateway gave that message. Runs of one keyed send that report the same recipient
   accepted with the same id count once (Webcom answers a repeated ``client_id_sms`` with
   the earlier message's id and sends nothing).
3. **Nothing twice.** With the duplicate window on (and no ``at_least_once``), no two
   gateways' sends (nor one's) carried the same message to the same number within the window.
4. **Suppressed only after a real send.** A ``suppressed`` recipient's message was reported
   ``accepted`` or ``uncertain`` for another recipient; never with the window off.
5. **Rejected only for a refusal.** A ``rejected`` recipient was invalid before any request
   (its number, its parameters; routed, no route for it) or the gateway its outcome names
   refused it; an invalid recipient is rejected.
6. **Failed means not sent, and frees the window.** (The first half follows from 2.) When
   every send is over, no reservation is left behind, except those of recipients a resumed
   campaign marked ``uncertain`` (their message may have gone).
7. **The gateway's rate.** No sliding second holds more requests written to a gateway than
   the account's limit (a request held up on the way arrives when the network lets it).
8. **It ends.** No run deadlocks; no send raises but for its cancellation (or, a run of a
   keyed send while another run of its key goes, refused before it read anything).
9. **Uncertain only when unknown.** An ``uncertain`` recipient's number was in a request (to
   the gateway its outcome names) whose writer got no definite answer (a 5xx, an unreadable
   body, a dropped connection, a timeout, a death or cancellation while it waited), or died
   at the very moment it heard one; a request the gateway surely refused or never got leaves
   nobody uncertain (a process killed during a back-off after a 429 must not leave its batch
   uncertain). Without a journal, a run of a keyed send cannot know what a killed run of it
   wrote: what that run reserved may be uncertain (and, in Redis, stay reserved).
10. **Stop means stop.** Once its caller stops or cancels a send, it writes no request.
11. **A calm world sends.** Where nothing goes wrong (a calmed scenario: no fault anywhere, no
    refusal, nobody stopped or killed), every recipient the world lets through (a valid
    number, parameters that fit, a route or gateway for it) ends ``accepted``, or
    ``suppressed`` or ``rejected`` where its message went already (with the window off, SMS
    Club refuses the same message to a number within two minutes itself). A lost recipient
    breaks no other invariant: ``failed`` and ``rejected`` each only claim that nothing went.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict

from ..._core.errors import StateBackendError
from ..._fake import busiest_window
from .run import SendRecord, Trace
from .scenario import PREFIXES, TEMPLATE

__all__ = ["INVARIANTS", "check"]

INVARIANTS = (
    "1 one outcome",
    "2 accepted <= delivered <= accepted+uncertain",
    "3 nothing twice",
    "4 suppressed only after a real send",
    "5 rejected only for a refusal",
    "6 failed frees the window",
    "7 gateway rate",
    "8 it ends",
    "9 uncertain only when unknown",
    "10 stop means stop",
    "11 a calm world sends",
)


def _keys(trace: Trace) -> list[tuple[str, str] | None]:
    """Each entry's message as the gateway would record it: (number, text)."""
    sc = trace.scenario
    keys: list[tuple[str, str] | None] = []
    template = sc.kind == "template"
    for entry in sc.entries:
        if entry.phone is None:
            keys.append(None)
        elif template:
            value = entry.params[0] if entry.params else ""
            keys.append((entry.phone, TEMPLATE.replace("{1}", value)))
        else:
            keys.append((entry.phone, (entry.text if sc.personal else sc.text) or ""))
    return keys


def check(trace: Trace) -> tuple[list[str], Counter[str]]:
    """The violations of a run (empty when all holds), and how often each invariant was
    checked."""
    sc = trace.scenario
    bad: list[str] = []
    checks: Counter[str] = Counter()
    keys = _keys(trace)
    # the gateway an outcome is held against: the one it names, routed; else the only one
    # (a journal's outcomes name none)
    alone = next(iter(trace.gateways)) if sc.routing is None else None

    def expect(invariant: str, ok: bool, message: str) -> None:
        checks[invariant] += 1
        if not ok:
            bad.append(f"[{invariant}] {message}")

    # 8: it ends
    expect(INVARIANTS[7], trace.deadlock is None, str(trace.deadlock))
    # a gateway that asks for 150 s after each 429, or a back-off of 100 s and more, may make
    # a run long, not endless
    slow = sc.retry.backoff >= 100 or any((a.faults.retry_after or 0) > 100 for a in sc.accounts)
    limit = 28_800 if slow else 7200
    expect(INVARIANTS[7], trace.seconds < limit, f"the run took {trace.seconds:.0f} virtual s")
    for record in trace.sends:
        raised = record.raised
        # a run of a keyed send may be refused while another run of the key goes: at once
        turned_away = (
            sc.retry_key
            and (raised or "").startswith("SendInProgressError")
            and record.pulled == 0
            and not record.outcomes
        )
        if record.caller_error is not None:
            # the caller's code failed: the send must raise it (unless it ended before, or
            # was turned away before it read anything)
            expect(
                INVARIANTS[7],
                raised is None
                or raised.startswith("caller:")
                or raised == "cancelled"
                or record.killed
                or turned_away,
                f"{record.name}: the caller's {record.caller_error} failed, it raised {raised}",
            )
        else:
            expect(
                INVARIANTS[7],
                raised in (None, "cancelled") or record.killed or turned_away,
                f"{record.name} raised {raised}",
            )
        if raised == "cancelled" and not record.cancelled:
            expect(INVARIANTS[7], False, f"{record.name} was cancelled by nobody")

    # final outcomes, as (entry index, status, message id, whose, gateway)
    finals: list[tuple[int, str, str | None, str, str | None]] = []
    for record in trace.sends:
        seen = Counter(o.index for o in record.outcomes)
        twice = [i for i, n in seen.items() if n > 1]
        expect(INVARIANTS[0], not twice, f"{record.name}: indices {twice} got two outcomes")
        wanted = set(range(len(record.entries))) if trace.journal is None else set(record.entries)
        expect(
            INVARIANTS[0],
            set(seen) <= wanted,
            f"{record.name}: outcomes for recipients it never had",
        )
        if trace.journal is None and not record.killed:
            # whatever ended the send (a stop, a cancellation, the caller's error), each
            # recipient it read has an outcome
            unsettled = sorted(set(range(record.pulled)) - set(seen))
            expect(
                INVARIANTS[0],
                not unsettled,
                f"{record.name}: read {record.pulled}, no outcome for {unsettled[:10]}",
            )
        ended = (
            record.report is not None
            and not record.stopped
            and not record.killed
            and record.caller_error is None
        )
        if ended and not record.report.stopped:  # type: ignore[union-attr]
            if trace.journal is None:
                missing = wanted - set(seen)
                expect(INVARIANTS[0], not missing, f"{record.name}: no outcome for {missing}")
            report = record.report
            assert report is not None
            counted = Counter(o.status.value for o in record.outcomes)
            expect(
                INVARIANTS[0],
                report.total == len(record.outcomes)
                and all(getattr(report, s) == n for s, n in counted.items()),
                f"{record.name}: report {report.counts()} but outcomes {dict(counted)}",
            )
        if trace.journal is None:
            for o in record.outcomes:
                entry = record.entries[o.index] if o.index < len(record.entries) else -1
                gateway = alone or o.gateway
                finals.append((entry, o.status.value, o.message_id, record.name, gateway))
    if trace.journal is not None:
        last = trace.sends[-1]
        if last.report is not None and not last.stopped and not last.report.stopped:
            missing = set(range(len(sc.entries))) - set(trace.journal)
            expect(INVARIANTS[0], not missing, f"the journal has no outcome for {missing}")
        finals = [(i, status, mid, "journal", alone) for i, (status, mid) in trace.journal.items()]

    # the keyed sends a run of which was killed
    dead = {r.holder for r in trace.sends if r.killed and r.holder is not None}

    # messages that requests of a killed library run may have carried: the run's outcomes
    # for them died with it (a journal's would not), so what went by them has none
    orphaned: Counter[tuple[str, str]] = Counter()
    if trace.journal is None:
        for w in trace.written:
            if w.writer in trace.kills:
                for number in w.numbers:
                    orphaned[(w.gateway, number)] += 1

    # 2: accepted <= delivered <= accepted + uncertain, per message and gateway
    delivered: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    ledger: dict[tuple[str | None, tuple[str, str]], list[str]] = defaultdict(list)
    for name, fake in trace.gateways.items():
        for message in fake.sent:
            delivered[(message.phone, message.text)].append((message.at, message.id))
            ledger[(name, (message.phone, message.text))].append(message.id)
    by_key: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    on: dict[tuple[str | None, tuple[str, str]], Counter[str]] = defaultdict(Counter)
    repeated: set[tuple[str | None, int, str]] = set()  # runs of one key: one message, one id
    for entry, status, mid, _, gateway in finals:
        key = keys[entry] if 0 <= entry < len(keys) else None
        if key is None:
            continue
        if sc.retry_key and status == "accepted" and mid is not None:
            if (gateway, entry, mid) in repeated:
                continue  # the gateway's own idempotency: the earlier run's message again
            repeated.add((gateway, entry, mid))
        by_key[key][status] += 1
        on[(gateway, key)][status] += 1
        if status == "accepted" and mid is not None and gateway != "smsplus":
            ids = set(ledger.get((gateway, key), []))
            expect(
                INVARIANTS[1], mid in ids, f"{key}: accepted with id {mid}, {gateway} gave {ids}"
            )
    for where in set(on) | set(ledger):
        gateway, key = where
        counts, sent = on[where], len(ledger.get(where, []))
        accepted, uncertain = counts["accepted"], counts["uncertain"]
        # with at_least_once an uncertain message may have gone more than once (invariant 3
        # is waived); as sets, the inclusions still hold
        gone = accepted + uncertain + orphaned[(gateway or "", key[0])]
        most = gone if not sc.at_least_once else (sent if gone else 0)
        expect(
            INVARIANTS[1],
            accepted <= sent <= most,
            f"{key}: {gateway} sent {sent}, its outcomes {dict(counts)}",
        )

    # 3: nothing twice within the window
    if sc.window_ttl and not sc.at_least_once:
        for key, times in delivered.items():
            ordered = sorted(t for t, _ in times)
            gaps = [b - a for a, b in itertools.pairwise(ordered)]
            expect(
                INVARIANTS[2],
                all(gap >= sc.window_ttl for gap in gaps),
                f"{key}: sent {len(ordered)} times, {gaps} s apart",
            )

    # 4: suppressed only after a real send
    for entry, status, _, name, _ in finals:
        if status != "suppressed":
            continue
        key = keys[entry] if 0 <= entry < len(keys) else None
        went = key is not None and (
            by_key[key]["accepted"] + by_key[key]["uncertain"] > 0
            or any(orphaned[(g, key[0])] for g in trace.gateways)
        )
        expect(
            INVARIANTS[3],
            bool(sc.window_ttl) and went,
            f"{name}: entry {entry} {key} suppressed, but that message went nowhere",
        )

    # 5: rejected only for a refusal, and invalid ones rejected
    refused = {name: set(fake.refused) for name, fake in trace.gateways.items()}
    for entry, status, _, name, gateway in finals:
        if not 0 <= entry < len(sc.entries):
            continue
        spec = sc.entries[entry]
        invalid = spec.phone is None or spec.bad_params
        if status == "rejected":
            expect(
                INVARIANTS[4],
                invalid or spec.phone in refused.get(gateway or "", ()),
                f"{name}: entry {entry} ({spec.raw}) rejected by {gateway}, but nothing refused it",
            )
        elif invalid:
            expect(INVARIANTS[4], False, f"{name}: invalid entry {entry} ({spec.raw}) {status}")

    # 6: no reservation left behind
    for window in trace.windows:
        left = sum(1 for term in window._held.values() if term.holder is not None)
        expect(INVARIANTS[5], left == 0, f"{left} reservations left in the in-memory window")
    if trace.redis is not None:
        # a reservation left behind is fine where its message may have gone: its holder
        # died before the commit, or the commit never got through
        maybe: dict[str, dict[int, str]] = {}
        if trace.journal is not None and trace.campaign_holder is not None:
            maybe[trace.campaign_holder] = {i: final[0] for i, final in trace.journal.items()}
        # a killed run of a keyed send may have written what it reserved: its reservations
        # stay (the next run takes them over as uncertain, or they expire)
        for record in trace.sends:
            if record.holder is not None:
                fates = maybe.setdefault(record.holder, {})  # runs of one key: any that went
                for o in record.outcomes:
                    if fates.get(o.index) not in ("accepted", "uncertain"):
                        fates[o.index] = o.status.value

        # a send whose release could not reach Redis (a long freeze: its patience ran out),
        # or that stopped because Redis stayed out of reach, could not free what Redis
        # carried out after it gave up: those lapse, or that client's next reserve drops them.
        # A campaign whose last run stopped so could not free what a killed run before it
        # left either (a resume frees that with a bare send key, never kept to do later)
        def stranded_by(record: SendRecord) -> bool:
            assert trace.redis is not None
            return record.name in trace.redis.unreleased_by or isinstance(
                getattr(record.report, "error", None), StateBackendError
            )

        stranded = {record.holder for record in trace.sends if stranded_by(record)}
        runs = [record for record in trace.sends if record.holder is None]  # a campaign's
        if runs and stranded_by(runs[-1]):
            stranded.add(trace.campaign_holder)  # its last run: a resume would free them
        for value in trace.redis.window().values():
            if value[13] not in ("r", "R"):
                continue
            holder, _, index = value[14:].rpartition(":")
            send = holder.split("/")[0]  # <send>/<run>
            if send in dead or send in stranded:
                continue
            fate = maybe.get(send, {}).get(int(index))
            expect(
                INVARIANTS[5],
                fate in ("accepted", "uncertain"),
                f"reservation {value[13:]} left in Redis (its recipient: {fate})",
            )

    # 10: stop means stop
    for record in trace.sends:
        if record.stopped_at is None:
            continue
        late = [w.at for w in trace.written if w.send == record.name and w.at > record.stopped_at]
        expect(
            INVARIANTS[9],
            not late,
            f"{record.name}: stopped at {record.stopped_at:.4f}, wrote requests at {late}",
        )

    # 9: uncertain only when unknown (to the sender: never heard, or heard by a process
    # that died before it could record what it heard)
    # messages the gateway holds until the account is paid may still go: uncertain by design
    unknown: dict[str, set[str]] = {
        name: {m.phone for m in getattr(fake, "held", ())} for name, fake in trace.gateways.items()
    }
    for w in trace.written:
        died = trace.kills.get(w.writer)
        if w.heard is None or (died is not None and died - w.heard < 0.001):
            unknown[w.gateway].update(w.numbers)
    # taken over from a killed run of the same keyed send, which may have written it
    taken = {
        (record.name, record.entries[o.index])
        for record in trace.sends
        for o in record.outcomes
        if record.holder in dead and "an earlier run" in (o.reason or "")
    }
    for entry, status, _, name, gateway in finals:
        if (name, entry) in taken:
            continue
        if name == "journal" and entry in trace.open_at_kill:
            continue  # noted as about to go by a run killed before it settled: unknown
        if status == "uncertain" and 0 <= entry < len(sc.entries):
            phone = sc.entries[entry].phone
            expect(
                INVARIANTS[8],
                phone in unknown.get(gateway or "", ()),
                f"{name}: entry {entry} ({phone}) uncertain on {gateway}, but every request "
                "of it there was answered definitely",
            )

    # 11: a calm world sends everyone it lets through
    if sc.calm:
        closed = tuple(PREFIXES[c] for c in (sc.routing.unavailable if sc.routing else ()))
        for entry, status, _, name, gateway in finals:
            if not 0 <= entry < len(sc.entries):
                continue
            e = sc.entries[entry]
            if e.phone is None or e.bad_params or e.phone.startswith(closed):
                continue
            went = status == "suppressed" or (status == "rejected" and keys[entry] in delivered)
            expect(
                INVARIANTS[10],
                status == "accepted" or went,
                f"{name}: entry {entry} ({e.phone}) {status} on {gateway} in a calm world",
            )

    # 7: each gateway's rate, in the moments requests were written: what the client paces
    # (one held up on the way reaches the gateway whenever the network lets it)
    for gateway in trace.gateways:
        busiest = busiest_window([w.at for w in trace.written if w.gateway == gateway], 1.0)
        expect(
            INVARIANTS[6],
            busiest <= sc.rate,
            f"{busiest} requests in one second on {gateway}, limit {sc.rate}",
        )
    return bad, checks
