"""The verdict: READY, AT RISK, NOT READY or INCONCLUSIVE, from the audit's records.

`judge` assesses each tier (:mod:`harness.verdict.tier`), runs the registered rules
(:mod:`harness.verdict.rules`) over the records and combines what they concluded. Precedence,
strongest first::

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

Thresholds are the defaults of `VerdictPolicy` (:mod:`harness.verdict.policy`), each with its
reason. Pure: no I/O, no printing, no Locust or matplotlib.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from harness.records import (
    AreaScore,
    BaselineComparison,
    CapacityEstimate,
    EndpointTrend,
    Finding,
    GateResult,
    NoiseFloor,
    PropertiesResult,
    SloCheck,
    TierResult,
    TierStatus,
    Verdict,
    severity_rank,
)
from harness.verdict.evidence import Evidence
from harness.verdict.outcome import Outcome, TierAssessment
from harness.verdict.policy import ReproduceContext, VerdictPolicy
from harness.verdict.registry import RULES
from harness.verdict.scores import area_scores
from harness.verdict.tier import assess_tier
from harness.verdict.wording import lower_first

__all__ = ["Judgement", "judge", "tier_status"]


@dataclass(frozen=True)
class Judgement:
    findings: tuple[Finding, ...]  # most severe first, then in the order of the audit's flow
    verdict: Verdict
    ready_up_to: int | None  # the largest tier such that it and every smaller tier passed
    tier_status: Mapping[int, TierStatus]
    scores: tuple[AreaScore, ...]
    reasons: tuple[str, ...]  # the deciding sentences first, then the other conclusions, then notes
    tier_reasons: Mapping[int, str] = field(default_factory=dict)  # one sentence per tier status
    # the percentiles judged per endpoint, for the tiers whose steady window was judged
    tier_checks: Mapping[int, tuple[SloCheck, ...]] = field(default_factory=dict)


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
    partial_reason: str = "",
    baseline: BaselineComparison | None = None,
) -> Judgement:
    """Findings, verdict, per-tier status and area scores for one audit (precedence: see the
    package docstring)."""
    ordered = tuple(sorted(tiers, key=lambda t: t.customers))
    assessments = tuple(
        assess_tier(t, policy, noise_floor=noise_floor, reproduce=reproduce, trends=trends) for t in ordered
    )
    evidence = Evidence(
        gate=gate, properties=properties, tiers=ordered, assessments=assessments, capacity=capacity,
        trends=tuple(trends), noise_floor=noise_floor, partial=partial, partial_reason=partial_reason, extra_findings=tuple(extra_findings),
        baseline=baseline,
    )  # fmt: skip
    out = Outcome()
    for rule in RULES:
        out += rule(evidence, policy, reproduce)
    verdict, reasons = _verdict(out, gate, properties, ordered, capacity)
    findings = _unique_ids(out.findings)
    return Judgement(
        findings=tuple(sorted(findings, key=lambda f: severity_rank(f.severity))),
        verdict=verdict,
        ready_up_to=_ready_up_to(assessments),
        tier_status={a.customers: a.status for a in assessments},
        scores=area_scores(
            gate=gate, properties=properties, assessments=assessments, capacity=capacity,
            findings=findings, policy=policy,
        ),  # fmt: skip
        reasons=tuple(reasons) + out.notes,
        tier_reasons={a.customers: a.reason for a in assessments},
        tier_checks={a.customers: a.slo_checks for a in assessments if a.slo_checks is not None},
    )


def _verdict(
    out: Outcome,
    gate: GateResult | None,
    properties: PropertiesResult | None,
    tiers: Sequence[TierResult],
    capacity: CapacityEstimate | None,
) -> tuple[Verdict, tuple[str, ...]]:
    if out.failures:
        return "NOT READY", out.failures + out.missing + out.risks
    if out.missing:
        return "INCONCLUSIVE", out.missing + out.risks
    if out.risks:
        return "AT RISK", out.risks
    ready = _ready_sentence(gate, properties, tiers, capacity)
    borderline = [n for n in out.notes if n.startswith("Borderline:")]
    return "READY", ((ready[:-1] + f" ({lower_first(borderline[0]).rstrip('.')})." if borderline else ready),)


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
