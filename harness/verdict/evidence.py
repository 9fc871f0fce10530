"""Everything the verdict's rules read: the audit's records, with each tier already assessed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.records import (
    BaselineComparison,
    CapacityEstimate,
    EndpointTrend,
    Finding,
    GateResult,
    NoiseFloor,
    PropertiesResult,
    TierResult,
)
from harness.verdict.outcome import Outcome, TierAssessment
from harness.verdict.policy import ReproduceContext, VerdictPolicy

__all__ = ["Evidence", "Rule"]


@dataclass(frozen=True)
class Evidence:
    gate: GateResult | None
    properties: PropertiesResult | None
    tiers: tuple[TierResult, ...]  # in increasing customers
    assessments: tuple[TierAssessment, ...]  # one per tier, in the same order
    capacity: CapacityEstimate | None
    trends: tuple[EndpointTrend, ...]
    noise_floor: NoiseFloor | None
    partial: bool = False
    partial_reason: str = ""  # why some stages or tiers did not run, one sentence; "" if unknown
    # Findings other analyses made (the history's baseline-regression).
    extra_findings: tuple[Finding, ...] = ()
    # This run against its pack's baseline run (harness.comparison); None without one.
    baseline: BaselineComparison | None = None


#: A verdict rule: pure, from the evidence to what it concludes.
Rule = Callable[[Evidence, VerdictPolicy, ReproduceContext], Outcome]
