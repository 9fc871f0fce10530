"""The registry: the verdict's rules, small pure functions run in this order.

Each rule reads the :class:`~harness.verdict.evidence.Evidence` and returns an
:class:`~harness.verdict.outcome.Outcome`; the judge adds them up. The order is the audit's own
flow (the gate, the properties, the tiers, capacity, data volume, resources), which is also the
order of findings of equal severity in every report. One module per family:

    suites        the regression gate and the properties
    coverage      the tiers' statuses for the verdict, a goal tier, a partial audit, extra findings
    capacity      headroom over the goal; contention and coherency (USL)
    trends        an endpoint's service time growing with the customers' data
    resources     memory growing with requests served (a leak)
    baseline      slower than the pack's baseline run, beyond the noise (AT RISK)

A tier is judged by :func:`harness.verdict.tier.assess_tier`, from the tier rules: availability,
integrity, errors (server errors replayed alone), slo (a steady window) and saturation (a window
the generator or the machine spoiled).
"""

from __future__ import annotations

from harness.verdict.evidence import Evidence, Rule
from harness.verdict.outcome import Outcome
from harness.verdict.policy import ReproduceContext, VerdictPolicy
from harness.verdict.rules import baseline, capacity, coverage, resources, suites, trends

__all__ = ["RULES"]


def _gate(evidence: Evidence, policy: VerdictPolicy, ctx: ReproduceContext) -> Outcome:
    return suites.gate_findings(evidence.gate, ctx)


def _properties(evidence: Evidence, policy: VerdictPolicy, ctx: ReproduceContext) -> Outcome:
    return suites.properties_findings(evidence.properties, ctx)


def _capacity(evidence: Evidence, policy: VerdictPolicy, ctx: ReproduceContext) -> Outcome:
    return capacity.capacity_findings(evidence.capacity, evidence.tiers, policy, ctx)


def _trends(evidence: Evidence, policy: VerdictPolicy, ctx: ReproduceContext) -> Outcome:
    return trends.trend_findings(evidence.trends, policy, ctx, evidence.assessments)


def _memory(evidence: Evidence, policy: VerdictPolicy, ctx: ReproduceContext) -> Outcome:
    return resources.resource_leak(evidence.tiers, policy, ctx)


RULES: tuple[Rule, ...] = (
    _gate,
    _properties,
    coverage.tiers,
    coverage.goal_tier,
    _capacity,
    _trends,
    _memory,
    baseline.baseline_findings,
    coverage.extra_findings,
    coverage.partial_audit,
)
