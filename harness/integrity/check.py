"""The integrity check of a tier: the ledger against what the target now says, over HTTP.

After each tier, at low load, :func:`check_tier` compares what the load did (the operation
ledger, :mod:`harness.integrity.ledger`) with what the target returns, Jepsen-style, and reads as
customers to look for leaks. It reads the target through the pack's declarations
(:mod:`harness.integrity.declare`) on a bounded session (:mod:`harness.integrity.session`) and
judges what it read with the pure checkers (:mod:`harness.integrity.evaluate`).

Every loop is bounded by count (``sample``) and time (``time_budget_s``); a target that cannot
be read gives status ``error`` with a note, never an exception.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import httpx

from harness.credentials import CredentialRefresher, FreshCustomers
from harness.errors import ConfigError
from harness.integrity.counters import CounterReadings, read_counter_values
from harness.integrity.declare import Invariants, Read, load_invariants
from harness.integrity.evaluate import (
    evaluate_resource,
    final_state_duplicates,
    ledger_duplicates,
    lost_increments,
    marker_leak,
    natural_order,
)
from harness.integrity.ledger import LeakObservation, LedgerContents, Operation, read_ledger_dir
from harness.integrity.markers import MarkerScanner
from harness.integrity.replay import REPLAY_REQUESTS_CAP, confirm_leaks
from harness.integrity.session import Api, Session
from harness.pacing import RequestPacer
from harness.records import IntegrityResult, IntegrityViolation, LeakReplay

__all__ = ["check_tier"]

MAX_VIOLATIONS = 200  # kept in the result; the note says how many more there were

_Status = Literal["passed", "failed", "skipped", "error"]


@dataclass
class _Findings:
    """What the checks have found so far: violations, how much each check covered, notes."""

    violations: list[IntegrityViolation] = field(default_factory=list)
    checks: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    notes: list[str] = field(default_factory=list)
    leak_replay: LeakReplay | None = None
    unread_writes: int = 0  # acknowledged writes sampled for read-back when not one could be read
    # public(...) pattern -> (responses under load, reads after it) left out of the scans
    public_skipped: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def add(self, items: Iterable[IntegrityViolation]) -> None:
        self.violations.extend(items)


@dataclass(frozen=True)
class _Run:
    """What every family of checks in one :func:`check_tier` call shares."""

    inv: Invariants
    ops: Sequence[Operation]  # the ledger's operations on the declared resource kinds
    customers: Mapping[int, Mapping[str, Any]]  # by index
    session: Session
    pool: ThreadPoolExecutor
    sample: int
    rng: random.Random
    findings: _Findings
    scanner: MarkerScanner | None


def check_tier(
    invariants: str | Path | ModuleType | Invariants,
    *,
    base_url: str,
    customers: Sequence[Mapping[str, Any]],
    ledger_dir: Path,
    sample: int,
    request_timeout_s: float,
    concurrency: int = 16,
    time_budget_s: float = 60.0,
    seed: int = 0,
    transport: httpx.BaseTransport | None = None,
    pacer: RequestPacer | None = None,
    counters_before: CounterReadings | None = None,
    credentials: CredentialRefresher | None = None,
) -> IntegrityResult:
    """Check the target's data after a tier against the ledger, and read as customers for leaks.

    ``counters_before``: the pack's ``@counter`` values read before the tier's load
    (:func:`harness.integrity.counters.read_counters`); each is read again and must have grown by
    the acknowledged writes it counts.
    ``sample`` bounds the reads of each family (read-backs; isolation reads); ``time_budget_s``
    bounds the whole check. Never raises for the target's or the pack's errors. ``transport``
    replaces the network (tests pass an ``httpx.MockTransport``); ``pacer`` holds its requests
    to the pack's max_rps; ``credentials`` refreshes each customer's credentials before they
    are read as, when their stated expiry is near, and after a 401 to a read made as them.
    """
    started = time.monotonic()
    try:
        inv = load_invariants(invariants)
    except ConfigError as exc:
        return IntegrityResult(status="error", checked=0, note=str(exc), duration_s=_since(started))
    if not customers:
        return IntegrityResult(status="skipped", checked=0, note="no customers were provisioned")
    by_index: Mapping[int, Mapping[str, Any]] = {int(c["index"]): c for c in customers}
    if credentials is not None:
        by_index = FreshCustomers({int(c["index"]): c for c in customers}, credentials)  # type: ignore[misc]
    contents = read_ledger_dir(ledger_dir)
    findings = _Findings(notes=_ledger_notes(contents, ledger_dir, inv))
    scanner = _scanner(customers, findings)
    ops = [o for o in contents.operations if o.kind in inv.resources]
    _ledger_checks(ops, inv, findings)
    session = Session(
        base_url, request_timeout_s, max(1, concurrency), started + time_budget_s,
        max_requests=4 * max(sample, 1) + 100 + (REPLAY_REQUESTS_CAP if contents.leaks else 0)
        + len(inv.counters) * max(sample, 0),
        transport=transport, pacer=pacer, credentials=credentials, customers=customers,  # type: ignore[arg-type]
    )  # fmt: skip
    rng = random.Random(seed)
    try:
        with ThreadPoolExecutor(
            max_workers=max(1, concurrency), thread_name_prefix="integrity"
        ) as pool:
            run = _Run(inv, ops, by_index, session, pool, sample, rng, findings, scanner)
            _leaks_under_load(run, contents.leaks)
            _readback_checks(run)
            _isolation_checks(run)
            _counter_checks(run, contents.operations, counters_before)
            _custom_checks(run, contents.operations)
    finally:
        session.close()
    return _result(findings, session, len(contents.operations), started, _public_sentences(inv, findings))


def _ledger_notes(contents: LedgerContents, ledger_dir: Path, inv: Invariants) -> list[str]:
    """What the result must say about the ledger it read."""
    notes = []
    if contents.bad_lines:
        notes.append(f"{contents.bad_lines} unreadable ledger line(s) skipped")
    if contents.truncated:
        notes.append(
            "the ledger was truncated at its line limit: later operations were not checked"
        )
    silent = [o for o in contents.operations if o.outcome == "unknown" and not o.status]
    if silent:
        cut = sum(1 for o in silent if o.unanswered)
        notes.append(
            f"{len(silent)} write(s) got no answer (a timeout, or still in flight when the load "
            f"stopped{f'; {cut} with no outcome line at all' if cut else ''}): their outcome is "
            "unknown, and the checks accepted both that they happened and that they did not"
        )
    if not contents.operations and inv.resources:
        notes.append(
            f"the ledger ({ledger_dir}) holds no operations: the load recorded no writes, so the "
            "set, unique and deleted checks had nothing to compare"
        )
    return notes


def _scanner(customers: Sequence[Mapping[str, Any]], findings: _Findings) -> MarkerScanner | None:
    """The customers' marker scanner; None (and a note) when their markers cannot make one."""
    try:
        return MarkerScanner.for_customers(customers)
    except (KeyError, ValueError) as exc:
        findings.notes.append(f"isolation scanning disabled: {exc}")
        return None


