"""The integrity check of a tier: the ledger against what the target now says, over HTTP.

After each tier, at low load, :func:`check_tier` compares what the load did (the operation
ledger, :mod:`harness.integrity.ledger`) with what the target returns, Jepsen-style, and reads as
customers to look for leaks. It reads the target through the pack's declarations
(:mod:`harness.integrity.declare`) and judges what it read with the pure checkers
(:mod:`harness.integrity.evaluate`).

Every loop is bounded by count (``sample``) and time (``time_budget_s``); a target that cannot
be read gives status ``error`` with a note, never an exception.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from harness.errors import ConfigError
from harness.integrity.declare import Invariants, Read, load_invariants
from harness.integrity.evaluate import (
    evaluate_resource,
    final_state_duplicates,
    leaks_under_load,
    ledger_duplicates,
    marker_leak,
    natural_order,
)
from harness.integrity.ledger import Operation, read_ledger_dir
from harness.integrity.markers import MarkerScanner
from harness.pacing import RequestPacer, request_hooks
from harness.records import IntegrityResult, IntegrityViolation

__all__ = ["Api", "check_tier"]

MAX_VIOLATIONS = 200  # kept in the result; the note says how many more there were
UNREACHABLE_AFTER = 8  # this many transport errors before any success: the target is down


class _Stop(Exception):
    """The checker's time or request budget ran out (raised from inside pack functions)."""


