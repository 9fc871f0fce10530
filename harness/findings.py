"""The verdict's rules: small pure functions from stage records to findings.

Each rule reads plain records and returns an :class:`Outcome`: the findings it raised and, for
each, how it bears on the verdict, as one sentence each:

* ``failures``: a definite failure on valid evidence (the verdict is NOT READY);
* ``missing``: evidence the verdict needs is absent or invalid (INCONCLUSIVE, unless a failure);
* ``risks``: everything passes but something will not last (AT RISK);
* ``notes``: what was deliberately not judged and why (suppressed by the noise floor, too few
  requests for a percentile), so a reader can see the harness did not look away silently.

`harness.verdict` combines the outcomes into a verdict; this module never decides one. One tier
is judged by :func:`assess_tier`, whose status (passed / failed / invalid / skipped) is the
scorecard's tier status. Nothing here does I/O, prints, or imports Locust or matplotlib.

Category choices that are not obvious from DESIGN.md:

* a server error that still fails when replayed alone is a *bug*, not a capacity problem. It is
  reported as ``property``: it falsifies the "no 5xx on any input" property the properties stage
  checks, found by the load instead of by Hypothesis, and it is as definite (NOT READY);
* integrity violations of kind ``resurrected`` (an acknowledged delete undone) and
  ``half-written`` (part of an acknowledged write missing) are lost writes and are reported as
  ``integrity-lost-write``; the evidence keeps the original kind.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shlex
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from harness.records import (
    CATEGORIES,
    CapacityEstimate,
    EndpointMeasurement,
    EndpointTrend,
    Finding,
    GateResult,
    GeneratorHealth,
    IntegrityResult,
    IntegrityViolation,
    NoiseFloor,
    PhaseMeasurement,
    PropertiesResult,
    ReplayedError,
    Severity,
    TierResult,
    TierStatus,
)

if TYPE_CHECKING:  # verdict imports this module; the policy types are only needed for typing
    from harness.verdict import EndpointSlo, ReproduceContext, VerdictPolicy

__all__ = [
    "Outcome",
    "TierAssessment",
    "assess_tier",
    "capacity_findings",
    "gate_findings",
    "make_finding",
    "properties_findings",
    "reproduce_command",
    "resource_leak",
    "slugify",
    "target_cpu_at_peak",
    "trend_findings",
]

# Below this CPU (100 = one core) at its throughput peak, a target that stopped scaling was
# waiting rather than computing: one core busy is 100, and a saturated single-threaded process
# shows 90-100 between samples.
WAITING_CPU_PCT = 70.0

# Words the tier stage and the load engine use when the target went away (harness/tiers.py).
_UNAVAILABLE_WORDS = (
    "stopped answering",
    "exited",
    "unreachable",
    "refused",
    "crashed",
    "not answering",
)

# Integrity violation kind -> finding category (see the module docstring for the mapping).
_INTEGRITY_CATEGORY = {
    "lost-write": "integrity-lost-write",
    "resurrected": "integrity-lost-write",
    "half-written": "integrity-lost-write",
    "duplicate": "integrity-duplicate",
    "isolation-leak": "isolation-leak",
}


# --- outcomes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a rule concluded, sentence by sentence, and the findings behind it."""

    findings: tuple[Finding, ...] = ()
    failures: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    risks: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(
            findings=self.findings + other.findings,
            failures=self.failures + other.failures,
            missing=self.missing + other.missing,
            risks=self.risks + other.risks,
            notes=self.notes + other.notes,
        )


@dataclass(frozen=True)
class TierAssessment:
    """One tier judged: its status, the one-sentence reason, and what it raised."""

    customers: int
    status: TierStatus
    reason: str
    findings: tuple[Finding, ...] = ()
    risks: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # Facts the area scores use, so they do not re-derive the rules.
    judged: bool = False  # latency and errors were judged on a valid steady window
    worst_error_rate: float | None = None
    worst_latency: tuple[str, float, float] | None = None  # (endpoint, p95 ms, SLO p95 ms)
    integrity_checked: int | None = (
        None  # operations the integrity check covered, None if it did not run
    )


# --- finding construction -----------------------------------------------------------------------