def _ledger_checks(ops: Sequence[Operation], inv: Invariants, findings: _Findings) -> None:
    """What the ledger alone answers: cheap, and it covers every operation."""
    findings.add(ledger_duplicates(ops, inv.resources))
    findings.checks["unique"] += len(ops)


def _leaks_under_load(run: _Run, leaks: Sequence[LeakObservation]) -> None:
    """The leaks the load engine suspected, reported only if replaying them does not refute them."""
    findings = run.findings
    findings.checks["isolation-under-load"] += len(leaks)
    private = []
    for leak in leaks:
        pattern = run.inv.public_pattern(leak.method, leak.url, leak.request)
        if pattern is None:
            private.append(leak)
        else:
            findings.public_skipped[pattern][0] += 1
    violations, replay = confirm_leaks(
        private, inv=run.inv, customers=run.customers, scanner=run.scanner, session=run.session,
        pool=run.pool,
    )  # fmt: skip
    findings.add(violations)
    findings.leak_replay = replay
    if replay is None:
        return
    findings.checks["isolation-replay"] += replay.requests
    if replay.not_confirmed or replay.unverified:
        findings.notes.append(
            f"{replay.suspected} leak(s) suspected under load, replayed after it: "
            f"{replay.confirmed} confirmed, {replay.not_confirmed} checked and not confirmed (not "
            f"reported), {replay.unverified} could not be confirmed (reported): "
            + "; ".join(replay.findings[:3])
        )