class _Session:
    """The shared client with the checker's bounds: a deadline, a request cap, error counts."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float,
        concurrency: int,
        deadline: float,
        max_requests: int,
        transport: httpx.BaseTransport | None = None,
        pacer: RequestPacer | None = None,
    ) -> None:
        self.deadline = deadline
        self.max_requests = max_requests
        self.requests = 0
        self.successes = 0
        self.errors = 0
        self.transport_errors = 0
        self.pack_errors = 0
        self.first_error: str | None = None
        self.first_pack_error: str | None = None
        self.stopped: str | None = None
        self._lock = threading.Lock()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.client = httpx.Client(
            base_url=base_url,
            timeout=timeout_s,
            limits=limits,
            event_hooks={"request": [self._on_request, *request_hooks(pacer).get("request", [])]},
            transport=transport,
        )

    def _on_request(self, request: httpx.Request) -> None:
        with self._lock:
            if self.stopped is None and time.monotonic() > self.deadline:
                self.stopped = "the time budget ran out"
            if self.stopped is None and self.requests >= self.max_requests:
                self.stopped = f"the request cap ({self.max_requests}) was reached"
            if self.stopped is not None:
                raise _Stop(self.stopped)
            self.requests += 1

    def call(
        self, what: str, fn: Callable[..., Any], *args: Any, network: bool = True
    ) -> tuple[bool, Any]:
        """Run a pack function; (True, result) or (False, None) after counting the error.

        ``network=False`` for functions that only build data (they do not prove the target is up).
        """
        if self.stopped is not None:
            return False, None
        try:
            result = fn(*args)
        except _Stop:
            return False, None
        except httpx.TransportError as exc:
            with self._lock:
                self.errors += 1
                self.transport_errors += 1
                self.first_error = self.first_error or f"{what}: {type(exc).__name__}: {exc}"
                if self.successes == 0 and self.transport_errors >= UNREACHABLE_AFTER:
                    self.stopped = f"the target is unreachable ({self.first_error})"
            return False, None
        except httpx.HTTPError as exc:
            with self._lock:
                self.errors += 1
                self.first_error = self.first_error or f"{what}: {exc}"[:300]
            return False, None
        except Exception as exc:  # noqa: BLE001 - a broken pack function is reported, not raised
            with self._lock:
                self.pack_errors += 1
                self.first_pack_error = (
                    self.first_pack_error or f"{what}: {type(exc).__name__}: {exc}"[:300]
                )
            return False, None
        if network:
            with self._lock:
                self.successes += 1
        return True, result

    def close(self) -> None:
        self.client.close()


class Api:
    """What a custom :func:`invariant` reads the target with: as a customer, within the budget."""

    def __init__(
        self, session: _Session, customers: Mapping[int, Mapping[str, Any]], invariants: Invariants
    ) -> None:
        self._session = session
        self.customers = customers
        self._invariants = invariants

    @property
    def client(self) -> httpx.Client:
        return self._session.client

    def headers(self, customer: Mapping[str, Any]) -> dict[str, str]:
        return self._invariants.headers(customer)

    def request(
        self, customer: Mapping[str, Any], method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        headers = {**self.headers(customer), **kwargs.pop("headers", {})}
        return self._session.client.request(method, path, headers=headers, **kwargs)

    def get(self, customer: Mapping[str, Any], path: str, **kwargs: Any) -> httpx.Response:
        return self.request(customer, "GET", path, **kwargs)


@dataclass
class _Findings:
    violations: list[IntegrityViolation] = field(default_factory=list)
    checks: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    notes: list[str] = field(default_factory=list)

    def add(self, items: Iterable[IntegrityViolation]) -> None:
        self.violations.extend(items)


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
) -> IntegrityResult:
    """Check the target's data after a tier against the ledger, and read as customers for leaks.

    ``sample`` bounds the reads of each family (read-backs; isolation reads); ``time_budget_s``
    bounds the whole check. Never raises for the target's or the pack's errors. ``transport``
    replaces the network (tests pass an ``httpx.MockTransport``); ``pacer`` holds its requests
    to the pack's max_rps.
    """
    started = time.monotonic()
    findings = _Findings()
    try:
        inv = load_invariants(invariants)
    except ConfigError as exc:
        return IntegrityResult(status="error", checked=0, note=str(exc), duration_s=_since(started))
    if not customers:
        return IntegrityResult(status="skipped", checked=0, note="no customers were provisioned")
    by_index = {int(c["index"]): c for c in customers}
    contents = read_ledger_dir(ledger_dir)
    ops = [o for o in contents.operations if o.kind in inv.resources]
    if contents.bad_lines:
        findings.notes.append(f"{contents.bad_lines} unreadable ledger line(s) skipped")
    if contents.truncated:
        findings.notes.append(
            "the ledger was truncated at its line limit: later operations were not checked"
        )
    if not contents.operations and inv.resources:
        findings.notes.append(
            f"the ledger ({ledger_dir}) holds no operations: the load recorded no writes, so the "
            "set, unique and deleted checks had nothing to compare"
        )
    try:
        scanner: MarkerScanner | None = MarkerScanner.for_customers(customers)
    except (KeyError, ValueError) as exc:
        scanner = None
        findings.notes.append(f"isolation scanning disabled: {exc}")

    # 1. from the ledger alone: cheap, covers every operation
    findings.add(ledger_duplicates(ops, inv.resources))
    findings.checks["unique"] += len(ops)
    findings.add(leaks_under_load(contents.leaks, scanner))
    findings.checks["isolation-under-load"] += len(contents.leaks)

    session = _Session(
        base_url, request_timeout_s, max(1, concurrency), started + time_budget_s,
        max_requests=4 * max(sample, 1) + 100, transport=transport, pacer=pacer,
    )  # fmt: skip
    rng = random.Random(seed)
    try:
        with ThreadPoolExecutor(
            max_workers=max(1, concurrency), thread_name_prefix="integrity"
        ) as pool:
            # 2. read-backs against the ledger: set, deleted, unique (final state)
            _readback_checks(inv, ops, by_index, session, pool, sample, rng, findings, scanner)
            # 3. isolation: sampled reads and cross-customer reads, concurrently
            _isolation_checks(inv, ops, by_index, session, pool, sample, rng, findings, scanner)
            # 4. the pack's own invariants
            api = Api(session, by_index, inv)
            for name, fn in inv.custom:
                before = session.requests
                ok, result = session.call(f"@invariant {name}", fn, contents.operations, api)
                if ok:
                    try:
                        items = [_with_check(v, name) for v in (result or ())]
                    except TypeError as exc:
                        findings.notes.append(
                            f"@invariant {name} returned something that is not violations: {exc}"
                        )
                        items = []
                    findings.add(items)
                findings.checks[name] += max(1, session.requests - before)
    finally:
        session.close()
    return _result(findings, session, len(contents.operations), started)


def _with_check(v: IntegrityViolation, name: str) -> IntegrityViolation:
    if not isinstance(v, IntegrityViolation):
        raise TypeError(f"{v!r} is not an IntegrityViolation")
    if v.check:
        return v
    return IntegrityViolation(v.kind, v.customer, v.identifiers, v.detail, v.first_seen, name)


def _readback_checks(
    inv: Invariants,
    ops: Sequence[Operation],
    customers: Mapping[int, Mapping[str, Any]],
    session: _Session,
    pool: ThreadPoolExecutor,
    sample: int,
    rng: random.Random,
    findings: _Findings,
    scanner: MarkerScanner | None,
) -> None:
    histories: dict[tuple[str, str], list[Operation]] = defaultdict(list)
    per_customer: dict[tuple[int, str], list[Operation]] = defaultdict(list)
    for o in ops:
        if o.customer not in customers:
            continue
        per_customer[(o.customer, o.kind)].append(o)
        if o.ident is not None:
            histories[(o.kind, o.ident)].append(o)
    if not per_customer:
        return
    # Customers whose operations are most likely to show a race come first.
    suspects = {int(c) for v in findings.violations for c in v.customer.split(",") if c.isdigit()}

    def priority(key: tuple[int, str]) -> tuple[int, float]:
        entries = per_customer[key]
        risky = any(o.outcome == "unknown" or o.op == "delete" for o in entries)
        return (0 if key[0] in suspects else 1 if risky else 2, rng.random())

    plan: list[tuple[int, str, list[str]]] = []
    budget = max(1, sample)
    for key in sorted(per_customer, key=priority):
        if budget <= 0:
            break
        idents = sorted({o.ident for o in per_customer[key] if o.ident is not None}, key=natural_order)
        if len(idents) > budget:
            idents = sorted(rng.sample(idents, budget), key=natural_order)
        plan.append((key[0], key[1], idents))
        budget -= (1 if key[1] in inv.listings else 0) + (
            0 if key[1] in inv.listings else len(idents)
        )
        if key[1] in inv.listings:
            budget -= max(0, len(idents) // 10)  # some will need an individual read

    def work(
        customer_index: int, kind: str, idents: list[str]
    ) -> tuple[int, str, list[Mapping[str, Any]], dict[str, Any]]:
        customer = customers[customer_index]
        listed: list[Mapping[str, Any]] = []
        fn = inv.listings.get(kind)
        if fn is not None:
            ok, result = session.call(
                f"@listing {kind}",
                fn,
                session.client,
                customer,
                per_customer[(customer_index, kind)],
            )
            if ok and result:
                listed = [r for r in result if isinstance(r, Mapping)]
        res = inv.resources[kind]
        seen = {res.ident(r) for r in listed}
        read: dict[str, Any] = {}
        for ident in idents:
            if ident in seen:
                continue
            ok, result = session.call(
                f"@readback {kind} {ident}", inv.readbacks[kind], session.client, customer, ident
            )
            if ok:
                read[ident] = result
            elif session.stopped:
                break
        return customer_index, kind, listed, read

    futures = [pool.submit(work, c, k, ids) for c, k, ids in plan]
    observed_by_kind: dict[str, list[tuple[int, Mapping[str, Any]]]] = defaultdict(list)
    for future in futures:
        customer_index, kind, listed, read = future.result()
        res = inv.resources[kind]
        by_id = {res.ident(r): r for r in listed}
        for r in listed:
            observed_by_kind[kind].append((customer_index, r))
        for got in read.values():
            if got is not None:
                observed_by_kind[kind].append((customer_index, got))
        for ident in sorted(
            {o.ident for o in per_customer[(customer_index, kind)] if o.ident}, key=natural_order
        ):
            if ident in by_id:
                item: Mapping[str, Any] | None = by_id[ident]
            elif ident in read:
                item = read[ident]
            else:
                continue  # not read (budget, time or a read error)
            history = histories[(kind, ident)]
            try:
                found = evaluate_resource(res, history, item)
            except (KeyError, TypeError, ValueError) as exc:
                findings.notes.append(
                    f"{kind} {ident}: could not compare: {type(exc).__name__}: {exc}"
                )
                continue
            if any(o.op == "delete" and o.outcome == "ok" for o in history):
                findings.checks["deleted"] += 1
            else:
                findings.checks["set"] += 1
            if found is not None:
                findings.violations.append(found)
        if scanner is not None:
            for item in [*listed, *(r for r in read.values() if r is not None)]:
                findings.checks["isolation"] += 1
                foreign = scanner.foreign(json.dumps(item, default=str), customer_index)
                if foreign:
                    findings.violations.append(
                        marker_leak(
                            customer_index,
                            f"read-back of {kind} {res.ident(item)}",
                            foreign,
                            scanner,
                            time.time(),
                        )
                    )
    for kind, observed in observed_by_kind.items():
        res = inv.resources[kind]
        if res.unique_key is None:
            continue
        findings.checks["unique"] += len(observed)
        findings.add(final_state_duplicates(res, observed, ops))


def _isolation_checks(
    inv: Invariants,
    ops: Sequence[Operation],
    customers: Mapping[int, Mapping[str, Any]],
    session: _Session,
    pool: ThreadPoolExecutor,
    sample: int,
    rng: random.Random,
    findings: _Findings,
    scanner: MarkerScanner | None,
) -> None:
    if session.stopped:
        return
    indexes = sorted(customers)
    # Cross-customer reads: one customer asks for another's identifiers; must be refused.
    owned: list[tuple[int, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for o in ops:
        if o.ident and o.outcome == "ok" and o.op == "create" and (o.kind, o.ident) not in seen:
            seen.add((o.kind, o.ident))
            owned.append((o.customer, o.kind, o.ident))
    cross: list[tuple[int, int, str, str]] = []
    if owned and len(indexes) > 1:
        for owner, kind, ident in rng.sample(owned, min(len(owned), max(1, sample // 4))):
            reader = rng.choice(indexes)
            if reader == owner:
                reader = indexes[(indexes.index(reader) + 1) % len(indexes)]
            cross.append((reader, owner, kind, ident))
    # Sampled reads as customers, interleaved so concurrent requests mix tenants.
    reads: list[tuple[int, Read]] = []
    if inv.isolation_reads is not None and scanner is not None:
        budget = max(1, sample - len(cross))
        chosen = rng.sample(indexes, min(len(indexes), budget))
        per: list[list[Read]] = []
        for index in chosen:
            ok, result = session.call(
                "@isolation_reads", inv.isolation_reads, customers[index], network=False
            )
            items = [Read(r) if isinstance(r, str) else r for r in (result or [])] if ok else []
            per.append([r for r in items if isinstance(r, Read)])
        depth = max((len(p) for p in per), default=0)
        for level in range(depth):
            for index, items in zip(chosen, per, strict=True):
                if level < len(items):
                    reads.append((index, items[level]))
        reads = reads[:budget]

    def do_read(index: int, spec: Read) -> tuple[str, tuple[Any, ...]]:
        customer = customers[index]

        def send() -> httpx.Response:
            return session.client.request(
                spec.method, spec.path, params=spec.params, headers=inv.headers(customer)
            )

        ok, response = session.call(spec.label, send)
        return "read", (index, spec, response if ok else None, time.time())

    def do_cross(reader: int, owner: int, kind: str, ident: str) -> tuple[str, tuple[Any, ...]]:
        what = f"@readback {kind} {ident} as customer {reader}"
        ok, result = session.call(
            what, inv.readbacks[kind], session.client, customers[reader], ident
        )
        return "cross", (reader, owner, kind, ident, ok, result)

    jobs: list[Any] = []
    # Interleave the two kinds of read so both run under the same concurrency.
    for i in range(max(len(reads), len(cross))):
        if i < len(reads):
            jobs.append(pool.submit(do_read, *reads[i]))
        if i < len(cross):
            jobs.append(pool.submit(do_cross, *cross[i]))
    leaks: dict[tuple[int, str], tuple[set[int], int, float]] = {}
    for job in jobs:
        what, outcome = job.result()
        if what == "read":
            index, spec, response, at = outcome
            if response is None or scanner is None:
                continue
            findings.checks["isolation"] += 1
            foreign = scanner.foreign(response.content, index)
            if foreign:
                key = (index, spec.label)
                prior = leaks.get(key, (set(), 0, at))
                leaks[key] = (prior[0] | set(foreign), prior[1] + 1, min(prior[2], at))
        else:
            reader, owner, kind, ident, ok, result = outcome
            if not ok:
                continue
            findings.checks["isolation"] += 1
            if result is not None:
                findings.violations.append(
                    IntegrityViolation(
                        kind="isolation-leak",
                        customer=str(reader),
                        identifiers=(ident,),
                        detail=(
                            f"customer {reader} read customer {owner}'s {kind} {ident}: the read "
                            "should have been refused (403/404)"
                        ),
                        first_seen=time.time(),
                        check="isolation",
                    )
                )
    for (index, label), (markers, count, at) in sorted(leaks.items()):
        if scanner is not None:
            v = marker_leak(index, label, sorted(markers), scanner, at)
            detail = f"{v.detail} ({count} reads)" if count > 1 else v.detail
            findings.violations.append(
                IntegrityViolation(v.kind, v.customer, v.identifiers, detail, at, v.check)
            )



def _result(
    findings: _Findings, session: _Session, operations: int, started: float
) -> IntegrityResult:
    # The same duplicate found by the ledger and by read-backs is one violation.
    unique: dict[tuple[str, tuple[str, ...]], IntegrityViolation] = {}
    for v in findings.violations:
        key = (v.kind, tuple(sorted(v.identifiers)))
        prior = unique.get(key)
        if prior is None:
            unique[key] = v
        elif prior.first_seen is None and v.first_seen is not None:
            unique[key] = IntegrityViolation(
                prior.kind,
                prior.customer,
                prior.identifiers,
                prior.detail,
                v.first_seen,
                prior.check,
            )
    violations = sorted(unique.values(), key=lambda v: (v.first_seen is None, v.first_seen or 0.0))
    notes = list(findings.notes)
    if len(violations) > MAX_VIOLATIONS:
        notes.append(f"{len(violations) - MAX_VIOLATIONS} more violations not listed")
    if session.errors:
        notes.append(f"{session.errors} read(s) failed; first: {session.first_error}")
    if session.pack_errors:
        notes.append(
            f"{session.pack_errors} pack function call(s) raised; first: {session.first_pack_error}"
        )
    if session.stopped:
        notes.append(f"stopped early: {session.stopped}")
    checks = {k: v for k, v in findings.checks.items() if v}
    checked = operations + session.requests
    attempted = session.successes + session.errors
    unreadable = session.stopped is not None and "unreachable" in session.stopped
    if violations:
        status = "failed"
    elif (
        unreadable
        or (attempted >= 4 and session.errors > attempted / 2)
        or (attempted and not session.successes)
    ):
        status = "error"
        notes.insert(0, "the target could not be read back reliably, so integrity is unknown")
    elif checked == 0 and not checks:
        status = "skipped"
    else:
        status = "passed"
    return IntegrityResult(
        status=status,  # type: ignore[arg-type]
        checked=checked,
        violations=tuple(violations[:MAX_VIOLATIONS]),
        checks=checks,
        duration_s=_since(started),
        note="; ".join(notes),
    )



def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
