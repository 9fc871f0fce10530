"""A run against its baseline: significant AND larger than the noise, or not a regression."""

from __future__ import annotations

import pytest

from harness.comparison import ComparisonPolicy, compare_runs, quantile, run_noise
from tests.nightly_runs import measured_record, metrics_of


def _pair(factor: float, *, endpoint: str = "GET /slots", requests_seed: int = 2):
    a = metrics_of(measured_record("20261201-000000-0001", {"GET /slots": 2.0, "POST /bookings": 4.0}, seed=1))
    medians = {"GET /slots": 2.0, "POST /bookings": 4.0}
    medians[endpoint] *= factor
    b = metrics_of(measured_record("20261201-000000-0002", medians, seed=requests_seed))
    return a, b


def _kinds(comparison) -> dict[tuple[str, str], str]:  # noqa: ANN001
    return {(c.endpoint, c.metric): c.kind for c in comparison.changes}


def test_the_same_service_twice_is_unchanged() -> None:
    a, b = _pair(1.0)
    comparison = compare_runs(a, b)
    assert comparison.regressions == () and comparison.improvements == ()
    assert len(comparison.changes) == 4  # two endpoints x (median service time, p95)


def test_thirty_percent_slower_on_one_endpoint_is_a_regression_of_that_endpoint_only() -> None:
    a, b = _pair(1.3)
    comparison = compare_runs(a, b)
    assert _kinds(comparison) == {("GET /slots", "service_p50"): "regression", ("GET /slots", "p95"): "regression",
                                  ("POST /bookings", "service_p50"): "unchanged", ("POST /bookings", "p95"): "unchanged"}
    slow = comparison.regressions[0]
    assert slow.change == pytest.approx(0.3, abs=0.05)
    assert slow.low > 0.1 and slow.low < slow.change < slow.high
    assert slow.p_value < 1e-6 and slow.threshold == 0.10


def test_three_percent_slower_is_not_flagged_even_when_it_is_real() -> None:
    a, b = _pair(1.03)
    assert compare_runs(a, b).regressions == ()


def test_faster_beyond_the_noise_is_an_improvement() -> None:
    a, b = _pair(0.7, endpoint="POST /bookings")
    assert _kinds(compare_runs(a, b))[("POST /bookings", "service_p50")] == "improvement"


def test_a_noisy_history_raises_the_threshold_past_a_real_change() -> None:
    a, b = _pair(1.3)
    history = {(500, "GET /slots", "service_p50"): [2.0, 2.8, 1.6, 2.4, 1.9, 2.9],
               (500, "GET /slots", "p95"): [3.0, 4.2, 2.4, 3.6, 2.9, 4.3]}  # fmt: skip
    comparison = compare_runs(a, b, history=history)
    slow = next(c for c in comparison.changes if c.endpoint == "GET /slots" and c.metric == "service_p50")
    assert slow.noise is not None and slow.noise > 0.3 and slow.threshold == slow.noise
    assert slow.kind == "unchanged" and slow.noise_runs == 6


def test_too_few_requests_are_not_compared() -> None:
    a, b = _pair(1.3)
    assert compare_runs(a, b, policy=ComparisonPolicy(min_requests=5000)).changes == ()


def test_runs_without_a_common_tier_say_so() -> None:
    a = metrics_of(measured_record("20261201-000000-0001", {"GET /slots": 2.0}, customers=50))
    b = metrics_of(measured_record("20261201-000000-0002", {"GET /slots": 2.0}, customers=500))
    comparison = compare_runs(a, b)
    assert comparison.changes == () and "No tier was measured in both runs" in comparison.note


def test_the_noise_is_two_robust_standard_deviations() -> None:
    assert run_noise([10.0, 10.0]) is None
    assert run_noise([10.0, 10.0, 10.0]) == 0.0
    assert run_noise([9.0, 10.0, 11.0, 10.0, 10.0]) == pytest.approx(0.0, abs=1e-9)
    assert run_noise([9.0, 10.0, 11.0]) == pytest.approx(2 * 1.4826 * 1.0 / 10.0)


def test_a_quantile_of_buckets_counts_requests() -> None:
    buckets = ((1.0, 50), (2.0, 45), (10.0, 5))
    assert quantile(buckets, 50) == 1.0 and quantile(buckets, 95) == 2.0 and quantile(buckets, 96) == 10.0
