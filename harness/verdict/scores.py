"""Five 0..100 area scores, each with the sentence saying how it was made (None: not measured)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from harness.records import AreaScore, CapacityEstimate, Finding, GateResult, PropertiesResult
from harness.verdict.outcome import TierAssessment
from harness.verdict.policy import VerdictPolicy
from harness.verdict.wording import lower_first

__all__ = ["area_scores", "lognormal_score"]


def lognormal_score(value: float, *, median: float, p10: float) -> float:
    """Lighthouse's curve for "lower is better": `median` scores 0.5, `p10` scores 0.9.

    score = 1 - Phi((ln value - ln median) / s), with s chosen so that p10 lands on 0.9. The
    curve is flat near zero and near the far tail, and steepest around the median.
    """
    if not 0 < p10 < median:
        raise ValueError(
            f"lognormal_score: p10 ({p10}) must be above 0 and below the median ({median})"
        )
    if value <= 0:
        return 1.0
    s = (math.log(median) - math.log(p10)) / 1.2815515655446004  # Phi^-1(0.9)
    z = (math.log(value) - math.log(median)) / s
    return 0.5 * math.erfc(z / math.sqrt(2))


def _pct100(x: float) -> float:
    return round(100.0 * x, 1)


def area_scores(
    *,
    gate: GateResult | None,
    properties: PropertiesResult | None,
    assessments: Sequence[TierAssessment],
    capacity: CapacityEstimate | None,
    findings: Sequence[Finding],
    policy: VerdictPolicy,
) -> tuple[AreaScore, ...]:
    """Five 0..100 scores (None when not measured), each with a sentence saying how it was made.

    * correctness: share of regression tests and properties that passed; any failure caps it at 50.
    * robustness: the worst steady-window error rate of the judged tiers on a log-normal curve
      (the budget scores 50, a tenth of it 90); the target going away under nominal load scores 0,
      and a leak, server errors or bugs found by replay cap it at 50.
    * latency: the worst endpoint's p95 / SLO p95 on a log-normal curve (at the SLO 50, at half
      of it 90), over the judged tiers at or below the goal.
    * capacity: headroom on a log-normal curve of 1/headroom (headroom 1.0 scores 50,
      `ready_headroom` scores 90).
    * integrity: 100 when every check held, 0 when any write was lost, duplicated or leaked.
    """
    goal = policy.goal_customers
    judged = [a for a in assessments if a.judged and a.customers <= goal]
    return (
        _correctness(gate, properties, findings),
        _robustness(judged, findings, policy),
        _latency(judged),
        _capacity(capacity, policy),
        _integrity(assessments, findings),
    )


def _correctness(
    gate: GateResult | None, props: PropertiesResult | None, findings: Sequence[Finding]
) -> AreaScore:
    passed = failed = 0
    parts = []
    if gate is not None and gate.status in ("passed", "failed"):
        passed += gate.passed
        failed += gate.failed + gate.errors
        parts.append(f"{gate.passed} of {gate.passed + gate.failed + gate.errors} regression tests")
    if props is not None and props.status in ("passed", "failed"):
        bad = max(props.failed, len(props.falsified))
        passed += props.passed
        failed += bad
        parts.append(f"{props.passed} of {props.passed + bad} properties")
    checks = props.openapi if props is not None else None
    if checks is not None and checks.status in ("passed", "failed"):
        passed += checks.passed
        failed += checks.operations - checks.passed
        parts.append(f"{checks.passed} of {checks.operations} operations under Schemathesis's checks")
    bugs = sum(1 for f in findings if f.category == "property" and f.id.endswith(":replay"))
    failed += bugs
    if passed + failed == 0:
        return AreaScore(
            "correctness", None, "Not measured: neither the regression gate nor the properties ran."
        )
    score = _pct100(passed / (passed + failed))
    text = " and ".join(parts) + " passed" if parts else "No tests ran"
    if bugs:
        text += f"; {bugs} request(s) failed with server errors even alone"
    if failed:
        score = min(score, 50.0)
        text += "; any failure caps the score at 50"
    return AreaScore("correctness", score, text + ".")


def _robustness(
    judged: Sequence[TierAssessment], findings: Sequence[Finding], policy: VerdictPolicy
) -> AreaScore:
    down = [
        f
        for f in findings
        if f.category == "target-unavailable" and f.severity in ("critical", "high")
    ]
    if down:
        return AreaScore("robustness", 0.0, f"0 because {lower_first(down[0].title)}.")
    if not judged:
        return AreaScore(
            "robustness",
            None,
            "Not measured: no tier at or below the goal had a valid steady window.",
        )
    worst = max(judged, key=lambda a: a.worst_error_rate or 0.0)
    rate = worst.worst_error_rate or 0.0
    budget = policy.max_error_rate
    if budget > 0:
        score = _pct100(lognormal_score(rate / budget, median=1.0, p10=0.1))
    else:
        score = 100.0 if rate == 0 else 0.0
    text = (
        f"Worst error rate {rate * 100:.2f}% at {worst.customers} customers against a "
        f"{budget * 100:.2g}% budget (the budget scores 50, a tenth of it 90)"
    )
    capping = [
        f
        for f in findings
        if f.category in ("resource-leak", "saturation-errors")
        or (f.category == "property" and f.id.endswith(":replay"))
    ]
    if capping:
        score = min(score, 50.0)
        text += f"; capped at 50 because {lower_first(capping[0].title)}"
    return AreaScore("robustness", score, text + ".")


def _latency(judged: Sequence[TierAssessment]) -> AreaScore:
    rated: list[tuple[int, tuple[str, float, float]]] = [
        (a.customers, a.worst_latency) for a in judged if a.worst_latency is not None
    ]
    if not rated:
        return AreaScore(
            "latency", None, "Not measured: no valid tier at or below the goal had enough requests."
        )
    n, (endpoint, p95, slo) = max(rated, key=lambda r: r[1][1] / r[1][2])
    score = _pct100(lognormal_score(p95 / slo, median=1.0, p10=0.5))
    return AreaScore(
        "latency",
        score,
        f"Slowest endpoint against its SLO: {endpoint} at {n} customers, p95 {p95:.0f} ms of {slo:.0f} ms "
        "(at the SLO the score is 50, at half of it 90).",
    )


def _capacity(capacity: CapacityEstimate | None, policy: VerdictPolicy) -> AreaScore:
    if (
        capacity is None
        or capacity.headroom is None
        or capacity.method == "none"
        or capacity.confidence == "none"
    ):
        return AreaScore("capacity", None, "Not measured: capacity could not be estimated.")
    h = capacity.headroom
    # ready_headroom may be 1.0 (the pack's choice); the curve needs p10 below the median.
    p10 = 1 / max(policy.ready_headroom, 1.1)
    score = 0.0 if h <= 0 else _pct100(lognormal_score(1 / h, median=1.0, p10=p10))
    return AreaScore(
        "capacity",
        score,
        f"Predicted capacity is {h:.2f}x the goal of {policy.goal_customers} customers "
        f"({capacity.confidence} confidence; 1.0x scores 50, {policy.ready_headroom:g}x scores 90).",
    )


def _integrity(assessments: Sequence[TierAssessment], findings: Sequence[Finding]) -> AreaScore:
    violations = [
        f
        for f in findings
        if f.category in ("integrity-lost-write", "integrity-duplicate", "isolation-leak")
    ]
    if violations:
        return AreaScore(
            "integrity",
            0.0,
            f"0 because {lower_first(violations[0].title)}; any lost or leaked write fails.",
        )
    checked = [a for a in assessments if a.integrity_checked is not None]
    if not checked:
        return AreaScore("integrity", None, "Not measured: no tier checked integrity.")
    unchecked = [a.customers for a in assessments if a.integrity_checked is None]
    total = sum(a.integrity_checked or 0 for a in checked)
    return AreaScore(
        "integrity",
        100.0,
        f"No acknowledged write was lost, duplicated or leaked in {total} operations checked at "
        f"{', '.join(str(a.customers) for a in checked)} customers"
        + (f" (not checked at {', '.join(map(str, unchecked))})" if unchecked else "")
        + ".",
    )