# --- read-backs against the ledger: set, deleted, unique (final state) -----------------------


@dataclass(frozen=True)
class _Grouped:
    """The ledger's operations on the provisioned customers, grouped the two ways reading needs."""

    histories: Mapping[tuple[str, str], list[Operation]]  # (kind, ident): that resource's
    per_customer: Mapping[tuple[int, str], list[Operation]]  # (customer, kind): what it wrote

    @classmethod
    def of(cls, ops: Sequence[Operation], customers: Mapping[int, Any]) -> _Grouped:
        histories: dict[tuple[str, str], list[Operation]] = defaultdict(list)
        per_customer: dict[tuple[int, str], list[Operation]] = defaultdict(list)
        for o in ops:
            if o.customer not in customers:
                continue
            per_customer[(o.customer, o.kind)].append(o)
            if o.ident is not None:
                histories[(o.kind, o.ident)].append(o)
        return cls(histories, per_customer)


@dataclass(frozen=True)
class _Fetched:
    """What the target returned for one customer's resources of one kind."""

    customer: int
    kind: str
    listed: list[Mapping[str, Any]]  # from the pack's @listing
    read: dict[str, Any]  # ident -> the @readback's answer (None: absent or refused)

    @property
    def observed(self) -> list[Mapping[str, Any]]:
        """Every resource the target returned (listed, then read back one by one)."""
        return [*self.listed, *(r for r in self.read.values() if r is not None)]


def _readback_checks(run: _Run) -> None:
    """Read back what the ledger says was written, and judge it against the ledger."""
    grouped = _Grouped.of(run.ops, run.customers)
    if not grouped.per_customer:
        return
    plan = _readback_plan(run, grouped)
    futures = [
        run.pool.submit(_fetch, run, grouped.per_customer[(customer, kind)], customer, kind, idents)
        for customer, kind, idents in plan
    ]
    observed_by_kind: dict[str, list[tuple[int, Mapping[str, Any]]]] = defaultdict(list)
    answered = 0
    for future in futures:
        fetched = future.result()
        answered += len(fetched.listed) + len(fetched.read)
        observed_by_kind[fetched.kind].extend((fetched.customer, r) for r in fetched.observed)
        _judge_readbacks(run, grouped, fetched)
        _scan_readbacks(run, fetched)
    if answered == 0:
        # Reads as other customers may all have been refused as they should: that alone must not
        # make a check in which no write was verified look passed.
        run.findings.unread_writes = sum(len(idents) for _, _, idents in plan)
    for kind, observed in observed_by_kind.items():
        res = run.inv.resources[kind]
        if res.unique_key is None:
            continue
        run.findings.checks["unique"] += len(observed)
        run.findings.add(final_state_duplicates(res, observed, run.ops))


