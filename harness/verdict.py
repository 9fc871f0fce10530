"""The verdict: READY, AT RISK, NOT READY or INCONCLUSIVE, from the audit's records.

`judge` runs the rules of `harness.findings` over the stage records and combines what they
concluded. Precedence, strongest first::

    NOT READY      a definite failure on valid evidence: a failing regression test, a falsified
                   property (or a request that fails even alone), an SLO miss (latency or errors)
                   on a valid tier at or below the goal, an integrity violation, the target going
                   away under a tier's nominal load, capacity below the goal (headroom < 1.0), a
                   steady memory leak.
    INCONCLUSIVE   something the verdict needs is missing or invalid: the gate or the properties
                   did not run, a tier at or below the goal was invalid (saturated generator,
                   an SLO missed while the machine was busy with other work, interrupted,
                   integrity not checked) or skipped, no tier reached the goal, capacity could
                   not be estimated (or looked thin only where a busy machine hid the rest), or
                   the audit was partial.
    AT RISK        everything needed passed, but: headroom under `ready_headroom`, an endpoint
                   predicted to break its SLO before `trend_break_factor` x the goal, a tier
                   beyond the goal failed, server errors at nominal load that pass alone (within
                   the budget), a crash when pushed past a tier's load, a baseline regression.
    READY          none of the above.

A NOT READY backed by valid evidence beats INCONCLUSIVE: a lost write is lost whether or not the
next tier could be measured, and saying "inconclusive" would hide it. Missing evidence beats AT
RISK: "everything passes, but" needs everything to have been measured. The harness never says
READY on missing evidence.

Thresholds (the defaults of `VerdictPolicy`; each has a reason next to it). Pure: no I/O, no
printing, no Locust or matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from harness.findings import (
    Outcome,
    TierAssessment,
    assess_tier,
    capacity_findings,
    gate_findings,
    properties_findings,
    resource_leak,
    trend_findings,
)
from harness.records import (
    AreaScore,
    CapacityEstimate,
    EndpointTrend,
    Finding,
    GateResult,
    NoiseFloor,
    PropertiesResult,
    TierResult,
    TierStatus,
    Verdict,
)

__all__ = [
    "EndpointSlo",
    "Judgement",
    "ReproduceContext",
    "VerdictPolicy",
    "area_scores",
    "judge",
    "lognormal_score",
    "tier_status",
]

_SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


@dataclass(frozen=True)
class EndpointSlo:
    """Latency objectives of one endpoint, from the intended start of each request."""

    p95_ms: float
    p99_ms: float


@dataclass(frozen=True)
class VerdictPolicy:
    """What counts as passing. Built from the pack's `[slo]` table; the rest are harness defaults."""

    default_slo: EndpointSlo
    endpoint_slos: Mapping[str, EndpointSlo]  # by Locust request name, e.g. "GET /slots"
    max_error_rate: float  # e.g. 0.01; a rate exactly at the budget passes
    goal_customers: int  # e.g. 5000
    # READY needs predicted capacity / goal >= this: room for a spike and a few months of growth.
    ready_headroom: float = 1.5
    # A p99 is judged only on >= 1000 requests: then it rests on at least 10 requests slower than
    # it. Below that one slow request moves it (and Locust-era reports judged p99s of 50 requests).
    min_requests_for_percentiles: int = 1000
    # The same rule for the p95: 10 slower requests need 200.
    min_requests_for_p95: int = 200
    # Below that, from 10 requests on, only a gross failure is judged: a median over the p95
    # limit (5 of 10 requests over a 1-in-20 limit does not happen by chance). Small tiers carry
    # little traffic by nature; the tier at the goal must have enough for a p95 or it is invalid.
    min_requests_for_p50: int = 10
    # An error rate over the budget is judged once it rests on 5 errors: at a small tier 2 errors
    # in 120 requests happen a third of the time at a 1 % rate; 5 almost never.
    min_errors_for_error_rate: int = 5
    # Memory leak: 1 MB per 10k requests is ~100 bytes kept per request; at 100 req/s that is
    # 36 MB an hour, ~860 MB a day: a 1 GB container dies daily. Smaller slopes drown in the
    # allocator's jitter over an audit's ~10^5 requests. The growth must also be a good straight
    # line (R^2), persist to the end of the run, and total at least 20 MB; or at least 10 MB on
    # a very straight line (R^2 0.9): bounded caches still filling (SQLite's page cache on each
    # pooled connection) grow in steps and bends, a per-request leak on a line.
    leak_mb_per_10k_requests: float = 1.0
    leak_min_growth_mb: float = 20.0
    leak_min_r2: float = 0.8
    leak_min_growth_mb_straight: float = 10.0
    leak_straight_r2: float = 0.9
    leak_min_samples: int = 6
    # USL contention: sigma = 0.05 means 5 % of each request's work is serialised, which caps
    # throughput at 1/sigma = 20x a single request stream. Raised above it when sigma dominates.
    contention_sigma: float = 0.05
    # USL coherency: raised when kappa dominates and throughput peaks (N*) within this factor of
    # the largest concurrency measured: retrograde scaling is close, not a distant extrapolation.
    coherency_reach: float = 2.0
    # Data-volume trends: an endpoint predicted to break its SLO before this x the goal is AT RISK.
    trend_break_factor: float = 2.0
    # READY needs integrity checked at every tier, and a valid tier at or above the goal
    # (otherwise readiness at the goal rests on extrapolation alone).
    require_integrity: bool = True
    require_goal_tier: bool = True
    # Human names for endpoints in titles, e.g. {"GET /patients": "Patient search"}.
    endpoint_labels: Mapping[str, str] = field(default_factory=dict)

    def slo_for(self, endpoint: str) -> EndpointSlo:
        return self.endpoint_slos.get(endpoint, self.default_slo)


