"""The harness proves itself: audit the demo service healthy and with each named flaw.

A harness is only worth its verdicts. ``scaleready selftest`` runs one audit of the pack's
service without a flaw, then one per flaw, one after another (the audits measure latency and
capacity: two at once would distort each other), and checks each against what it should find::

    healthy                 READY
    missing-index           data-volume-scaling on GET /patients?q
    n-plus-one              slo-latency or data-volume-scaling on GET /reports/daily
    ...

It writes ``<reports>/selftest/<run-id>/matrix.json`` and ``matrix.md`` (one row per audit:
flaw, verdict, categories found, expected, detected, wall seconds) and the audits' own run folders
under ``audits/``. The expectations are the oracle, not the detector: the audits themselves know
nothing of flaw names or endpoints and must find each flaw from measurements.

Scaled down: the selftest profile runs smaller tiers than the pack's path to its goal. So that
the flaws still show for the right reason, the goal becomes the largest tier and the per-customer
rate grows in proportion, keeping the goal's traffic (req/s) unchanged: the data is smaller, the
load is the same (see `scaled_pack`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import history
from harness.audit import AuditObserver, run_audit
from harness.audit_plan import AuditOptions
from harness.errors import ConfigError
from harness.files import atomic_write_text
from harness.pack import Pack
from harness.records import AuditRecord, Finding

HEALTHY = "healthy"


@dataclass(frozen=True)
class Expectation:
    """What the audit of one flaw must report: a finding of one of `categories` (on `endpoint`,
    when given and the finding names an endpoint)."""

    categories: tuple[str, ...]
    endpoint: str | None = None
    why: str = ""


#: The bundled booking demo's flaws and what an audit must find for each.
BOOKING_EXPECTATIONS: Mapping[str, Expectation] = {
    "missing-index": Expectation(("data-volume-scaling",), "GET /patients?q",
                                 "patient search scans every clinic's patients"),
    "n-plus-one": Expectation(("slo-latency", "data-volume-scaling"), "GET /reports/daily",
                              "the daily report issues one query per booking and per slot"),
    "global-lock": Expectation(("contention",), None,
                               "every write waits for one process-wide lock held across fsync"),
    "double-booking": Expectation(("integrity-duplicate",), None,
                                  "check-then-insert without a unique index"),
    "tenant-leak": Expectation(("isolation-leak",), None,
                               "patient search forgets the clinic filter"),
    "memory-leak": Expectation(("resource-leak",), None,
                               "a response cache that is never evicted"),
    "pool-exhaustion": Expectation(("saturation-errors",), None,
                                   "4 connections held during slow work; 503 under load"),
    "crash-on-odd-input": Expectation(("property",), None,
                                      "a 500 on a non-ASCII or one-word patient name"),
    "functional-regression": Expectation(("regression",), None,
                                         "cancelling no longer frees the slot"),
    # A downstream called badly: the serialisation cause (throughput stopped while the CPU
    # idled) and errors from a dependency full at a fixed number of slots.
    "blocking-event-loop": Expectation(("contention",), None,
                                       "a synchronous call to a downstream inside an async handler"),
    "downstream-slots": Expectation(("saturation-errors",), None,
                                    "a downstream with 8 call slots; 503 when they are all taken"),
    # Found by the pack's @counter (bookings made) against the ledger's acknowledged bookings.
    "lost-update": Expectation(("integrity-lost-write",), None,
                               "a per-clinic count updated by read-modify-write, no guard"),
}  # fmt: skip


@dataclass(frozen=True)
class MatrixRow:
    flaw: str  # "healthy" for the service without a flaw
    verdict: str
    categories: tuple[str, ...]  # every finding category the audit reported, sorted
    expected: tuple[str, ...]  # ("READY",) for healthy, else the categories that count
    detected: bool
    wall_s: float
    run_dir: str = ""
    evidence: tuple[str, ...] = ()  # titles of the findings that matched
    note: str = ""


@dataclass(frozen=True)
class SelftestResult:
    run_dir: Path
    rows: tuple[MatrixRow, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.detected for r in self.rows)


# --- scaling ------------------------------------------------------------------------------------


def scaled_pack(pack: Pack, tiers: Sequence[int]) -> Pack:
    """The pack with its goal moved to the largest tier and the per-customer rate scaled so the
    goal's traffic stays what it was (goal x rate is unchanged).

    A flaw that caps throughput (a global lock, a small pool) must still be judged against the
    real goal's request rate; a flaw that grows with data (a missing index) still sees the data
    grow 50x across the tiers.
    """
    customers = pack.config.customers
    goal = max(tiers)
    if goal >= customers.goal:
        return pack
    rate = customers.peak_rps_per_customer * customers.goal / goal
    config = pack.config.model_copy(
        update={"customers": customers.model_copy(update={"goal": goal, "peak_rps_per_customer": rate})}
    )
    return Pack(root=pack.root, config=config)


# --- judging one audit --------------------------------------------------------------------------


def judge_row(flaw: str, record: AuditRecord, wall_s: float, run_dir: Path,
              expectations: Mapping[str, Expectation],
              healthy: Sequence[Finding] = ()) -> MatrixRow:  # fmt: skip
    """One row of the matrix. ``healthy``: the findings of the healthy audit in the same matrix. A
    finding the healthy service got as well says nothing about the flaw, so it does not count."""
    categories = tuple(sorted({f.category for f in record.findings}))
    if flaw == HEALTHY:
        detected = record.verdict == "READY"
        note = "" if detected else "; ".join(record.notes[:2])
        return MatrixRow(flaw, record.verdict, categories, ("READY",), detected, round(wall_s, 1),
                         str(run_dir), (), note)  # fmt: skip
    expectation = expectations[flaw]
    named = [
        f for f in record.findings
        if f.category in expectation.categories
        and (expectation.endpoint is None or f.endpoint in (None, expectation.endpoint))
    ]  # fmt: skip
    matched = [f for f in named if not any(_same_cause(f, h) for h in healthy)]
    note = "" if matched else f"expected {' or '.join(expectation.categories)}"
    if not matched and expectation.endpoint:
        note += f" on {expectation.endpoint}"
    if named and not matched:
        note += f", but the healthy service got {_names(named)} too: not specific to the flaw"
    return MatrixRow(flaw, record.verdict, categories, expectation.categories, bool(matched),
                     round(wall_s, 1), str(run_dir), tuple(f.title for f in matched), note)  # fmt: skip


def _same_cause(found: Finding, healthy: Finding) -> bool:
    return found.category == healthy.category and found.endpoint == healthy.endpoint


def _names(findings: Sequence[Finding]) -> str:
    return " and ".join(sorted({f.category for f in findings}))


# --- the run ------------------------------------------------------------------------------------


def choose_flaws(pack: Pack, wanted: Sequence[str] | None,
                 expectations: Mapping[str, Expectation]) -> list[str]:  # fmt: skip
    known = list(pack.config.target.flaws)
    if wanted is None:
        chosen = known
    else:
        chosen = []
        for name in wanted:
            if name not in known:
                from harness.config import suggest

                raise ConfigError(
                    f"--flaws {name}: the pack '{pack.name}' has no such flaw{suggest(name, known)}; "
                    f"known flaws: {', '.join(known) or 'none'}"
                )
            chosen.append(name)
    missing = [f for f in chosen if f not in expectations]
    if missing:
        raise ConfigError(
            f"flaw {missing[0]}: the selftest does not know what an audit should find for it; "
            "add it to harness.selftest.BOOKING_EXPECTATIONS"
        )
    return chosen


def run_selftest(
    pack: Pack,
    *,
    profile: str = "selftest",
    flaws: Sequence[str] | None = None,
    healthy: bool = True,
    tiers: tuple[int, ...] | None = None,
    only: tuple[str, ...] = (),
    reports_dir: Path = Path("reports"),
    seed: int | None = None,
    expectations: Mapping[str, Expectation] = BOOKING_EXPECTATIONS,
    observer: AuditObserver | None = None,
    on_row: Callable[[MatrixRow], None] | None = None,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.time,
) -> SelftestResult:
    """Audit the healthy service and each flaw in turn; write the matrix; return it.

    `only` limits every audit to some stages (as ``scaleready audit --only``): a flaw the gate or
    the properties catch can be checked in seconds, though the audit is then partial.
    """
    chosen = choose_flaws(pack, flaws, expectations)
    run_tiers = tiers or tuple(pack.config.profile(profile).tiers or pack.config.tiers)
    audited = scaled_pack(pack, run_tiers)
    root = reports_dir.resolve() / "selftest"
    root.mkdir(parents=True, exist_ok=True)
    run_dir = history.create_run_dir(root, history.new_run_id(clock()))
    audits_dir = run_dir / "audits"
    cancel = cancel or threading.Event()
    rows: list[MatrixRow] = []
    healthy_findings: Sequence[Finding] = ()
    for flaw in ([HEALTHY] if healthy else []) + chosen:
        if cancel.is_set():
            break
        options = AuditOptions(
            pack=audited, profile_name=profile, reports_dir=audits_dir,
            flaw=None if flaw == HEALTHY else flaw, seed=seed, tiers=tiers, only=only,
        )  # fmt: skip
        started = time.monotonic()
        outcome = run_audit(options, observer, cancel)
        row = judge_row(flaw, outcome.record, time.monotonic() - started, outcome.run_dir, expectations,
                        healthy_findings)  # fmt: skip
        if flaw == HEALTHY:
            healthy_findings = outcome.record.findings
        rows.append(row)
        _write_resources(run_dir / "resources" / f"{flaw}.json", outcome.record)
        write_matrix(run_dir, rows, profile=profile, tiers=run_tiers, pack=audited)
        if on_row is not None:
            on_row(row)
    write_matrix(run_dir, rows, profile=profile, tiers=run_tiers, pack=audited)
    return SelftestResult(run_dir=run_dir, rows=tuple(rows))


def _write_resources(path: Path, record: AuditRecord) -> None:
    """The target's resource samples per tier (memory, CPU, fds against requests served): the
    evidence behind a resource-leak finding, or behind its absence."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {str(t.customers): [asdict(s) for s in t.resources] for t in record.tiers}
    atomic_write_text(path, json.dumps(data) + "\n")