def _readback_plan(run: _Run, grouped: _Grouped) -> list[tuple[int, str, list[str]]]:
    """(customer, kind, identifiers) to read back, most suspect first, within ``run.sample``."""
    per_customer = grouped.per_customer
    # Customers whose operations are most likely to show a race come first.
    suspects = {
        int(c) for v in run.findings.violations for c in v.customer.split(",") if c.isdigit()
    }

    def priority(key: tuple[int, str]) -> tuple[int, float]:
        entries = per_customer[key]
        risky = any(o.outcome == "unknown" or o.op == "delete" for o in entries)
        return (0 if key[0] in suspects else 1 if risky else 2, run.rng.random())

    plan: list[tuple[int, str, list[str]]] = []
    budget = max(1, run.sample)
    for key in sorted(per_customer, key=priority):
        if budget <= 0:
            break
        written = {o.ident for o in per_customer[key] if o.ident is not None}
        idents = sorted(written, key=natural_order)
        if len(idents) > budget:
            idents = sorted(run.rng.sample(idents, budget), key=natural_order)
        plan.append((key[0], key[1], idents))
        if key[1] in run.inv.listings:
            budget -= 1 + len(idents) // 10  # one listing; some will need an individual read
        else:
            budget -= len(idents)
    return plan


def _fetch(
    run: _Run, operations: list[Operation], customer_index: int, kind: str, idents: list[str]
) -> _Fetched:
    """List the customer's resources of ``kind`` (if the pack can), then read back the rest."""
    session = run.session
    customer = run.customers[customer_index]
    listed: list[Mapping[str, Any]] = []
    fn = run.inv.listings.get(kind)
    if fn is not None:
        ok, result = session.call(f"@listing {kind}", fn, session.client, customer, operations)
        if ok and result:
            listed = [r for r in result if isinstance(r, Mapping)]
    res = run.inv.resources[kind]
    seen = {res.ident(r) for r in listed}
    read: dict[str, Any] = {}
    for ident in idents:
        if ident in seen:
            continue
        ok, result = session.call(
            f"@readback {kind} {ident}", run.inv.readbacks[kind], session.client, customer, ident
        )
        if ok:
            read[ident] = result
        elif session.stopped:
            break
    return _Fetched(customer_index, kind, listed, read)


def _judge_readbacks(run: _Run, grouped: _Grouped, fetched: _Fetched) -> None:
    """The set and deleted checks: each identifier read back against its ledger history."""
    findings = run.findings
    kind = fetched.kind
    res = run.inv.resources[kind]
    by_id = {res.ident(r): r for r in fetched.listed}
    written = grouped.per_customer[(fetched.customer, kind)]
    for ident in sorted({o.ident for o in written if o.ident}, key=natural_order):
        if ident in by_id:
            item: Mapping[str, Any] | None = by_id[ident]
        elif ident in fetched.read:
            item = fetched.read[ident]
        else:
            continue  # not read (budget, time or a read error)
        history = grouped.histories[(kind, ident)]
        try:
            found = evaluate_resource(res, history, item)
        except (KeyError, TypeError, ValueError) as exc:
            findings.notes.append(f"{kind} {ident}: could not compare: {type(exc).__name__}: {exc}")
            continue
        if any(o.op == "delete" and o.outcome == "ok" for o in history):
            findings.checks["deleted"] += 1
        else:
            findings.checks["set"] += 1
        if found is not None:
            findings.violations.append(found)


def _scan_readbacks(run: _Run, fetched: _Fetched) -> None:
    """The isolation check on read-backs: no other customer's marker in what was returned."""
    scanner = run.scanner
    res = run.inv.resources[fetched.kind]
    if scanner is None or res.public:
        return
    for item in fetched.observed:
        run.findings.checks["isolation"] += 1
        foreign = scanner.foreign(json.dumps(item, default=str), fetched.customer)
        if foreign:
            what = f"read-back of {fetched.kind} {res.ident(item)}"
            run.findings.violations.append(
                marker_leak(fetched.customer, what, foreign, scanner, time.time())
            )


# --- isolation: sampled reads and cross-customer reads, concurrently -------------------------


