"""A verdict at the headroom margin says it is borderline."""

from __future__ import annotations

import dataclasses

from factories import (
    capacity_estimate,
    gate_result,
    integrity_result,
    phase,
    properties_result,
    tier,
)

from harness.records import CapacityParams
from harness.verdict import EndpointSlo, ReproduceContext, VerdictPolicy, judge

POLICY = VerdictPolicy(default_slo=EndpointSlo(p95_ms=100.0, p99_ms=300.0), endpoint_slos={},
                       max_error_rate=0.01, goal_customers=1000, ready_headroom=1.5)  # fmt: skip
CTX = ReproduceContext(pack="pack", profile="quick", target_url=None, started_by_harness=True)


def verdict_with(predicted: float, **params: float | int) -> tuple[str, tuple[str, ...]]:
    cap = dataclasses.replace(capacity_estimate(predicted, goal=1000), method="lower-bound", confidence="medium",
                              params=CapacityParams(**params))  # type: ignore[arg-type]  # fmt: skip
    tiers = tuple(tier(n, steady=phase(offered_rps=n * 0.1), integrity=integrity_result()) for n in (100, 1000))
    j = judge(gate=gate_result(), properties=properties_result(), tiers=tiers, capacity=cap, trends=(),
              noise_floor=None, policy=POLICY, reproduce=CTX)  # fmt: skip
    return j.verdict, j.reasons


def test_ready_on_a_threshold_load_that_held_in_two_of_three_windows_says_it_is_borderline() -> None:
    verdict, reasons = verdict_with(1500, mixed_customers=1500.0, mixed_held=2, mixed_of=3)
    assert verdict == "READY"
    assert "(borderline: the load of 1500 customers held in 2 of 3 windows" in reasons[0]


def test_at_risk_below_it_says_so_too() -> None:
    verdict, reasons = verdict_with(1200, mixed_customers=1500.0, mixed_held=1, mixed_of=3)
    assert verdict == "AT RISK"
    assert "Borderline: the load of 1500 customers held in 1 of 3 windows" in reasons[0]


def test_a_clear_margin_says_nothing_of_the_kind() -> None:
    verdict, reasons = verdict_with(3000)
    assert verdict == "READY" and not any("orderline" in r for r in reasons)