def write_matrix(run_dir: Path, rows: Sequence[MatrixRow], *, profile: str,
                 tiers: Sequence[int], pack: Pack) -> None:  # fmt: skip
    customers = pack.config.customers
    meta = {
        "profile": profile,
        "tiers": list(tiers),
        "goal_customers": customers.goal,
        "peak_rps_per_customer": customers.peak_rps_per_customer,
        "detected": sum(r.detected for r in rows if r.flaw != HEALTHY),
        "flaws": sum(1 for r in rows if r.flaw != HEALTHY),
        "healthy_ready": next((r.detected for r in rows if r.flaw == HEALTHY), None),
    }
    data = {**meta, "rows": [{**asdict(r), "categories": list(r.categories),
                              "expected": list(r.expected), "evidence": list(r.evidence)}
                             for r in rows]}  # fmt: skip
    atomic_write_text(run_dir / "matrix.json", json.dumps(data, indent=2) + "\n")
    atomic_write_text(run_dir / "matrix.md", matrix_markdown(rows, meta))


def matrix_markdown(rows: Sequence[MatrixRow], meta: Mapping[str, object]) -> str:
    lines = [
        "# scaleready selftest",
        "",
        f"Profile `{meta['profile']}`, tiers {', '.join(map(str, meta['tiers']))}"  # type: ignore[call-overload]
        f" (goal {meta['goal_customers']} customers at {meta['peak_rps_per_customer']:g} req/s each). "
        f"Flaws detected: {meta['detected']}/{meta['flaws']}; healthy READY: {meta['healthy_ready']}.",
        "",
        "| flaw | verdict | categories found | expected | detected | wall s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        found = ", ".join(r.categories) or "-"
        lines.append(
            f"| {r.flaw} | {r.verdict} | {found} | {' or '.join(r.expected)} | "
            f"{'yes' if r.detected else '**no**'} | {r.wall_s:.0f} |"
        )
    misses = [r for r in rows if not r.detected and r.note]
    if misses:
        lines += ["", "Missed:", ""] + [f"- {r.flaw}: {r.note}" for r in misses]
    return "\n".join(lines) + "\n"


__all__ = [
    "BOOKING_EXPECTATIONS",
    "HEALTHY",
    "Expectation",
    "MatrixRow",
    "SelftestResult",
    "judge_row",
    "matrix_markdown",
    "run_selftest",
    "scaled_pack",
    "write_matrix",
]