@dataclass(frozen=True)
class _CrossRead:
    """One customer asking for another's resource by its identifier: it must be refused."""

    reader: int
    owner: int
    kind: str
    ident: str


@dataclass(frozen=True)
class _CrossAnswer:
    read: _CrossRead
    ok: bool  # the @readback returned (False: it failed, which proves nothing)
    result: Any  # what it returned: anything but None is a leak


@dataclass(frozen=True)
class _Seen:
    """A sampled read's response as one customer (None: the read failed), and when it came."""

    customer: int
    read: Read
    response: httpx.Response | None
    at: float


@dataclass
class _LeakTally:
    """The foreign markers one (customer, read) turned up, over all its reads."""

    first_seen: float
    markers: set[int] = field(default_factory=set)
    reads: int = 0


def _isolation_checks(run: _Run) -> None:
    """Read as customers: no other customer's marker in what they see, others' ids refused."""
    if run.session.stopped:
        return
    indexes = sorted(run.customers)
    cross = _cross_reads(run, indexes)
    reads = _sampled_reads(run, indexes, budget=max(1, run.sample - len(cross)))
    jobs: list[Future[_Seen | _CrossAnswer]] = []
    # Interleave the two kinds of read so both run under the same concurrency.
    for i in range(max(len(reads), len(cross))):
        if i < len(reads):
            jobs.append(run.pool.submit(_read_as, run, *reads[i]))
        if i < len(cross):
            jobs.append(run.pool.submit(_read_across, run, cross[i]))
    leaks: dict[tuple[int, str], _LeakTally] = {}
    for job in jobs:
        answer = job.result()
        if isinstance(answer, _Seen):
            _tally_markers(run, answer, leaks)
        else:
            _judge_cross_read(run, answer)
    _report_marker_leaks(run, leaks)