@dataclass(frozen=True)
class ReproduceContext:
    """What a finding's reproduce command needs to rerun one stage or tier."""

    pack: str  # e.g. "scenarios/booking"
    profile: str
    target_url: str | None
    started_by_harness: bool
    extra_args: str = ""  # e.g. "--seed 42 --flaw n-plus-one"


@dataclass(frozen=True)
class Judgement:
    findings: tuple[Finding, ...]  # most severe first, then in the order of the audit's flow
    verdict: Verdict
    ready_up_to: int | None  # the largest tier such that it and every smaller tier passed
    tier_status: Mapping[int, TierStatus]
    scores: tuple[AreaScore, ...]
    reasons: tuple[str, ...]  # the deciding sentences first, then the other conclusions, then notes
    tier_reasons: Mapping[int, str] = field(default_factory=dict)  # one sentence per tier status


def tier_status(
    tier: TierResult, policy: VerdictPolicy, *, noise_floor: NoiseFloor | None = None
) -> tuple[TierStatus, str]:
    """A tier's status (passed, failed, invalid, skipped) and one sentence saying why."""
    placeholder = ReproduceContext(pack="", profile="", target_url=None, started_by_harness=True)
    a = assess_tier(tier, policy, noise_floor=noise_floor, reproduce=placeholder)
    return a.status, a.reason


