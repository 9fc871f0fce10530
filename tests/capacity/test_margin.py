"""Measuring at the margin: a verdict never rests on one short window at the READY threshold."""

from __future__ import annotations

import pytest
from factories import phase, tier

from harness.capacity import estimate_capacity, margin_factors
from harness.records import PhaseMeasurement, TierResult

GOAL = 1000
RATE = 0.1  # per customer: the goal's load is 100 arrivals/s


def step(factor: float, held: bool, label: str | None = None) -> PhaseMeasurement:
    return phase("steady" if factor == 1 else "stress", offered_rps=100.0 * factor, service_ms=2.0 if held else 300.0,
                 label=label or ("steady" if factor == 1 else f"stress x{factor:g}"))  # fmt: skip


def goal_tier(*steps: tuple[float, bool]) -> TierResult:
    return tier(GOAL, steady=step(1, True), stress=[step(f, ok) for f, ok in steps])


@pytest.mark.parametrize(
    ("steps", "again"),
    [
        (((1.5, True), (2.0, False)), (1.5, 1.5)),  # held once right at 1.5x, failed next: twice more
        (((1.5, False), (2.0, False)), (1.5, 1.5)),  # failed right at 1.5x after holding 1x
        (((1.5, True), (2.0, True), (3.0, False)), ()),  # held 2x: well clear of 1.5x
        (((1.1, False),), ()),  # failed at 1.1x: well short of 1.5x, no window would change that
        (((1.2, True),), ()),  # the steps stopped before 1.5x (nothing failed): nothing to repeat
        (((1.25, True), (1.75, False)), (1.5, 1.5, 1.5)),  # 1.5x never measured: three windows there
    ],
)
def test_the_threshold_is_measured_again_only_where_the_verdict_rests_on_it(
    steps: tuple[tuple[float, bool], ...], again: tuple[float, ...]
) -> None:
    factors = margin_factors(goal_tier(*steps), goal_customers=GOAL, ready_headroom=1.5, latency_slo_ms=100)
    assert factors == pytest.approx(again)


def test_a_repeated_load_is_carried_only_when_most_of_its_windows_held_and_says_so() -> None:
    twice = tier(GOAL, steady=step(1, True), stress=[step(1.5, True), step(1.5, True, "stress x1.5 (again)"),
                                                      step(1.5, False, "stress x1.5 (again)"), step(2.0, False)])  # fmt: skip
    est = estimate_capacity([twice], RATE, GOAL, latency_slo_ms=100)
    assert est.params.lower_bound_customers == pytest.approx(1500)
    assert (est.params.mixed_customers, est.params.mixed_held, est.params.mixed_of) == (pytest.approx(1500), 2, 3)
    once = tier(GOAL, steady=step(1, True), stress=[step(1.5, True), step(1.5, False, "stress x1.5 (again)"),
                                                     step(1.5, False, "stress x1.5 (again)"), step(2.0, False)])  # fmt: skip
    est = estimate_capacity([once], RATE, GOAL, latency_slo_ms=100)
    assert est.params.lower_bound_customers == pytest.approx(1000)  # 1 of 3 at 1.5x: not carried