def _cross_reads(run: _Run, indexes: list[int]) -> list[_CrossRead]:
    """Sampled created resources, each to be read by a customer other than its owner."""
    owned: list[tuple[int, str, str]] = []
    seen: set[tuple[str, str]] = set()
    public_kinds = {kind for kind, res in run.inv.resources.items() if res.public}
    for o in run.ops:
        if o.kind in public_kinds:
            continue  # every customer may read it: a foreign read is not refused, by design
        if o.ident and o.outcome == "ok" and o.op == "create" and (o.kind, o.ident) not in seen:
            seen.add((o.kind, o.ident))
            owned.append((o.customer, o.kind, o.ident))
    cross: list[_CrossRead] = []
    if owned and len(indexes) > 1:
        for owner, kind, ident in run.rng.sample(owned, min(len(owned), max(1, run.sample // 4))):
            reader = run.rng.choice(indexes)
            if reader == owner:
                reader = indexes[(indexes.index(reader) + 1) % len(indexes)]
            cross.append(_CrossRead(reader, owner, kind, ident))
    return cross


def _sampled_reads(run: _Run, indexes: list[int], budget: int) -> list[tuple[int, Read]]:
    """Sampled customers' isolation reads, interleaved so concurrent requests mix tenants and
    every declared read is among the first ``budget``.

    None without ``@isolation_reads`` or a marker scanner.
    """
    reads_of = run.inv.isolation_reads
    if reads_of is None or run.scanner is None:
        return []
    chosen = run.rng.sample(indexes, min(len(indexes), budget))
    per: list[list[Read]] = []
    for index in chosen:
        ok, result = run.session.call(
            "@isolation_reads", reads_of, run.customers[index], network=False
        )
        items = [Read(r) if isinstance(r, str) else r for r in (result or [])] if ok else []
        per.append([r for r in items if isinstance(r, Read) and not _public_read(run, r)])
    # Each customer starts at another of its reads, so a budget smaller than customers x reads
    # still covers every declared read: the leaky one is rarely the first a pack lists.
    reads: list[tuple[int, Read]] = []
    depth = max((len(p) for p in per), default=0)
    for level in range(depth):
        for turn, (index, items) in enumerate(zip(chosen, per, strict=True)):
            if level < len(items):
                reads.append((index, items[(turn + level) % len(items)]))
    return reads[:budget]


def _public_read(run: _Run, spec: Read) -> bool:
    """A read of a public(...) path: left out of the scan (and counted for the report)."""
    pattern = run.inv.public_pattern(spec.method, spec.path, spec.label)
    if pattern is not None:
        run.findings.public_skipped[pattern][1] += 1
    return pattern is not None


def _read_as(run: _Run, index: int, spec: Read) -> _Seen:
    customer = run.customers[index]

    def send() -> httpx.Response:
        return run.session.client.request(
            spec.method, spec.path, params=spec.params, headers=run.inv.headers(customer)
        )

    ok, response = run.session.call(spec.label, send)
    return _Seen(index, spec, response if ok else None, time.time())


def _read_across(run: _Run, cross: _CrossRead) -> _CrossAnswer:
    what = f"@readback {cross.kind} {cross.ident} as customer {cross.reader}"
    ok, result = run.session.call(
        what, run.inv.readbacks[cross.kind], run.session.client, run.customers[cross.reader],
        cross.ident,
    )  # fmt: skip
    return _CrossAnswer(cross, ok, result)


def _tally_markers(run: _Run, seen: _Seen, leaks: dict[tuple[int, str], _LeakTally]) -> None:
    if seen.response is None or run.scanner is None:
        return
    run.findings.checks["isolation"] += 1
    foreign = run.scanner.foreign(seen.response.content, seen.customer)
    if foreign:
        tally = leaks.setdefault((seen.customer, seen.read.label), _LeakTally(seen.at))
        tally.markers.update(foreign)
        tally.reads += 1
        tally.first_seen = min(tally.first_seen, seen.at)


def _judge_cross_read(run: _Run, answer: _CrossAnswer) -> None:
    if not answer.ok:
        return
    run.findings.checks["isolation"] += 1
    if answer.result is None:
        return
    cross = answer.read
    run.findings.violations.append(
        IntegrityViolation(
            kind="isolation-leak",
            customer=str(cross.reader),
            identifiers=(cross.ident,),
            detail=(
                f"customer {cross.reader} read customer {cross.owner}'s {cross.kind} "
                f"{cross.ident}: the read should have been refused (403/404)"
            ),
            first_seen=time.time(),
            check="isolation",
        )
    )


def _report_marker_leaks(run: _Run, leaks: Mapping[tuple[int, str], _LeakTally]) -> None:
    """One violation per (customer, read) that carried foreign markers, with its read count."""
    if run.scanner is None:
        return
    for (index, label), tally in sorted(leaks.items()):
        v = marker_leak(index, label, sorted(tally.markers), run.scanner, tally.first_seen)
        if tally.reads > 1:
            v = replace(v, detail=f"{v.detail} ({tally.reads} reads)")
        run.findings.violations.append(v)


# --- the pack's own invariants ----------------------------------------------------------------


def _counter_checks(run: _Run, operations: Sequence[Operation], before: CounterReadings | None) -> None:
    """Each @counter read again as the customers read before the load, against the ledger."""
    if before is None or not before.values or not run.inv.counters:
        return
    if before.note:
        run.findings.notes.append(f"@counter before the load: {before.note}")
    indexes = sorted({index for _, index in before.values if index in run.customers})
    after = read_counter_values(run.inv, run.session, [run.customers[i] for i in indexes])
    for c in run.inv.counters:
        for index in indexes:
            was, now = before.values.get((c.name, index)), after.get((c.name, index))
            if was is None or now is None:
                continue
            run.findings.checks["counter"] += 1
            found = lost_increments(c.name, c.kind, c.op, index, was, now, operations)
            if found is not None:
                run.findings.add([found])


def _custom_checks(run: _Run, operations: Sequence[Operation]) -> None:
    """Each @invariant, on all ledger operations; its count is the requests it made (at least 1)."""
    api = Api(run.session, run.customers, run.inv)
    for name, fn in run.inv.custom:
        before = run.session.requests
        ok, result = run.session.call(f"@invariant {name}", fn, operations, api)
        if ok:
            try:
                items = [_with_check(v, name) for v in (result or ())]
            except TypeError as exc:
                run.findings.notes.append(
                    f"@invariant {name} returned something that is not violations: {exc}"
                )
                items = []
            run.findings.add(items)
        run.findings.checks[name] += max(1, run.session.requests - before)


def _with_check(v: IntegrityViolation, name: str) -> IntegrityViolation:
    if not isinstance(v, IntegrityViolation):
        raise TypeError(f"{v!r} is not an IntegrityViolation")
    if v.check:
        return v
    return IntegrityViolation(v.kind, v.customer, v.identifiers, v.detail, v.first_seen, name)


# --- the result -------------------------------------------------------------------------------


def _public_sentences(inv: Invariants, findings: _Findings) -> tuple[str, ...]:
    """What the report says of each public declaration: what it left out of the checks."""
    said = []
    for pattern in inv.public.patterns:
        under, after = findings.public_skipped.get(pattern, (0, 0))
        counts = [
            *([f"{under} response(s) under load carried other customers' markers"] if under else []),
            *([f"{after} isolation read(s) skipped"] if after else []),
        ]
        said.append(f"{pattern} is declared public: not scanned" + (f" ({'; '.join(counts)})" if counts else ""))
    for kind, res in sorted(inv.resources.items()):
        if res.public:
            said.append(
                f"resource {kind} is declared public: its read-backs are not scanned, and another "
                "customer's read of one is not expected to be refused"
            )
    return tuple(said)


def _result(
    findings: _Findings, session: Session, operations: int, started: float, public: tuple[str, ...] = ()
) -> IntegrityResult:
    violations = _distinct(findings.violations)
    notes = list(findings.notes)
    if len(violations) > MAX_VIOLATIONS:
        notes.append(f"{len(violations) - MAX_VIOLATIONS} more violations not listed")
    notes.extend(session.notes())
    checks = {k: v for k, v in findings.checks.items() if v}
    checked = operations + session.requests
    status: _Status
    if violations:
        status = "failed"
    elif session.unreliable:
        status = "error"
        notes.insert(0, "the target could not be read back reliably, so integrity is unknown")
    elif findings.unread_writes:
        status = "error"
        notes.insert(0, f"none of the {findings.unread_writes} acknowledged writes sampled could be read "
                        "back, so integrity is unknown")  # fmt: skip
    elif checked == 0 and not checks:
        status = "skipped"
    else:
        status = "passed"
    return IntegrityResult(
        status=status,
        checked=checked,
        violations=tuple(violations[:MAX_VIOLATIONS]),
        checks=checks,
        duration_s=_since(started),
        note="; ".join([*notes, *public]),
        leak_replay=findings.leak_replay,
        public=public,
    )


def _distinct(violations: Iterable[IntegrityViolation]) -> list[IntegrityViolation]:
    """One violation per (kind, identifiers), earliest first.

    The ledger and the read-backs may both find the same duplicate: it is reported once, with
    the time from whichever copy knows it.
    """
    unique: dict[tuple[str, tuple[str, ...]], IntegrityViolation] = {}
    for v in violations:
        key = (v.kind, tuple(sorted(v.identifiers)))
        prior = unique.get(key)
        if prior is None:
            unique[key] = v
        elif prior.first_seen is None and v.first_seen is not None:
            unique[key] = replace(prior, first_seen=v.first_seen)
    return sorted(unique.values(), key=lambda v: (v.first_seen is None, v.first_seen or 0.0))


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