def slugify(text: str) -> str:
    """``"GET /slots/{id}"`` -> ``"get-slots-id"``: stable, readable id parts."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "all"


def make_finding(
    category: str,
    scope: Sequence[object],
    *,
    severity: Severity,
    title: str,
    detail: str,
    evidence: dict[str, object],
    reproduce: str,
    tier: int | None = None,
    endpoint: str | None = None,
) -> Finding:
    """A finding with a stable id ``category:scope...``; the category must be in the closed list."""
    if category not in CATEGORIES:
        raise ValueError(
            f"finding category {category!r} is not in records.CATEGORIES; "
            f"use one of {', '.join(CATEGORIES)} or extend the list deliberately"
        )
    fid = ":".join([category, *(slugify(str(part)) for part in scope)])
    return Finding(
        id=fid,
        category=category,
        severity=severity,
        title=title,
        detail=detail,
        evidence=evidence,
        reproduce=reproduce,
        tier=tier,
        endpoint=endpoint,
    )


def reproduce_command(
    ctx: ReproduceContext, only: str | None, *, workers: int | None = None
) -> str:
    """The exact `scaleready` invocation that reruns one stage (``gate``, ``properties``, ``tier:N``)."""
    parts = ["scaleready", "audit", shlex.quote(ctx.pack), "--profile", shlex.quote(ctx.profile)]
    if only:
        parts += ["--only", only]
    if not ctx.started_by_harness and ctx.target_url:
        parts += ["--target", shlex.quote(ctx.target_url)]
    extra = ctx.extra_args.strip()
    if workers is not None:
        extra = re.sub(r"--workers(=|\s+)\S+", "", extra).strip()
        parts += ["--workers", str(workers)]
    if extra:
        parts.append(" ".join(extra.split()))
    return " ".join(parts)


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _about(value: float) -> str:
    """Two significant digits: 11342 -> "11000"; a prediction is not more precise than that."""
    if value <= 0 or not math.isfinite(value):
        return f"{value:.0f}"
    digits = 1 - int(math.floor(math.log10(value)))
    return f"{round(value, digits):.0f}" if digits <= 0 else f"{round(value, digits):g}"


def _pct(rate: float) -> str:
    return f"{rate * 100:.2g}%" if rate < 0.1 else f"{rate * 100:.0f}%"


def _names(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# --- the regression gate and the properties ---------------------------------------------------


def gate_findings(gate: GateResult | None, ctx: ReproduceContext) -> Outcome:
    """A failing regression test is a definite failure; a gate that did not run is missing evidence."""
    if gate is None or gate.status == "skipped":
        return Outcome(
            missing=("The regression gate did not run, so functional correctness is unverified.",)
        )
    if gate.status == "error":
        tail = _last_line(gate.output_tail)
        return Outcome(
            missing=(f"The regression gate could not run{': ' + tail if tail else ''}.",)
        )
    failing = [c for c in gate.cases if c.outcome in ("failed", "error")]
    count = max(gate.failed + gate.errors, len(failing))
    if gate.status != "failed" and count == 0:
        return Outcome()
    names = [c.name for c in failing]
    lines = [f"- {c.name}: {_last_line(c.message) or c.outcome}" for c in failing[:10]]
    detail = (
        f"{count} test(s) of the pack's regression suite failed against the target "
        f"({gate.passed} passed, {gate.skipped} skipped). A functional regression makes every load "
        f"number moot: fix these first. "
        + ("Failing tests:\n" + "\n".join(lines) + "\n" if lines else "")
        + f"The JUnit report is {gate.junit}."
        + (f"\nLast output:\n{gate.output_tail[-1500:]}" if not lines and gate.output_tail else "")
    )
    finding = make_finding(
        "regression",
        ["gate"],
        severity="high",
        title=(
            f"The regression tests fail: {count} test(s) no longer pass"
            + (f" ({_names(names, 3)})" if names else "")
        ),
        detail=detail,
        evidence={
            "passed": gate.passed,
            "failed": gate.failed,
            "errors": gate.errors,
            "skipped": gate.skipped,
            "failing": names,
            "junit": gate.junit,
        },
        reproduce=reproduce_command(ctx, "gate"),
    )
    return Outcome(
        findings=(finding,),
        failures=(
            f"The regression gate failed: {count} test(s) did not pass"
            + (f" ({_names(names, 3)})." if names else "."),
        ),
    )


def properties_findings(props: PropertiesResult | None, ctx: ReproduceContext) -> Outcome:
    """Each falsified property is a definite failure, reported with its minimal example."""
    if props is None or props.status == "skipped":
        return Outcome(
            missing=("The property checks did not run, so robustness to odd input is unverified.",)
        )
    if props.status == "error":
        tail = _last_line(props.output_tail)
        return Outcome(
            missing=(f"The property checks could not run{': ' + tail if tail else ''}.",)
        )
    if props.falsified:
        findings = tuple(
            make_finding(
                "property",
                [fp.name],
                severity="high",
                title=f"The service breaks a rule it should always keep: {fp.name}",
                detail=(
                    f"Hypothesis falsified the property {fp.name} and shrank the input to this "
                    f"minimal example:\n{fp.example}\nError: {fp.error}\n"
                    f"Replay exactly this example with: {fp.reproduce}\n"
                    "Such failures are bugs, not load: they reproduce with a single request."
                ),
                evidence={
                    "property": fp.name,
                    "example": fp.example,
                    "error": fp.error,
                    "replay": fp.reproduce,
                },
                reproduce=reproduce_command(ctx, "properties"),
            )
            for fp in props.falsified
        )
        names = [fp.name for fp in props.falsified]
        return Outcome(
            findings=findings,
            failures=(
                f"{len(names)} propert{'y was' if len(names) == 1 else 'ies were'} falsified: {_names(names)}.",
            ),
        )
    if props.status == "failed" or props.failed:
        finding = make_finding(
            "property",
            ["properties"],
            severity="high",
            title=f"{props.failed or 'Some'} property check(s) failed",
            detail=(
                "The properties stage failed without reporting a minimal example; read its "
                f"JUnit report ({props.junit}).\n{props.output_tail[-1500:]}"
            ),
            evidence={"passed": props.passed, "failed": props.failed, "junit": props.junit},
            reproduce=reproduce_command(ctx, "properties"),
        )
        return Outcome(findings=(finding,), failures=("The property checks failed.",))
    return Outcome()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


# --- one tier -----------------------------------------------------------------------------------


def _connection_errors(phase: PhaseMeasurement) -> int:
    n = sum(
        count
        for e in phase.endpoints
        for reason, count in e.errors_by_reason.items()
        if reason.startswith("connection")
    )
    if n == 0 and not any(e.errors_by_reason for e in phase.endpoints):
        n = sum(1 for s in phase.error_samples if s.reason.startswith("connection"))
        return round(phase.errors * n / len(phase.error_samples)) if phase.error_samples else 0
    return n


def _mentions_unavailable(text: str | None) -> bool:
    return bool(text) and any(word in text.lower() for word in _UNAVAILABLE_WORDS)  # type: ignore[union-attr]


def _phase_unavailable(phase: PhaseMeasurement) -> bool:
    """The target stopped answering in this phase: connection errors dominate and it aborted (or most requests failed)."""
    if phase.errors == 0 or phase.requests == 0:
        return _mentions_unavailable(phase.aborted)
    share = _connection_errors(phase) / phase.errors
    return share >= 0.5 and (phase.aborted is not None or phase.errors / phase.requests >= 0.5)


def _where_unavailable(tier: TierResult) -> tuple[str | None, bool]:
    """(where the target went away, whether that was under the tier's nominal load)."""
    if _mentions_unavailable(tier.reason):
        # The target is known to have gone (its process exited): it went in the first phase
        # that met a refused or reset connection, even if that phase's share of errors is small.
        for phase in (tier.warmup, tier.steady):
            if phase is not None and _connection_errors(phase) > 0:
                return f"the {phase.label}", True
        for phase in tier.stress:
            if _connection_errors(phase) > 0:
                return f"the {phase.label} stress step", False
    for phase in (tier.warmup, tier.steady):
        if phase is not None and _phase_unavailable(phase):
            return f"the {phase.label}", True
    for phase in tier.stress:
        if _phase_unavailable(phase):
            return f"the {phase.label} stress step", False
    if _mentions_unavailable(tier.reason):
        if tier.steady is None:
            where = (
                "provisioning" if tier.warmup is None and "provision" in tier.reason else "the load"
            )
            return where, True
        if tier.steady.aborted is not None:
            return f"the {tier.steady.label}", True
        return "a stress step after the steady window", False
    return None, False


def _server_errors(e: EndpointMeasurement) -> int:
    return sum(n for reason, n in e.errors_by_reason.items() if reason.startswith("http-5"))


def _slo_for(policy: VerdictPolicy, endpoint: str) -> EndpointSlo:
    return policy.endpoint_slos.get(endpoint, policy.default_slo)


def _label(policy: VerdictPolicy, endpoint: str) -> str:
    return policy.endpoint_labels.get(endpoint, endpoint)


def _error_rate_judged(policy: VerdictPolicy, errors: int) -> bool:
    # A rate over the budget is judged once it rests on a few errors: at a small tier 2 errors in
    # 120 requests happen a third of the time at a 1 % rate, 5 errors almost never. At large
    # tiers any rate over a 1 % budget already means many more errors than that.
    return errors >= policy.min_errors_for_error_rate


def _unusable_window(steady: PhaseMeasurement, crowded_miss: bool) -> str:
    """Why a steady window the generator or the machine spoiled cannot judge the target."""
    if crowded_miss:
        return ("the tier missed its SLOs while the machine was busy with other work, so the miss "
                "cannot be told from the noise")
    if steady.generator.crowded:
        return ("other work on this machine took the CPU and the load generator fell behind, so the "
                "latency measured is not the target's")
    return "the load generator was saturated, so the latency measured is the generator's, not the target's"


def assess_tier(
    tier: TierResult,
    policy: VerdictPolicy,
    *,
    noise_floor: NoiseFloor | None,
    reproduce: ReproduceContext,
) -> TierAssessment:
    """Judge one tier. Precedence inside a tier, first match wins for the status:

    1. the stage skipped it -> ``skipped``;
    2. a definite failure on valid evidence -> ``failed``: the target went away under the tier's
       nominal load, an integrity violation, a request that fails even alone (a bug), an SLO
       (latency or errors) miss on a valid steady window, or server errors (5xx) over budget
       even on a saturated generator (a 5xx is the target's own answer);
    3. anything that makes the measurement unusable -> ``invalid``: a saturated generator, no
       steady window, an interrupted load, too few requests to judge any percentile, integrity
       not checked;
    4. otherwise ``passed``.
    """
    n = tier.customers
    sel = f"tier:{n}"
    repro = reproduce_command(reproduce, sel)
    if tier.status == "skipped":
        return TierAssessment(n, "skipped", tier.reason or "the tier was skipped")

    findings: list[Finding] = []
    failures: list[str] = []
    invalid: list[str] = []
    risks: list[str] = []
    notes: list[str] = []
    beyond_goal = n > policy.goal_customers
    steady = tier.steady

    # 1. Did the target stay up?
    where, nominal = _where_unavailable(tier)
    saturated = steady is not None and steady.generator.saturated
    # A busy machine only adds latency: a crowded window that met its SLOs is judged as measured
    # (an upper bound), one that missed them cannot be told from the noise.
    crowded_outcome = (
        _judge_steady(tier, steady, policy, noise_floor, repro)
        if steady is not None and not saturated and steady.generator.crowded
        else None
    )
    crowded_miss = crowded_outcome is not None and bool(crowded_outcome.failures)
    beyond_noise = False
    if crowded_miss and steady is not None and not steady.generator.crowding_slowed_target:
        # Only the generator's own timing was late (the machine kept it waiting for a CPU, the other
        # work measured within its limit): a late send and a late read add at most twice its
        # event loop's worst lateness. A miss larger than that is the target's.
        judged_with_lateness = _judge_steady(
            tier, steady, policy, noise_floor, repro, lateness_ms=2 * steady.generator.loop_lag_max_ms
        )
        if judged_with_lateness.failures:
            crowded_outcome, crowded_miss, beyond_noise = judged_with_lateness, False, True
    if where is not None and nominal and saturated and not _mentions_unavailable(tier.reason):
        # Connection errors from a saturated generator may be the generator's own (ports, fds).
        invalid.append(f"connection errors dominated {where}, but the generator was saturated")
    elif where is not None:
        findings.append(_unavailable_finding(tier, where, nominal, beyond_goal, repro))
        if nominal:
            failures.append(f"the target stopped answering during {where}")
        else:
            risks.append(
                f"At {n} customers the target crashed during {where} instead of slowing down under overload."
            )

    # 2. Integrity, judged whatever the generator's state: a lost write is lost.
    integrity = tier.integrity
    if integrity is not None and integrity.violations:
        found, sentence = _integrity_findings(tier, integrity, repro)
        findings += found
        failures.append(sentence)
    elif integrity is not None and integrity.status == "failed":
        invalid.append(
            f"the integrity check failed without naming a violation ({integrity.note or 'no note'})"
        )
    elif policy.require_integrity and (integrity is None or integrity.status != "passed"):
        state = "did not run" if integrity is None else f"ended with status {integrity.status}"
        invalid.append(f"the integrity check {state}, so lost or leaked writes cannot be ruled out")

    # 3. Requests that fail even when replayed alone: bugs, whatever the load.
    bugs = [r for r in tier.replayed_errors if r.still_failing]
    for endpoint, group in _by_endpoint(bugs).items():
        findings.append(_bug_finding(tier, endpoint, group, policy, repro))
    if bugs:
        names = sorted({r.sample.endpoint for r in bugs})
        failures.append(
            f"{_names(names)} failed with server errors even when replayed alone (a bug)"
        )

    judged = False
    worst_rate: float | None = None
    worst_latency: tuple[str, float, float] | None = None
    error_failures: set[str] = set()
    if steady is None:
        if where is None or not nominal:
            invalid.append(tier.reason or "no steady window was measured")
    elif saturated or crowded_miss:
        saturated_at = len(findings)  # its finding goes here once we know whether the target was slower
        invalid.append(_unusable_window(steady, crowded_miss))
        # Server errors are the target's own answer even when the generator struggles.
        for e in steady.endpoints:
            server = _server_errors(e)
            if (
                e.requests
                and server / e.requests > policy.max_error_rate
                and _error_rate_judged(policy, server)
            ):
                findings.append(_errors_finding(tier, steady, e, policy, repro, server_only=True))
                failures.append(
                    f"{e.name} answered {_pct(server / e.requests)} of requests with server errors, "
                    f"over the {_pct(policy.max_error_rate)} budget"
                )
                error_failures.add(e.name)
        # A saturated generator adds at most its own event-loop lag to each service time. A
        # median service time above the p95 limit by more than that lag is the target's own.
        # Other work on the machine (or steal) has no such bound: it slows the target itself.
        lag = steady.generator.loop_lag_max_ms
        judge_service = not steady.generator.crowding_slowed_target
        target_slower = False
        for e in sorted(steady.endpoints, key=lambda e: e.name) if judge_service else ():
            slo = _slo_for(policy, e.name)
            if e.requests >= policy.min_requests_for_p50 and e.service.p50_ms - lag > slo.p95_ms:
                breach = [("p50", e.service.p50_ms, slo.p95_ms)]
                finding = _latency_finding(tier, steady, e, slo, breach, 0.0, policy, repro)
                findings.append(
                    dataclasses.replace(
                        finding,
                        detail=finding.detail
                        + f" The load generator was saturated, but its event loop never lagged more than "
                        f"{_ms(lag)} ms, and the median service time ({_ms(e.service.p50_ms)} ms) exceeds "
                        "the limit by more than that: this slowness is the target's.",
                        evidence={**finding.evidence, "generator_loop_lag_max_ms": lag},
                    )
                )
                failures.append(
                    f"{e.name} median service time was {_ms(e.service.p50_ms)} ms with a saturated generator "
                    f"lagging at most {_ms(lag)} ms, over its p95 SLO of {_ms(slo.p95_ms)} ms"
                )
                target_slower = True
        findings.insert(saturated_at, _saturated_finding(tier, steady, reproduce, target_slower))
    elif tier.status == "invalid" and not (where is not None and not nominal):
        # The stage says the measurement is unusable (interrupted, the load engine failed, ...).
        invalid.append(tier.reason or "the load stage marked the measurement invalid")
    elif not (where is not None and nominal):
        judged = True
        outcome = (
            crowded_outcome
            if crowded_outcome is not None
            else _judge_steady(tier, steady, policy, noise_floor, repro)
        )
        findings += outcome.findings
        failures += outcome.failures
        notes += outcome.notes
        if beyond_noise:
            notes.append(
                f"At {n} customers the machine was busy ({_busy(steady.generator)}) and the generator "
                f"ran up to {_ms(steady.generator.loop_lag_max_ms)} ms late; the SLO misses named are "
                "larger than twice that, the most it could add, so they are the target's."
            )
        elif steady.generator.crowded:
            notes.append(
                f"At {n} customers the machine was busy ({_busy(steady.generator)}); every SLO held "
                "anyway, so the latency reported is an upper bound on the target's."
            )
        error_failures = {f.endpoint or "" for f in outcome.findings if f.category == "slo-errors"}
        worst_rate = steady.error_rate
        worst_latency = _worst_latency(steady, policy)
        if worst_latency is None and n >= policy.goal_customers:
            # Small tiers carry little traffic by nature (that is what N customers send), so
            # only the goal and beyond must have enough requests for a p95.
            invalid.append(
                f"no endpoint had the {policy.min_requests_for_p95} requests needed to judge its p95 "
                "at the goal; lengthen the steady window (a longer profile)"
            )

    # 4. Server errors that pass when replayed alone: the target ran out of capacity.
    if steady is not None:
        start = (tier.warmup or steady).started_at
        capacity_errors = [
            r
            for r in tier.replayed_errors
            if _passed_alone(r) and start <= r.sample.at <= steady.ended_at
        ]
        for endpoint, group in _by_endpoint(capacity_errors).items():
            over = endpoint in error_failures
            findings.append(_saturation_errors_finding(tier, endpoint, group, over, policy, repro))
            if not over:
                risks.append(
                    f"At {n} customers {endpoint} already sheds some requests with server errors at "
                    "nominal load (within the error budget, but a sign of saturation)."
                )
        # Past the nominal load (stress steps) errors are the probe doing its job and do not
        # change the verdict; but server errors there that pass alone say which resource runs
        # out first (a pool, a lock timeout), so they are named, as a low finding and a note.
        nominal_endpoints = set(_by_endpoint(capacity_errors))
        stressed = [
            r
            for r in tier.replayed_errors
            if _passed_alone(r) and r.sample.at > steady.ended_at and r.sample.endpoint not in nominal_endpoints
        ]
        for endpoint, group in _by_endpoint(stressed).items():
            findings.append(
                _saturation_errors_finding(tier, endpoint, group, False, policy, repro, stress=True)
            )
            notes.append(
                f"At {n} customers {endpoint} answered server errors once pushed past the tier's load "
                "(they pass when replayed alone): it fails there instead of slowing down."
            )

    if failures:
        status: TierStatus = "failed"
        more = len(failures) - 1
        reason = _sentence(
            failures[0] + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")
        )
    elif invalid:
        status, reason = "invalid", _sentence(invalid[0])
    else:
        status, reason = "passed", "every endpoint met its SLOs and integrity held"
        reason = _sentence(reason)
    return TierAssessment(
        customers=n,
        status=status,
        reason=reason,
        findings=tuple(findings),
        risks=tuple(risks),
        notes=tuple(notes),
        judged=judged,
        worst_error_rate=worst_rate,
        worst_latency=worst_latency,
        integrity_checked=(
            integrity.checked
            if integrity is not None and integrity.status in ("passed", "failed")
            else None
        ),
    )


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return (text[:1].upper() + text[1:] + ".") if text else ""


def _passed_alone(r: ReplayedError) -> bool:
    """The replay alone succeeded. A replay refused as unauthenticated (401/403) proves nothing:
    the request could not be sent as its customer, so it is neither a bug nor a capacity error."""
    return not r.still_failing and r.replay_status not in (401, 403)


def _by_endpoint(replays: Iterable[ReplayedError]) -> dict[str, list[ReplayedError]]:
    groups: dict[str, list[ReplayedError]] = defaultdict(list)
    for r in replays:
        groups[r.sample.endpoint].append(r)
    return dict(sorted(groups.items()))


def _worst_latency(
    steady: PhaseMeasurement, policy: VerdictPolicy
) -> tuple[str, float, float] | None:
    worst: tuple[str, float, float] | None = None
    for e in steady.endpoints:
        if e.requests < policy.min_requests_for_p95:
            continue
        slo = _slo_for(policy, e.name).p95_ms
        if worst is None or e.latency.p95_ms / slo > worst[1] / worst[2]:
            worst = (e.name, e.latency.p95_ms, slo)
    return worst


def _judge_steady(
    tier: TierResult,
    steady: PhaseMeasurement,
    policy: VerdictPolicy,
    noise_floor: NoiseFloor | None,
    repro: str,
    lateness_ms: float = 0.0,
) -> Outcome:
    """SLOs per endpoint on a valid steady window: latency from the intended start, and errors.

    ``lateness_ms``: what a busy machine may have added to each latency through the generator's
    own lateness; a miss must be larger than it, as it must be larger than the noise floor.
    """
    n = tier.customers
    floor = noise_floor.p99_overhead_ms if noise_floor is not None else 0.0
    margin = floor + lateness_ms
    findings: list[Finding] = []
    failures: list[str] = []
    notes: list[str] = []
    no_p95: list[str] = []
    no_p99: list[str] = []
    for e in sorted(steady.endpoints, key=lambda e: e.name):
        slo = _slo_for(policy, e.name)
        checks: list[tuple[str, float, float]] = []
        if e.requests >= policy.min_requests_for_p95:
            checks.append(("p95", e.latency.p95_ms, slo.p95_ms))
        else:
            no_p95.append(e.name)
            if e.requests >= policy.min_requests_for_p50:
                # Too few for a p95, but a median above the p95 limit is a gross failure that a
                # handful of requests shows beyond doubt (half of them over a 1-in-20 limit).
                checks.append(("p50", e.latency.p50_ms, slo.p95_ms))
        if e.requests >= policy.min_requests_for_percentiles:
            checks.append(("p99", e.latency.p99_ms, slo.p99_ms))
        else:
            no_p99.append(e.name)
        breaches: list[tuple[str, float, float]] = []
        for label, value, limit in checks:
            if value <= limit:
                continue
            if value - limit < margin:
                noise = f"the harness's own noise floor ({_ms(floor)} ms at p99)"
                if lateness_ms:
                    noise += f" plus the busy machine's lateness ({_ms(lateness_ms)} ms)"
                notes.append(
                    f"At {n} customers {e.name}'s {label} of {_ms(value)} ms is over its {_ms(limit)} ms "
                    f"SLO by {_ms(value - limit)} ms, less than {noise}: not raised."
                )
                continue
            breaches.append((label, value, limit))
        if breaches:
            findings.append(_latency_finding(tier, steady, e, slo, breaches, floor, policy, repro))
            label, value, limit = breaches[0]
            failures.append(
                f"{e.name} {label} was {_ms(value)} ms, over its "
                + (f"{_ms(limit)} ms SLO" if label != "p50" else f"p95 SLO of {_ms(limit)} ms")
            )
        if e.error_rate > policy.max_error_rate and _error_rate_judged(policy, e.errors):
            findings.append(_errors_finding(tier, steady, e, policy, repro))
            failures.append(
                f"{e.name} failed {_pct(e.error_rate)} of requests, over the {_pct(policy.max_error_rate)} budget"
            )
    tier_rate = steady.error_rate
    if (
        tier_rate > policy.max_error_rate
        and _error_rate_judged(policy, steady.errors)
        and not any(f.category == "slo-errors" for f in findings)
    ):
        findings.append(_errors_finding(tier, steady, None, policy, repro))
        failures.append(
            f"{_pct(tier_rate)} of all requests failed, over the {_pct(policy.max_error_rate)} budget"
        )
    if no_p95:
        notes.append(
            f"At {n} customers the p95 of {_names(no_p95)} was not judged: fewer than "
            f"{policy.min_requests_for_p95} requests each, and a p95 needs at least 10 requests slower than it."
        )
    if no_p99 and len(no_p99) > len(no_p95):
        only = [name for name in no_p99 if name not in no_p95]
        notes.append(
            f"At {n} customers the p99 of {_names(only)} was not judged: fewer than "
            f"{policy.min_requests_for_percentiles} requests each, and a p99 needs at least 10 requests slower than it."
        )
    return Outcome(findings=tuple(findings), failures=tuple(failures), notes=tuple(notes))


def _latency_finding(
    tier: TierResult,
    steady: PhaseMeasurement,
    e: EndpointMeasurement,
    slo: EndpointSlo,
    breaches: list[tuple[str, float, float]],
    floor: float,
    policy: VerdictPolicy,
    repro: str,
) -> Finding:
    n = tier.customers
    label, value, limit = breaches[0]
    share = {"p50": "half of its requests", "p95": "1 request in 20", "p99": "1 request in 100"}[
        label
    ]
    verb = "take" if label == "p50" else "takes"
    queueing = e.latency.p95_ms > 2 * max(e.service.p95_ms, 0.001)
    cause = (
        "Latency from the intended start is far above the service time (send to last byte): requests "
        "waited before being served. Look for a queue in front of the handler: too few server workers, "
        "an exhausted database connection pool, or a lock they all wait on."
        if queueing
        else "The service time itself is high, so the handler is slow: look at its queries (a missing "
        "index, an N+1 query pattern, a query that grows with the customers' data) with the database's "
        "slow-query log or EXPLAIN, and at anything it does per row."
    )
    return make_finding(
        "slo-latency",
        [n, e.name],
        severity="medium" if n > policy.goal_customers else "high",
        title=(
            f"{_label(policy, e.name)} is too slow at {n} customers: {share} {verb} longer than "
            f"{_ms(value)} ms, over its {_ms(limit)} ms limit"
        ),
        detail=(
            f"In the steady window at {steady.offered_rps:.1f} arrivals/s offered ({steady.achieved_rps:.1f} "
            f"achieved), {e.name} served {e.requests} requests with latency measured from each "
            f"request's intended start (coordinated omission corrected): p50 {_ms(e.latency.p50_ms)} ms, "
            f"p95 {_ms(e.latency.p95_ms)} ms, p99 {_ms(e.latency.p99_ms)} ms. Its SLO is p95 <= "
            f"{_ms(slo.p95_ms)} ms and p99 <= {_ms(slo.p99_ms)} ms. Service time p95 was "
            f"{_ms(e.service.p95_ms)} ms. {cause}"
        ),
        evidence={
            "customers": n,
            "requests": e.requests,
            "p50_ms": e.latency.p50_ms,
            "p95_ms": e.latency.p95_ms,
            "p99_ms": e.latency.p99_ms,
            "max_ms": e.latency.max_ms,
            "service_p95_ms": e.service.p95_ms,
            "slo_p95_ms": slo.p95_ms,
            "slo_p99_ms": slo.p99_ms,
            "breached": [b[0] for b in breaches],
            "noise_floor_ms": floor,
            "offered_rps": steady.offered_rps,
        },
        reproduce=repro,
        tier=n,
        endpoint=e.name,
    )


def _errors_finding(
    tier: TierResult,
    steady: PhaseMeasurement,
    e: EndpointMeasurement | None,
    policy: VerdictPolicy,
    repro: str,
    *,
    server_only: bool = False,
) -> Finding:
    n = tier.customers
    if e is None:
        requests, errors = steady.requests, steady.errors
        reasons: dict[str, int] = defaultdict(int)
        for m in steady.endpoints:
            for k, v in m.errors_by_reason.items():
                reasons[k] += v
        by_reason = dict(reasons)
        who = "Requests fail"
    else:
        requests = e.requests
        errors = _server_errors(e) if server_only else e.errors
        by_reason = dict(e.errors_by_reason)
        who = f"{_label(policy, e.name)} fails"
    rate = errors / requests if requests else 0.0
    top = max(by_reason.items(), key=lambda kv: kv[1])[0] if by_reason else "unknown"
    meaning = {
        "http-5": "server errors: see whether they pass when replayed alone (a saturation-errors "
        "finding means capacity: a connection pool, worker timeouts, 'database is locked'; a "
        "property finding means a bug)",
        "timeout": "timeouts: responses slower than the request timeout, usually a queue or a lock "
        "behind the handler",
        "connection": "refused or reset connections: the server's accept backlog or worker limit is "
        "full, or it restarted",
    }
    explain = next((v for k, v in meaning.items() if top.startswith(k)), f"errors of kind {top!r}")
    sample = next((s for s in steady.error_samples if e is None or s.endpoint == e.name), None)
    return make_finding(
        "slo-errors",
        [n, e.name if e is not None else "all"],
        severity="medium" if n > policy.goal_customers else "high",
        title=(
            f"{who} too often at {n} customers: {_pct(rate)} "
            f"{'got server errors' if server_only else 'failed'}, over the {_pct(policy.max_error_rate)} budget"
        ),
        detail=(
            f"In the steady window at {steady.offered_rps:.1f} req/s, {errors} of {requests} requests "
            f"{'were answered with 5xx' if server_only else 'failed'} (by reason: "
            f"{', '.join(f'{k} {v}' for k, v in sorted(by_reason.items())) or 'none recorded'}). "
            f"Most are {explain}."
            + (
                f" Example: {sample.method} {sample.url} -> {sample.status or sample.reason}: "
                f"{sample.body_excerpt[:200]}"
                if sample is not None
                else ""
            )
            + (
                " The generator was saturated or the machine busy during this tier, so only server "
                "errors were counted."
                if server_only
                else ""
            )
        ),
        evidence={
            "customers": n,
            "requests": requests,
            "errors": errors,
            "error_rate": rate,
            "max_error_rate": policy.max_error_rate,
            "errors_by_reason": by_reason,
        },
        reproduce=repro,
        tier=n,
        endpoint=e.name if e is not None else None,
    )


def _utc(at: float) -> str:
    """A wall-clock time for a finding: ``2026-11-23 10:15:02 UTC``."""
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _unavailable_finding(
    tier: TierResult, where: str, nominal: bool, beyond_goal: bool, repro: str
) -> Finding:
    n = tier.customers
    phases = [p for p in (tier.warmup, tier.steady, *tier.stress) if p is not None]
    conn = sum(_connection_errors(p) for p in phases)
    first = min(
        (s.at for p in phases for s in p.error_samples if s.reason.startswith("connection")),
        default=None,
    )
    when = f", first refused connection at {_utc(first)}" if first is not None else ""
    if nominal:
        title = f"The service stopped answering at {n} customers' load"
        severity: Severity = "high" if beyond_goal else "critical"
    else:
        title = (
            f"The service crashed when pushed past its {n}-customer load instead of slowing down"
        )
        severity = "medium"
    return make_finding(
        "target-unavailable",
        [n],
        severity=severity,
        title=title,
        detail=(
            f"The target stopped answering during {where} of the {n}-customer tier "
            f"({conn} connection errors{when}; stage note: {tier.reason or 'none'}). A service under too much "
            "load should slow down or shed load with 503s, not disappear. Check the target's log and exit "
            "status: an out-of-memory kill (dmesg, container OOM events, the RSS chart), an unhandled "
            "exception in a worker, or a full accept backlog refusing connections."
        ),
        evidence={
            "customers": n,
            "where": where,
            "connection_errors": conn,
            "first_connection_error_at": _utc(first) if first is not None else None,
            "tier_reason": tier.reason,
        },
        reproduce=repro,
        tier=n,
    )


def _integrity_findings(
    tier: TierResult, integrity: IntegrityResult, repro: str
) -> tuple[list[Finding], str]:
    n = tier.customers
    by_category: dict[str, list[IntegrityViolation]] = defaultdict(list)
    for v in integrity.violations:
        by_category[_INTEGRITY_CATEGORY.get(v.kind, "integrity-lost-write")].append(v)
    texts = {
        "integrity-lost-write": (
            "Saved data went missing at {n} customers: {k} acknowledged write(s) could not be read back",
            "Every write the service acknowledged must be readable afterwards. Lost writes under "
            "concurrency usually come from a read-modify-write without a transaction or row lock (last "
            "writer wins), an acknowledgement sent before the commit, or a cache that serves stale data "
            "after a write. Look at the handlers that write these records and their transaction scope.",
        ),
        "integrity-duplicate": (
            "Duplicates were created at {n} customers: {k} record(s) exist twice (for example a slot booked twice)",
            "A check-then-insert race: two concurrent requests both see 'free' and both insert. Add a "
            "unique constraint on the natural key (slot, resource) and handle the conflict, or take a "
            "row lock (SELECT ... FOR UPDATE) around the check.",
        ),
        "isolation-leak": (
            "Customers could see each other's data at {n} customers: {k} cross-tenant read(s) succeeded",
            "A request authenticated as one customer read another customer's records (OWASP API1, broken "
            "object-level authorisation). Under load this usually means a query missing its tenant filter, "
            "a cache key without the tenant id, or request context (the current tenant) shared between "
            "concurrent requests through a global or thread-local. Treat it as a security incident.",
        ),
    }
    findings = []
    for category, violations in by_category.items():
        title, cause = texts[category]
        customers = sorted({v.customer for v in violations})
        identifiers = [i for v in violations for i in v.identifiers][:10]
        examples = "; ".join(f"{v.kind} for {v.customer}: {v.detail}" for v in violations[:3])
        findings.append(
            make_finding(
                category,
                [n],
                severity="critical",
                title=title.format(n=n, k=len(violations)),
                detail=f"{cause} Examples: {examples}. {integrity.checked} operations were checked.",
                evidence={
                    "customers": n,
                    "violations": len(violations),
                    "kinds": sorted({v.kind for v in violations}),
                    "affected_customers": customers[:10],
                    "identifiers": identifiers,
                    "checked": integrity.checked,
                },
                reproduce=repro,
                tier=n,
            )
        )
    kinds = sorted({v.kind for v in integrity.violations})
    return (
        findings,
        f"integrity failed with {len(integrity.violations)} violation(s) ({', '.join(kinds)})",
    )


def _bug_finding(
    tier: TierResult, endpoint: str, group: list[ReplayedError], policy: VerdictPolicy, repro: str
) -> Finding:
    s = group[0].sample
    replay = group[0].replay_status or "no answer"
    return make_finding(
        "property",
        [tier.customers, endpoint, "replay"],
        severity="high",
        title=(
            f"{_label(policy, endpoint)} fails with a server error even on its own, with no load: a bug, "
            "not a capacity problem"
        ),
        detail=(
            f"Under load at {tier.customers} customers {s.method} {s.url} answered {s.status or s.reason}"
            f"; replayed alone it answered {replay} again ({len(group)} distinct request(s) like this). "
            "It falsifies the property 'no 5xx on any input', found by the load rather than by the "
            "property checks: more capacity will not fix it. It likely depends on the data the tier "
            "created (pagination past the end, an empty or very long field, a customer with no staff). "
            f"Request body: {s.request_body or '(none)'}. Response excerpt: {s.body_excerpt[:300]}"
        ),
        evidence={
            "customers": tier.customers,
            "method": s.method,
            "url": s.url,
            "status": s.status,
            "replay_status": group[0].replay_status,
            "request_body": s.request_body,
            "body_excerpt": s.body_excerpt[:300],
            "distinct_requests": len(group),
        },
        reproduce=repro,
        tier=tier.customers,
        endpoint=endpoint,
    )


def _saturation_errors_finding(
    tier: TierResult,
    endpoint: str,
    group: list[ReplayedError],
    over_budget: bool,
    policy: VerdictPolicy,
    repro: str,
    stress: bool = False,
) -> Finding:
    s = group[0].sample
    where = "when pushed past the load of" if stress else "under load at"
    return make_finding(
        "saturation-errors",
        [tier.customers, endpoint] + (["stress"] if stress else []),
        severity="low" if stress
        else "high" if over_budget and tier.customers <= policy.goal_customers
        else "medium",
        title=(
            f"{_label(policy, endpoint)} returns server errors {where} {tier.customers} customers "
            "that succeed when retried alone: it runs out of capacity"
        ),
        detail=(
            f"{len(group)} distinct request(s) that failed under load (e.g. {s.method} {s.url} -> "
            f"{s.status}: {s.body_excerpt[:200]}) passed when replayed with no other load, so the code "
            "is right but a resource runs out under concurrency: a database connection pool too small "
            "for the workers, a pool or lock timeout (SQLite 'database is locked'), a worker timeout. "
            "Check the pool sizes and the timeouts against the concurrency the tier reached."
        ),
        evidence={
            "customers": tier.customers,
            "distinct_requests": len(group),
            "statuses": sorted({r.sample.status for r in group}),
            "replay_statuses": sorted({r.replay_status for r in group}),
            "over_error_budget": over_budget,
            "beyond_nominal_load": stress,
        },
        reproduce=repro,
        tier=tier.customers,
        endpoint=endpoint,
    )


def _busy(g: GeneratorHealth) -> str:
    """What kept the machine busy, in a few words."""
    parts = []
    if g.other_cpu_pct is not None and g.other_cpu_pct > 0:
        parts.append(f"other work used {g.other_cpu_pct:.0f}% of a core")
    if g.steal_pct:
        parts.append(f"the hypervisor stole {g.steal_pct:.0f}%")
    if "cpu-wait" in g.crowded_by and g.cpu_wait_pct is not None:
        parts.append(f"the generator waited for a CPU {g.cpu_wait_pct:.0f}% of the time")
    return ", ".join(parts) or "other work"


def _saturated_finding(
    tier: TierResult, steady: PhaseMeasurement, ctx: ReproduceContext, target_slower: bool = False
) -> Finding:
    """``target_slower``: the target's service time exceeded the limit by more than the
    generator's lag could add, so the tier failed on the target's account all the same."""
    g = steady.generator
    suggested = max(2, g.workers * 2)
    judged = (
        "so the tier is marked invalid and its latency is not judged (server errors and integrity still are)"
    )
    if target_slower:
        # Users waiting on a slow target fill the pool (iterations dropped) and a target that takes
        # every core keeps the generator waiting: the overload may well be the target's doing.
        title = (
            f"The load generator fell behind at {tier.customers} customers, but the service's own slowness "
            "there is larger than anything the generator could add"
        )
        fix = "Fix the service's slowness first (the slo-latency finding of this tier), then rerun."
        judged = (
            "so the tier's latency is judged only where the median service time exceeds the limit by more "
            "than the generator's worst lag"
        )
    elif g.held_by_max_rps and g.saturated:
        title = (
            f"The pack's max_rps held back {g.held_by_max_rps} requests at {tier.customers} customers, so that "
            "tier's latency includes the harness's own wait"
        )
        fix = (
            "Lower this tier's load below max_rps (fewer customers, or leave the tier out), or raise "
            "max_rps if whoever runs the target allows it."
        )
    elif g.crowded:
        title = (
            f"The machine was busy during the {tier.customers}-customer tier ({_busy(g)}) and the load "
            "generator fell behind, so that tier's latency says nothing about the service"
            if g.saturated
            else f"The {tier.customers}-customer tier missed its SLOs while the machine was busy "
            f"({_busy(g)}), so the miss cannot be told from the noise"
        )
        fix = (
            "Rerun the audit when nothing else runs on this machine (another load test, a build, a "
            "profiler), or run the generator on a machine of its own (scaleready worker)."
        )
    else:
        title = (
            f"The load generator itself was overloaded at {tier.customers} customers, so that tier's "
            "latency says nothing about the service"
        )
        fix = (
            f"Fix: spread the load over more processes (--workers {suggested}) or run the generator on "
            "another machine than the target (Locust distributed mode)."
        )
    return make_finding(
        "generator-saturated",
        [tier.customers],
        severity="low" if target_slower else "medium",
        title=title,
        detail=(
            f"During the steady window the generator reached {g.cpu_max_pct:.0f}% CPU, its event loop lagged "
            f"{_ms(g.loop_lag_p99_ms)} ms at p99, and {steady.dropped_iterations} of "
            f"{steady.iterations_scheduled} iterations could not start"
            + (f" ({'; '.join(g.reasons)})" if g.reasons else "")
            + ". A generator that cannot run on time sends late and times late: the latency it records "
            f"includes its own waiting, {judged}. {fix}"
        ),
        evidence={
            "customers": tier.customers,
            "cpu_max_pct": g.cpu_max_pct,
            "loop_lag_p99_ms": g.loop_lag_p99_ms,
            "dropped_iterations": steady.dropped_iterations,
            "iterations_scheduled": steady.iterations_scheduled,
            "workers": g.workers,
            "reasons": list(g.reasons),
            "other_cpu_pct": g.other_cpu_pct,
        },
        reproduce=reproduce_command(
            ctx, f"tier:{tier.customers}", workers=None if g.crowded or g.held_by_max_rps else suggested
        ),
        tier=tier.customers,
    )


# --- capacity, contention, coherency ------------------------------------------------------------


def _param(params: dict[str, float], *names: str) -> float | None:
    for name in names:
        value = params.get(name)
        if value is not None and math.isfinite(value):
            return float(value)
    return None


def capacity_findings(
    capacity: CapacityEstimate | None,
    tiers: Sequence[TierResult],
    policy: VerdictPolicy,
    ctx: ReproduceContext,
) -> Outcome:
    """Headroom decides (below 1.0 fails, below ready_headroom is AT RISK); sigma and kappa explain."""
    if (
        capacity is None
        or capacity.method == "none"
        or capacity.confidence == "none"
        or capacity.headroom is None
        or capacity.predicted_customers is None
    ):
        note = f" ({capacity.note})" if capacity is not None and capacity.note else ""
        return Outcome(
            missing=(
                f"Capacity could not be estimated{note}, so the headroom over the goal is unknown.",
            )
        )
    h = capacity.headroom
    goal = policy.goal_customers
    pred = capacity.predicted_customers
    measured = max((t.customers for t in tiers if t.steady is not None), default=goal)
    repro = reproduce_command(ctx, f"tier:{measured}")
    band = (
        f" (between {_about(capacity.low)} and {_about(capacity.high)})"
        if capacity.low is not None and capacity.high is not None
        else ""
    )
    evidence: dict[str, object] = {
        "predicted_customers": pred,
        "low": capacity.low,
        "high": capacity.high,
        "headroom": h,
        "goal_customers": goal,
        "ready_headroom": policy.ready_headroom,
        "method": capacity.method,
        "confidence": capacity.confidence,
        "params": dict(capacity.params),
    }
    basis = (
        f"Estimated by {capacity.method} from the measured throughput ({capacity.confidence} confidence)"
        + (f"; {capacity.note}" if capacity.note else "")
        + "."
    )
    out = Outcome()
    short = _stopped_short(capacity, h)
    if h < policy.ready_headroom and capacity.method == "lower-bound" and short is not None:
        # The floor stops where the measurement did, not where the service did: thin headroom
        # (or none) would be the busy machine, or the pack's own cap, reported as the service's.
        title_tail, why, fix = short
        return Outcome(
            findings=(
                make_finding(
                    "throughput",
                    ["capacity"],
                    severity="info",
                    title=(
                        f"The service carried {_about(pred)} customers' traffic ({h:.1f}x the goal of {goal}); "
                        + title_tail
                    ),
                    detail=f"{basis} {why}, so the headroom is unknown rather than thin. {fix}",
                    evidence=evidence,
                    reproduce=repro,
                ),
            ),
            missing=(
                f"Headroom was measured only up to {h:.2f}x the goal (under {policy.ready_headroom:g}x): "
                f"{title_tail}.",
            ),
        )
    if h < 1.0:
        out += Outcome(
            findings=(
                make_finding(
                    "throughput",
                    ["capacity"],
                    severity="high",
                    title=f"The service can handle about {_about(pred)} customers{band}, below the goal of {goal}",
                    detail=(
                        f"{basis} At the goal's peak traffic the service would be past its capacity: "
                        "latency climbs without bound once arrivals outpace completions. See the "
                        "contention and coherency findings, if any, for what limits it; otherwise "
                        "profile the slowest endpoints at the largest tier."
                    ),
                    evidence=evidence,
                    reproduce=repro,
                ),
            ),
            failures=(
                f"Predicted capacity is about {_about(pred)} customers, below the goal of {goal} (headroom {h:.2f}x).",
            ),
        )
    elif h < policy.ready_headroom:
        out += Outcome(
            findings=(
                make_finding(
                    "throughput",
                    ["capacity"],
                    severity="medium",
                    title=(
                        f"The service can handle about {_about(pred)} customers{band}: only {h:.1f}x the goal "
                        f"of {goal}, less than the {policy.ready_headroom:g}x margin for growth and spikes"
                    ),
                    detail=(
                        f"{basis} It reaches the goal, but a traffic spike or a few months of growth past "
                        "it would exhaust the margin. See the contention and coherency findings for what "
                        "limits it."
                    ),
                    evidence=evidence,
                    reproduce=repro,
                ),
            ),
            risks=(
                f"Headroom is thin: predicted capacity {_about(pred)} customers is {h:.2f}x the goal, under {policy.ready_headroom:g}x.",
            ),
        )
    else:
        out += Outcome(
            findings=(
                make_finding(
                    "throughput",
                    ["capacity"],
                    severity="info",
                    title=f"The service can handle about {_about(pred)} customers{band}, {h:.1f}x the goal of {goal}",
                    detail=basis,
                    evidence=evidence,
                    reproduce=repro,
                ),
            ),
        )
    if capacity.method == "usl":
        out += _usl_findings(capacity, tiers, policy, repro)
    elif h < policy.ready_headroom and _param(capacity.params, "sigma") is not None:
        # Capacity short of the margin needs an explanation even when the estimate is the measured
        # lower bound (no phase past the knee): the USL coefficients fitted to the same points
        # say whether requests queue for one resource (sigma) or interfere (kappa).
        out += _usl_findings(capacity, tiers, policy, repro)
    elif _grounded_contention(capacity.params, policy):
        # Ample headroom, and a fit the capacity model would not extrapolate from (its band was
        # too wide), but whose contention rests on a measured phase past the knee and stands
        # clear of its own error: a serialised resource is a fact about the service worth
        # naming (it caps what more processes or hardware can buy), at low severity.
        out += _usl_findings(capacity, tiers, policy, repro)
    return out


def _stopped_short(capacity: CapacityEstimate, headroom: float) -> tuple[str, str, str] | None:
    """Why the measured floor is the measurement's limit rather than the service's, if it is:
    (the end of a title, the reason, the fix)."""
    busy = _param(capacity.params, "unmeasured_customers")
    if busy is not None:
        return (
            f"the next load, {_about(busy)} customers', was measured on a busy machine",
            "Past that load the SLO was missed while other work took the machine's CPU (or the "
            "hypervisor stole it), so the miss is nobody's",
            "Rerun when the machine is quiet.",
        )
    capped = _param(capacity.params, "max_rps_customers")
    if capped is not None:
        return (
            f"the pack's max_rps kept the load at {_about(capped)} customers' traffic",
            "No load past the pack's target.max_rps was offered, and nothing failed below it",
            "Raise max_rps where whoever runs the target allows it, or accept the headroom as unknown.",
        )
    if headroom < 1.0 and _param(capacity.params, "ceiling_customers") is None:
        # Below the goal with nothing measured failing: the goal's load was simply never
        # offered (an interrupted audit, --only, a tier left out). Not a failure on evidence.
        return (
            "the goal's traffic was never offered at the goal's data volume",
            "No measured phase failed, and none offered the goal's load",
            "Let the audit run every tier up to the goal.",
        )
    return None


def _grounded_contention(params: dict[str, float], policy: VerdictPolicy) -> bool:
    """A fitted sigma over the threshold by two standard errors, with a phase past the knee."""
    sigma = _param(params, "sigma")
    sigma_se = _param(params, "sigma_se")
    past_knee = _param(params, "past_knee_points") or 0.0
    if sigma is None or sigma_se is None or past_knee < 1:
        return False
    return sigma - 2 * sigma_se > policy.contention_sigma


def _usl_findings(
    capacity: CapacityEstimate, tiers: Sequence[TierResult], policy: VerdictPolicy, repro: str
) -> Outcome:
    """Contention (sigma) and coherency (kappa), judged at the largest in-server concurrency measured.

    The USL penalty at concurrency N is sigma*(N-1) + kappa*N*(N-1); sigma dominates when
    sigma >= kappa*N. These findings explain the capacity; they do not change the verdict on their
    own (the headroom does), so their severity follows the headroom.
    """
    sigma = _param(capacity.params, "sigma")
    kappa = _param(capacity.params, "kappa") or 0.0
    if sigma is None:
        return Outcome()
    n_ref = _param(capacity.params, "n_max")  # the largest concurrency the fit saw
    if n_ref is None:
        n_ref = max(
            [p[2] for p in capacity.points]
            + [t.steady.concurrency for t in tiers if t.steady is not None]
            + [0.0]
        )
    n_star = _param(capacity.params, "n_star", "N*", "nstar", "peak_concurrency")
    if n_star is None and kappa > 0:
        n_star = math.sqrt(max(0.0, 1 - sigma) / kappa)
    thin = capacity.headroom is not None and capacity.headroom < policy.ready_headroom
    severity: Severity = "medium" if thin else "low"
    evidence: dict[str, object] = {
        "sigma": sigma,
        "kappa": kappa,
        "n_star": n_star,
        "max_measured_concurrency": n_ref,
        "contention_sigma_threshold": policy.contention_sigma,
        "coherency_reach": policy.coherency_reach,
    }
    findings: list[Finding] = []
    cpu = target_cpu_at_peak(tiers)
    if cpu is not None:
        evidence["target_cpu_pct_at_peak"] = round(cpu.cpu_pct, 1)
        evidence["peak_phase"] = f"{cpu.label} at {cpu.customers} customers"
    if sigma > policy.contention_sigma and sigma >= kappa * n_ref:
        findings.append(
            make_finding(
                "contention",
                ["usl"],
                severity=severity,
                title=(
                    f"Requests queue for a shared resource: about {sigma * 100:.0f}% of each request's work "
                    f"is serialised, which caps throughput at {1 / sigma:.1f}x a single request stream"
                ),
                detail=(
                    f"The Universal Scalability Law fit gives a contention coefficient sigma = {sigma:.3f} "
                    f"(threshold {policy.contention_sigma:g}), dominant over coherency (kappa = {kappa:.2e}) "
                    f"at the {n_ref:.1f} requests in flight measured. Something every request passes through "
                    "one at a time: a global lock, a single database connection or a small pool, the SQLite "
                    "writer lock, a hot row everyone updates. Look at lock waits and pool sizes."
                    + _cpu_reading(cpu)
                ),
                evidence=evidence,
                reproduce=repro,
            )
        )
    if (
        kappa > 0
        and kappa * n_ref > sigma
        and n_star is not None
        and n_ref > 0
        and n_star <= policy.coherency_reach * n_ref
    ):
        findings.append(
            make_finding(
                "coherency",
                ["usl"],
                severity=severity,
                title=(
                    f"Throughput will stop growing and start to fall at about {_about(n_star)} requests in flight, "
                    f"within {policy.coherency_reach:g}x of the load already measured"
                ),
                detail=(
                    f"The Universal Scalability Law fit gives a coherency coefficient kappa = {kappa:.2e}, "
                    f"dominant over contention (sigma = {sigma:.3f}) at the {n_ref:.1f} requests in flight "
                    f"measured, and peak concurrency N* = {n_star:.1f}. Past N*, adding load lowers "
                    "throughput: requests do work that grows with the number of other requests - cache "
                    "invalidation between workers, lock convoys, retries that add load, queries that scan "
                    "what other requests just wrote. Look for per-request work proportional to concurrency."
                ),
                evidence=evidence,
                reproduce=repro,
            )
        )
    return Outcome(findings=tuple(findings))


@dataclass(frozen=True)
class PeakCpu:
    """The target's CPU while it completed the most requests per second."""

    cpu_pct: float  # the target's process tree, 100 = one core
    customers: int
    label: str


def target_cpu_at_peak(tiers: Sequence[TierResult]) -> PeakCpu | None:
    """Mean CPU of the target's processes during the steady window or stress step with the
    highest throughput; None when the harness did not sample the target (``--target``).
    """
    best: tuple[float, PeakCpu] | None = None
    for tier in tiers:
        for phase in (tier.steady, *tier.stress):
            if phase is None:
                continue
            cpu = phase.target_cpu_pct(tier.resources)
            if cpu is None:
                continue
            if best is None or phase.achieved_rps > best[0]:
                best = (phase.achieved_rps, PeakCpu(cpu, tier.customers, phase.label))
    return None if best is None else best[1]


def _cpu_reading(cpu: PeakCpu | None) -> str:
    """What the target's CPU at the throughput peak says about the serialised resource."""
    if cpu is None:
        return ""
    where = f"At the highest throughput measured ({cpu.label} at {cpu.customers} customers) the target used"
    if cpu.cpu_pct < WAITING_CPU_PCT:
        return (
            f" {where} only {cpu.cpu_pct:.0f}% CPU (100% = one core): its requests were waiting, not "
            "computing, so the resource is a lock, a pool or I/O that one request holds at a time."
        )
    return (
        f" {where} {cpu.cpu_pct:.0f}% CPU (100% = one core). If that is every core its processes can "
        "use (one Python or Node.js process runs on one core), the serialised resource is that CPU "
        "itself, and more worker processes raise the cap; if not, look for a lock held while computing."
    )


# --- data volume ------------------------------------------------------------------------------


def trend_findings(
    trends: Sequence[EndpointTrend], policy: VerdictPolicy, ctx: ReproduceContext
) -> Outcome:
    """An endpoint growing linearly or faster with data and predicted to break its SLO before
    ``trend_break_factor`` x the goal is AT RISK even while it still meets the SLO at the goal.

    A predicted break further out, or super-linear growth with no predicted break, is a ``low``
    finding that does not change the verdict.
    """
    limit = policy.trend_break_factor * policy.goal_customers
    findings: list[Finding] = []
    risks: list[str] = []
    for trend in sorted(trends, key=lambda t: t.endpoint):
        if trend.growth_class not in ("linear", "super-linear") or not trend.points:
            continue
        last_n, last_ms = max(trend.points)
        label = _label(policy, trend.endpoint)
        slo = (
            trend.slo_p95_ms
            if trend.slo_p95_ms is not None
            else _slo_for(policy, trend.endpoint).p95_ms
        )
        breaks = trend.breaks_at_customers
        cause = (
            "Linear growth with the data usually means a scan: a query without an index on the filter "
            "(tenant id, date), or a list endpoint returning every row instead of a page."
            if trend.growth_class == "linear"
            else "Faster-than-linear growth usually means work per row that itself grows: an N+1 query "
            "pattern over a growing list, a nested loop, a sort without an index."
        )
        evidence: dict[str, object] = {
            "points": [list(p) for p in trend.points],
            "slope": trend.slope,
            "slope_low": trend.slope_low,
            "slope_high": trend.slope_high,
            "growth_class": trend.growth_class,
            "breaks_at_customers": breaks,
            "slo_p95_ms": slo,
            "goal_customers": policy.goal_customers,
            "fixed_ms": trend.fixed_ms,
        }
        shape = f"log-log slope {trend.slope:.2f}" if trend.slope is not None else "growth"
        detail = (
            f"The service time p95 of {trend.endpoint} at nominal load grows with the customers' data "
            f"({shape}: {', '.join(f'{n} -> {_ms(ms)} ms' for n, ms in trend.points)}"
            + (f"; fitted above the {_ms(trend.fixed_ms)} ms every request pays" if trend.fixed_ms else "")
            + f"). {cause} "
            f"Run EXPLAIN on its queries at the largest tier and count queries per request."
        )
        repro = reproduce_command(ctx, f"tier:{last_n}")
        if breaks is not None:
            soon = breaks < limit
            findings.append(
                make_finding(
                    "data-volume-scaling",
                    [trend.endpoint],
                    severity=("high" if breaks <= policy.goal_customers else "medium")
                    if soon
                    else "low",
                    title=(
                        f"{label} gets slower as you add customers: at {last_n} it takes {_ms(last_ms)} ms "
                        f"and will break its {_ms(slo)} ms SLO at about {_about(breaks)}"
                    ),
                    detail=detail
                    + (
                        ""
                        if soon
                        else f" That is beyond {policy.trend_break_factor:g}x the goal, so it does not "
                        "change the verdict yet."
                    ),
                    evidence=evidence,
                    reproduce=repro,
                    endpoint=trend.endpoint,
                )
            )
            if soon:
                risks.append(
                    f"{trend.endpoint} grows {trend.growth_class} with data and is predicted to break its "
                    f"SLO at about {_about(breaks)} customers, before {policy.trend_break_factor:g}x the goal."
                )
        elif trend.growth_class == "super-linear":
            findings.append(
                make_finding(
                    "data-volume-scaling",
                    [trend.endpoint],
                    severity="low",
                    title=(
                        f"{label} gets slower faster than the data grows: at {last_n} customers it takes "
                        f"{_ms(last_ms)} ms"
                    ),
                    detail=detail + " No SLO crossing could be predicted from the fit.",
                    evidence=evidence,
                    reproduce=repro,
                    endpoint=trend.endpoint,
                )
            )
    return Outcome(findings=tuple(findings), risks=tuple(risks))


# --- resource leak ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _LineFit:
    slope: float  # MB per request
    r2: float
    n: int


def _fit_grouped(points: Sequence[tuple[int, float, float]]) -> _LineFit | None:
    """A line with one intercept per group (tier) and a common slope: (group, x, y) points.

    Memory that steps up between tiers (the next tier's data provisioned, while no load runs)
    is absorbed by the intercepts; only growth *while requests are served* makes the slope.
    """
    groups: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for group, x, y in points:
        groups[group].append((x, y))
    sxx = sxy = syy = 0.0
    for members in groups.values():
        mx = sum(x for x, _ in members) / len(members)
        my = sum(y for _, y in members) / len(members)
        sxx += sum((x - mx) ** 2 for x, _ in members)
        sxy += sum((x - mx) * (y - my) for x, y in members)
        syy += sum((y - my) ** 2 for _, y in members)
    if sxx == 0:
        return None
    slope = sxy / sxx
    r2 = (sxy * sxy) / (sxx * syy) if syy > 0 else 0.0
    return _LineFit(slope=slope, r2=r2, n=len(points))


def _sustained_load(tier: TierResult, at: float, max_p95_ms: float) -> bool:
    """Whether a sample was taken during a measured load phase the target sustained: the steady
    window or a stress step whose p95 (from the intended start) met the SLO. Warm-up is left out
    (caches and pools fill then), and so is overload: requests queued in the target hold memory
    that depends on how many wait, not on how many were served. A tier without phases keeps all."""
    phases = [p for p in (tier.steady, *tier.stress) if p is not None]
    if tier.warmup is None and not phases:
        return True
    return any(
        p.started_at <= at <= p.ended_at and (p.latency.count == 0 or p.latency.p95_ms <= max_p95_ms)
        for p in phases
    )


def _rss_series(tiers: Sequence[TierResult], max_p95_ms: float = math.inf) -> list[tuple[int, float, float]]:
    """(tier, requests served since the first sample, RSS MB) for the samples taken under a
    sustained load, across tiers, counters made cumulative."""
    series: list[tuple[int, float, float]] = []
    offset = 0.0
    previous = 0.0
    for tier in sorted(tiers, key=lambda t: t.customers):
        for sample in sorted(tier.resources, key=lambda s: s.at):
            raw = float(sample.requests_so_far)
            if raw < previous:  # a per-tier counter starting again from zero
                offset += previous
            previous = raw
            if _sustained_load(tier, sample.at, max_p95_ms):
                series.append((tier.customers, offset + raw, sample.rss_mb))
    return series


def resource_leak(
    tiers: Sequence[TierResult], policy: VerdictPolicy, ctx: ReproduceContext
) -> Outcome:
    """The target's RSS growing steadily with requests served, above the threshold, is a leak.

    The samples taken under a load the target sustained (steady windows and stress steps that
    met the default p95 SLO; warm-up and overload left out) of all tiers are put on one axis
    (requests served, counted by the load engine). The first third of it is dropped as warm-up
    (caches, connection pools, the allocator's arenas filling), and a line is fitted to the rest
    with one intercept per tier: memory that steps up between tiers, while the next tier's data
    is provisioned and no load runs, is data, not a leak; only growth while requests are served
    counts. A leak is raised only when all hold:

    * the slope is at least ``leak_mb_per_10k_requests``;
    * the line explains the data (R^2 >= ``leak_min_r2``): steady growth, not noise or a step;
    * the growth persists to the end: the last half of the fitted samples grows at least half as
      fast as the whole (a cache that filled and then plateaued fails this);
    * the total growth over the fitted span is at least ``leak_min_growth_mb`` (RSS jitters by a
      few MB as the allocator and the garbage collector work), or at least
      ``leak_min_growth_mb_straight`` when the line is very straight (R^2 >=
      ``leak_straight_r2``): a shorter run still shows a per-request leak, while bounded caches
      filling up grow in steps.
    """
    series = _rss_series(tiers, max_p95_ms=policy.default_slo.p95_ms)
    if not series:
        return Outcome()
    if all(x == 0 for _, x, _ in series):
        return Outcome(
            notes=(
                "The target's memory was sampled without request counts, so leaks were not judged.",
            )
        )
    lo, hi = series[0][1], max(x for _, x, _ in series)
    cut = lo + (hi - lo) / 3
    judged = [(g, x, y) for g, x, y in series if x >= cut]
    span = (max(x for _, x, _ in judged) - min(x for _, x, _ in judged)) if judged else 0.0
    if len(judged) < policy.leak_min_samples or span < 10_000:
        return Outcome(
            notes=(
                f"Memory growth was not judged: {len(judged)} samples over {span:.0f} requests after warm-up, "
                f"fewer than {policy.leak_min_samples} samples or 10000 requests.",
            )
        )
    fit = _fit_grouped(judged)
    tail = _fit_grouped(judged[len(judged) // 2 :])
    if fit is None or tail is None:
        return Outcome()
    per_10k = fit.slope * 10_000
    growth = fit.slope * span
    steady = tail.slope >= 0.5 * fit.slope
    if not (
        per_10k >= policy.leak_mb_per_10k_requests
        and fit.r2 >= policy.leak_min_r2
        and steady
        and (
            growth >= policy.leak_min_growth_mb
            or (growth >= policy.leak_min_growth_mb_straight and fit.r2 >= policy.leak_straight_r2)
        )
    ):
        return Outcome()
    # Project at the goal's traffic, from the per-customer rate the tiers offered.
    rates = [t.offered_rps / t.customers for t in tiers if t.customers and t.offered_rps]
    goal_rps = (sum(rates) / len(rates)) * policy.goal_customers if rates else None
    per_hour = per_10k * goal_rps * 3600 / 10_000 if goal_rps else None
    largest = max(t.customers for t in tiers)
    finding = make_finding(
        "resource-leak",
        ["memory"],
        severity="high",
        title=(
            f"The service's memory grows with every request, about {per_10k:.1f} MB per 10000 requests"
            + (f" ({_about(per_hour)} MB an hour at the goal's traffic)" if per_hour else "")
            + ": it will run out of memory unless restarted"
        ),
        detail=(
            f"Across {len(judged)} samples after warm-up spanning {span:.0f} requests, the target's RSS grew "
            f"{growth:.0f} MB on a straight line (R^2 {fit.r2:.2f}; threshold {policy.leak_mb_per_10k_requests:g} "
            "MB per 10000 requests) and kept growing to the end of the run, so it is not a cache warming up. "
            "Something keeps a reference per request: an unbounded cache or memo without eviction, a list "
            "of requests or sessions appended to, objects registered on a global and never removed. Take "
            "two heap snapshots (tracemalloc) some thousand requests apart and diff them."
        ),
        evidence={
            "mb_per_10k_requests": per_10k,
            "r2": fit.r2,
            "samples": len(judged),
            "requests_span": span,
            "growth_mb": growth,
            "tail_mb_per_10k_requests": tail.slope * 10_000,
            "threshold_mb_per_10k_requests": policy.leak_mb_per_10k_requests,
            "goal_rps": goal_rps,
            "mb_per_hour_at_goal": per_hour,
        },
        reproduce=reproduce_command(ctx, f"tier:{largest}"),
    )
    return Outcome(
        findings=(finding,),
        failures=(
            f"The target's memory grows steadily with requests served: {per_10k:.1f} MB per 10000 requests (a leak).",
        ),
    )