def judge(
    *,
    gate: GateResult | None,
    properties: PropertiesResult | None,
    tiers: Sequence[TierResult],
    capacity: CapacityEstimate | None,
    trends: Sequence[EndpointTrend],
    noise_floor: NoiseFloor | None,
    policy: VerdictPolicy,
    reproduce: ReproduceContext,
    partial: bool = False,
    extra_findings: Sequence[Finding] = (),
) -> Judgement:
    """Findings, verdict, per-tier status and area scores for one audit.

    `extra_findings` are findings other analyses made (the history's `baseline-regression`): a
    baseline regression makes the verdict AT RISK; any other extra finding counts by severity
    (critical/high fail, medium is a risk, low/info are informational).
    """
    ordered = sorted(tiers, key=lambda t: t.customers)
    goal = policy.goal_customers

    out = gate_findings(gate, reproduce) + properties_findings(properties, reproduce)

    assessments: list[TierAssessment] = []
    first_failed: int | None = None
    for tier in ordered:
        a = assess_tier(tier, policy, noise_floor=noise_floor, reproduce=reproduce)
        assessments.append(a)
        n = a.customers
        step = Outcome(findings=a.findings, risks=a.risks, notes=a.notes)
        if a.status == "failed" and n <= goal:
            if first_failed is None:
                first_failed = n
                text = f"The first tier to fail is {n} customers: {_lower_first(a.reason)}"
            else:
                text = f"The {n}-customer tier failed too: {_lower_first(a.reason)}"
            step += Outcome(failures=(text,))
        elif a.status == "failed":
            step += Outcome(
                risks=(f"Beyond the goal, the {n}-customer tier failed: {_lower_first(a.reason)}",)
            )
        elif a.status in ("invalid", "skipped") and n <= goal:
            step += Outcome(
                missing=(f"The {n}-customer tier was {a.status}: {_lower_first(a.reason)}",)
            )
        elif a.status in ("invalid", "skipped"):
            step += Outcome(
                notes=(
                    f"The {n}-customer tier, beyond the goal, was {a.status}: {_lower_first(a.reason)}",
                )
            )
        out += step
    if not ordered:
        out += Outcome(
            missing=("No load tier ran, so nothing is known about the service under load.",)
        )
    elif policy.require_goal_tier and not any(t.customers >= goal for t in ordered):
        out += Outcome(
            missing=(
                f"No tier reached the goal of {goal} customers (largest: {ordered[-1].customers}), "
                "so readiness at the goal would rest on extrapolation alone.",
            )
        )

    out += capacity_findings(capacity, ordered, policy, reproduce)
    out += trend_findings(trends, policy, reproduce)
    out += resource_leak(ordered, policy, reproduce)
    out += _extra(extra_findings)
    if partial:
        out += Outcome(
            missing=(
                "The audit was interrupted or ran only some stages, so evidence for a full verdict is missing.",
            )
        )

    if out.failures:
        verdict: Verdict = "NOT READY"
        reasons = out.failures + out.missing + out.risks
    elif out.missing:
        verdict = "INCONCLUSIVE"
        reasons = out.missing + out.risks
    elif out.risks:
        verdict = "AT RISK"
        reasons = out.risks
    else:
        verdict = "READY"
        reasons = (_ready_sentence(gate, properties, ordered, capacity),)

    statuses = {a.customers: a.status for a in assessments}
    findings = _unique_ids(out.findings)
    return Judgement(
        findings=tuple(sorted(findings, key=lambda f: _SEVERITY_RANK[f.severity])),
        verdict=verdict,
        ready_up_to=_ready_up_to(assessments),
        tier_status=statuses,
        scores=area_scores(
            gate=gate,
            properties=properties,
            assessments=assessments,
            capacity=capacity,
            findings=findings,
            policy=policy,
        ),
        reasons=tuple(reasons) + out.notes,
        tier_reasons={a.customers: a.reason for a in assessments},
    )


def _extra(findings: Sequence[Finding]) -> Outcome:
    out = Outcome(findings=tuple(findings))
    for f in findings:
        if f.category == "baseline-regression" or f.severity == "medium":
            out += Outcome(risks=(f"{f.title.rstrip('.')}.",))
        elif f.severity in ("critical", "high"):
            out += Outcome(failures=(f"{f.title.rstrip('.')}.",))
    return out


def _lower_first(text: str) -> str:
    """Lower-case a sentence's first letter to embed it, but never an acronym ("GET /slots")."""
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def _unique_ids(findings: Sequence[Finding]) -> list[Finding]:
    seen: dict[str, int] = {}
    unique = []
    for f in findings:
        count = seen.get(f.id, 0)
        seen[f.id] = count + 1
        unique.append(f if count == 0 else replace(f, id=f"{f.id}-{count + 1}"))
    return unique


def _ready_up_to(assessments: Sequence[TierAssessment]) -> int | None:
    ready = None
    for a in assessments:  # in increasing customers
        if a.status != "passed":
            break
        ready = a.customers
    return ready


def _ready_sentence(
    gate: GateResult | None,
    properties: PropertiesResult | None,
    tiers: Sequence[TierResult],
    capacity: CapacityEstimate | None,
) -> str:
    parts = []
    if gate is not None:
        parts.append(f"the regression gate passed ({gate.passed} tests)")
    if properties is not None:
        parts.append(f"the properties held ({properties.passed})")
    parts.append(
        f"tiers {', '.join(str(t.customers) for t in tiers)} met their SLOs with integrity intact"
    )
    if (
        capacity is not None
        and capacity.headroom is not None
        and capacity.predicted_customers is not None
    ):
        parts.append(
            f"predicted capacity is about {capacity.predicted_customers:.0f} customers, "
            f"{capacity.headroom:.1f}x the goal"
        )
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


# --- area scores ----------------------------------------------------------------------------


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
        return AreaScore("robustness", 0.0, f"0 because {_lower_first(down[0].title)}.")
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
        text += f"; capped at 50 because {_lower_first(capping[0].title)}"
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
            f"0 because {_lower_first(violations[0].title)}; any lost or leaked write fails.",
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
