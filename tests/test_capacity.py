"""Capacity analysis: the USL fit, capacity in customers, the latency knee, data-volume trends."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from factories import GeneratorState, generator_health, latency_summary, phase, tier, with_generator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from harness.capacity import (
    InsufficientData,
    UslFit,
    endpoint_trends,
    estimate_capacity,
    find_knee,
    fit_usl,
)
from harness.records import EndpointMeasurement, TierResult

# --- a synthetic service that follows the USL exactly -----------------------------------------


def usl(n: np.ndarray | float, lam: float, sigma: float, kappa: float) -> np.ndarray:
    n = np.asarray(n, dtype=float)
    m = np.maximum(n, 1.0)
    return lam * n / (1 + sigma * (m - 1) + kappa * m * (m - 1))


def usl_peak(lam: float, sigma: float, kappa: float) -> tuple[float, float]:
    n_star = math.sqrt((1 - sigma) / kappa)
    return n_star, float(usl(n_star, lam, sigma, kappa))


def kappa_for_peak(lam: float, sigma: float, x_max: float) -> float:
    return brentq(lambda k: usl_peak(lam, sigma, k)[1] - x_max, 1e-9, 0.5)


def usl_tiers(
    lam: float,
    sigma: float,
    kappa: float,
    per_customer_rps: float,
    *,
    customers: tuple[int, ...] = (50, 500, 5000),
    steps: tuple[float, ...] = (1.5, 2, 3, 4),
    noise: float = 0.02,
    seed: int = 0,
    p95_over_mean: float = 2.0,
    saturated_past_knee: bool = False,
) -> list[TierResult]:
    """Open-model phases against a USL service: below the peak the server keeps up (X = offered,
    N on the rising branch); past it the queue fills the worker pool and N sits beyond N*."""
    rng = np.random.default_rng(seed)
    n_star, x_max = usl_peak(lam, sigma, kappa)
    tiers = []
    for count in customers:
        phases = []
        for k, mult in enumerate((1.0, *steps)):
            offered = count * per_customer_rps * mult
            if offered < 0.97 * x_max:
                n = brentq(lambda n, a=offered: float(usl(n, lam, sigma, kappa)) - a, 1e-9, n_star)
                x = offered
                past = False
            else:
                n = 2 * n_star * offered / x_max
                x = float(usl(n, lam, sigma, kappa))
                past = True
            achieved = x * (1 + noise * rng.standard_normal())
            r_ms = 1000 * n / x * (1 + noise * rng.standard_normal())  # R is measured too
            phases.append(
                phase(
                    "steady" if k == 0 else "stress",
                    label="steady" if k == 0 else f"stress x{mult:g}",
                    offered_rps=offered,
                    achieved_rps=achieved,
                    service=latency_summary(r_ms, p95_ms=p95_over_mean * r_ms),
                    saturated=saturated_past_knee and past,
                )
            )
        tiers.append(tier(count, steady=phases[0], stress=phases[1:]))
    return tiers


# Known service: 10 ms per request alone, peak 900 req/s; at 0.06 req/s per customer: 15000 customers.
LAM, SIGMA = 100.0, 0.03
KAPPA = kappa_for_peak(LAM, SIGMA, 900.0)
PER_CUSTOMER = 0.06


# --- fit_usl ----------------------------------------------------------------------------------


class TestFitUsl:
    N = np.array([1, 2, 4, 8, 16, 32, 48, 64, 96], dtype=float)
    TRUE = {"lambda": 1000.0, "sigma": 0.02, "kappa": 5e-4}

    def test_recovers_known_parameters_within_intervals_in_most_seeds(self) -> None:
        hits = dict.fromkeys(self.TRUE, 0)
        seeds = range(20)
        for seed in seeds:
            rng = np.random.default_rng(seed)
            x = usl(self.N, *self.TRUE.values()) * (1 + 0.03 * rng.standard_normal(self.N.size))
            fit = fit_usl(self.N, x)
            for name, true in self.TRUE.items():
                low, high = fit.interval(name)  # type: ignore[arg-type]
                hits[name] += low <= true <= high
        # nominal 95 % intervals; the linearisation is approximate, so ask for 80 %
        assert all(h >= 16 for h in hits.values()), hits

    def test_matches_the_published_spec_sdm91_fit_when_unweighted(self) -> None:
        n = [1, 18, 36, 72, 108, 144, 216]
        x = [64.9, 995.9, 1652.4, 1853.2, 1828.9, 1775.0, 1702.0]
        fit = fit_usl(n, x, weighting="absolute")  # as the R usl package
        assert fit.sigma == pytest.approx(0.028, abs=0.002)
        assert fit.kappa == pytest.approx(1.04e-4, rel=0.03)
        assert fit.n_star == pytest.approx(math.sqrt((1 - fit.sigma) / fit.kappa))
        x_hat, low, high = fit.predict(432.0)
        assert (high - low) / 2 / x_hat == pytest.approx(0.30, abs=0.05)  # about ±30 % at 2x N

    def test_refuses_fewer_than_six_distinct_load_levels(self) -> None:
        with pytest.raises(InsufficientData, match="at least 6 distinct load levels .*; got 5 "):
            fit_usl([1, 2, 4, 8, 16], [10, 19, 36, 60, 80])
        # repeated levels do not count twice
        with pytest.raises(InsufficientData, match="got 5"):
            fit_usl([1, 2, 4, 8, 16, 16, 16], [10, 19, 36, 60, 80, 81, 79])

    def test_insufficient_data_is_a_value_error(self) -> None:
        assert issubclass(InsufficientData, ValueError)

    def test_rejects_malformed_input(self) -> None:
        with pytest.raises(ValueError, match="same length"):
            fit_usl([1, 2, 3], [1, 2])
        with pytest.raises(ValueError, match="NaN"):
            fit_usl([1, 2, 3, 4, 5, float("nan")], [1, 2, 3, 4, 5, 6])

    def test_is_robust_at_sub_unit_concurrency(self) -> None:
        # A 2 ms service at light load: N = X·R from 0.01 to ~2, then saturation at 400 req/s.
        n = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0, 1.5, 3, 8, 20, 40])
        x = usl(n, 500.0, 0.2, 0.0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fit = fit_usl(n, x)
        assert fit.lam == pytest.approx(500.0, rel=1e-3)
        assert fit.sigma == pytest.approx(0.2, rel=1e-2)
        assert fit.kappa == 0.0
        assert math.isinf(fit.n_star)
        assert fit.x_max == pytest.approx(500 / 0.2, rel=1e-2)  # Amdahl asymptote λ/σ
        assert fit.dominant == "contention"

    def test_a_parameter_seen_through_one_point_has_no_band(self) -> None:
        n = np.array([0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 40.0])
        fit = fit_usl(n, usl(n, 100.0, 0.05, 1e-3) * np.linspace(0.97, 1.03, n.size))
        assert not fit.has_band and math.isinf(fit.sigma_se)
        x_hat, low, high = fit.predict(10.0)
        assert low == 0.0 and math.isinf(high)

    def test_linear_scaling_has_no_limit(self) -> None:
        n = np.array([0.05, 0.1, 0.2, 0.4, 0.6, 0.8])
        fit = fit_usl(n, 300 * n)
        assert fit.sigma == 0.0 and fit.kappa == 0.0
        assert math.isinf(fit.x_max) and fit.dominant == "none"

    def test_coherency_dominates_a_retrograde_curve(self) -> None:
        n = np.array([1, 2, 4, 8, 16, 32, 64, 128], dtype=float)
        fit = fit_usl(n, usl(n, 100.0, 0.001, 0.002))
        assert fit.dominant == "coherency"
        assert fit.n_star == pytest.approx(math.sqrt(0.999 / 0.002), rel=1e-3)

    def test_predict_gives_a_band_around_the_curve(self) -> None:
        rng = np.random.default_rng(1)
        x = usl(self.N, *self.TRUE.values()) * (1 + 0.03 * rng.standard_normal(self.N.size))
        fit = fit_usl(self.N, x)
        x_hat, low, high = fit.predict(20.0)
        assert isinstance(x_hat, float) and low < x_hat < high
        xs, lows, highs = fit.predict(np.array([10.0, 100.0, 400.0]))
        assert xs.shape == (3,) and np.all(lows <= xs) and np.all(xs <= highs)
        widths = (highs - lows) / xs
        assert widths[2] > widths[0]  # extrapolation is less certain

    def test_params_round_trip(self) -> None:
        fit = fit_usl(self.N, usl(self.N, *self.TRUE.values()) * np.linspace(0.98, 1.02, self.N.size))
        again = UslFit.from_params(fit.to_params())
        assert again is not None
        for n in (1.0, 30.0, 200.0):
            assert again.predict(n) == pytest.approx(fit.predict(n))
        assert UslFit.from_params({}) is None

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(
            st.tuples(st.floats(0.01, 500), st.floats(0.01, 1e5)), min_size=6, max_size=15
        ).filter(lambda pts: len({round(n, 6) for n, _ in pts}) >= 6)
    )
    def test_any_positive_data_gives_a_bounded_fit(self, pts: list[tuple[float, float]]) -> None:
        n, x = zip(*pts, strict=True)
        fit = fit_usl(n, x)
        assert 0 <= fit.sigma <= 1 and 0 <= fit.kappa <= 1 and fit.lam >= 0
        x_hat, low, high = fit.predict(float(max(n)))
        assert low <= x_hat <= high or math.isnan(high)


# --- estimate_capacity ------------------------------------------------------------------------


class TestEstimateCapacity:
    def test_known_limit_is_inside_the_band(self) -> None:
        tiers = usl_tiers(LAM, SIGMA, KAPPA, PER_CUSTOMER)
        est = estimate_capacity(tiers, PER_CUSTOMER, goal_customers=5000, latency_slo_ms=10_000)
        assert est.method == "usl"
        assert est.low is not None and est.high is not None and est.predicted_customers is not None
        assert est.low <= 15_000 <= est.high
        assert est.predicted_customers == pytest.approx(15_000, rel=0.05)
        assert est.headroom == pytest.approx(3.0, rel=0.05)
        assert est.confidence in ("high", "medium")
        assert est.params["sigma"] == pytest.approx(SIGMA, abs=0.02)
        assert len(est.points) == 15
        assert "USL" in est.note

    def test_goodput_is_counted_in_iterations_like_the_offered_load(self) -> None:
        # Each iteration (a persona's action) makes two requests: 100 arrivals/s that all
        # complete show as 200 req/s. Keeping up is 100 iterations/s, and capacity in customers
        # must not double because requests outnumber actions.
        steady = phase("steady", offered_rps=100.0, achieved_rps=200.0, service_ms=2.0)
        assert steady.iterations_started == 100 * 60  # 60 s at 100 arrivals/s, 12000 requests
        stressed = phase("stress", offered_rps=400.0, achieved_rps=400.0, service_ms=2.0, label="stress x4")
        est = estimate_capacity([tier(1000, steady=steady, stress=[stressed])], 0.1, 1000, latency_slo_ms=100)
        assert est.params["past_knee_points"] == 1  # 200 completed iterations/s of 400 offered
        assert est.params["lower_bound_customers"] == pytest.approx(1000, rel=0.01)

    def test_counted_iterations_win_over_the_estimated_mix(self) -> None:
        # The persona mix varies from phase to phase: the light steady window made 2.0 requests per
        # iteration, the stress step 1.8. When the engine counted completed iterations, goodput
        # uses the count, so a step that kept up is not misread as 10 % short of its offered rate.
        steady = dataclasses.replace(
            phase("steady", offered_rps=100.0, achieved_rps=200.0, service_ms=2.0),
            iterations_completed=6000, active_s=60.0,
        )
        step = dataclasses.replace(
            phase("stress", offered_rps=200.0, achieved_rps=360.0, service_ms=2.0, label="stress x2"),
            iterations_completed=12000, active_s=60.0,
        )
        assert step.achieved_ips == pytest.approx(200.0)
        est = estimate_capacity([tier(1000, steady=steady, stress=[step])], 0.1, 1000, latency_slo_ms=100)
        assert est.params["lower_bound_customers"] == pytest.approx(2000, rel=0.001)
        uncounted = dataclasses.replace(step, iterations_completed=0)
        est = estimate_capacity([tier(1000, steady=steady, stress=[uncounted])], 0.1, 1000, latency_slo_ms=100)
        assert est.params["lower_bound_customers"] == pytest.approx(1800, rel=0.001)  # 360 / 2.0 per iteration

    @pytest.mark.parametrize(("completed_share", "customers"), [(0.995, 7500), (0.95, 7125)])
    def test_a_step_that_kept_up_carried_its_offered_rate(self, completed_share: float, customers: float) -> None:
        # A short window closes with a few iterations in flight: 99.5 % of 337.5 arrivals/s
        # completed in it. The service carried 337.5/s (7500 customers at 0.045), exactly the
        # 1.5x READY needs; a step 5 % short did not keep up and counts what it completed.
        steady = phase("steady", offered_rps=225.0, service_ms=2.0)
        step = phase("stress", offered_rps=337.5, achieved_rps=337.5 * completed_share, service_ms=2.0, label="x1.5")
        est = estimate_capacity([tier(5000, steady=steady, stress=[step])], 0.045, 5000, latency_slo_ms=100)
        assert est.method == "lower-bound"
        assert est.predicted_customers == pytest.approx(customers, rel=0.002)

    def test_the_measured_floor_comes_from_the_goals_data_volume(self) -> None:
        # 200 customers' data carried 360 arrivals/s; the goal's 1000 customers' data only 337.5
        # (450 missed the SLO). The smaller tier's cheaper requests say nothing about the goal.
        small = tier(200, steady=phase(offered_rps=45.0, service_ms=2.0),
                     stress=[phase("stress", offered_rps=360.0, service_ms=2.0, label="x8")])
        slow = latency_summary(400.0, count=1000, p95_ms=900.0)
        goal = tier(1000, steady=phase(offered_rps=225.0, service_ms=2.0),
                    stress=[phase("stress", offered_rps=337.5, service_ms=2.0, label="x1.5"),
                            phase("stress", offered_rps=450.0, latency=slow, service=slow, label="x2")])
        est = estimate_capacity([small, goal], 0.225, 1000, latency_slo_ms=100)
        assert est.params["lower_bound_customers"] == pytest.approx(1500)

    def test_a_model_contradicted_by_a_failure_measured_at_the_goal_is_not_used(self) -> None:
        # A small tier scales smoothly up to 900 req/s, so a USL fit over every point predicts
        # thousands of customers; at the goal's data volume the service already answered 28 %
        # errors at 1.5x (a pool running dry). Capacity is what was measured: the goal, at most 1.5x.
        small = usl_tiers(LAM, SIGMA, KAPPA, 0.225, customers=(200,), steps=(1.5, 2, 3, 4, 6, 8, 12, 20, 25))
        requests = int(337.5 * 60)
        goal = tier(1000, steady=phase(offered_rps=225.0, service_ms=2.0),
                    stress=[phase("stress", offered_rps=337.5, service_ms=2.0, errors=int(0.28 * requests),
                                  label="stress x1.5")])  # fmt: skip
        est = estimate_capacity([*small, goal], 0.225, 1000, latency_slo_ms=100)
        assert est.method == "lower-bound"
        assert (est.predicted_customers, est.high) == (pytest.approx(1000), pytest.approx(1500))
        assert "already failed at 337.5 offered (28% errors" in est.note
        assert "a measurement contradicts" in est.note

    def test_known_limit_holds_over_seeds(self) -> None:
        inside = 0
        for seed in range(20):
            tiers = usl_tiers(LAM, SIGMA, KAPPA, PER_CUSTOMER, seed=seed)
            est = estimate_capacity(tiers, PER_CUSTOMER, 5000, latency_slo_ms=10_000)
            assert est.method == "usl"
            inside += est.low <= 15_000 <= est.high  # type: ignore[operator]
        assert inside >= 16  # nominal 95 %

    def test_a_tight_latency_slo_binds_before_the_peak(self) -> None:
        tiers = usl_tiers(LAM, SIGMA, KAPPA, PER_CUSTOMER, noise=0.01)
        # p95 = 2 x mean, so a 40 ms p95 SLO allows a 20 ms mean: d(N) = λ·R = 2
        slo_ms = 40.0
        n_slo = brentq(lambda n: 1 + SIGMA * (n - 1) + KAPPA * n * (n - 1) - 2.0, 1, 100)
        truth = float(usl(n_slo, LAM, SIGMA, KAPPA)) / PER_CUSTOMER
        est = estimate_capacity(tiers, PER_CUSTOMER, 5000, latency_slo_ms=slo_ms)
        assert est.method == "usl"
        assert truth < 15_000
        assert est.low <= truth <= est.high  # type: ignore[operator]
        assert "SLO binds first" in est.note

    def test_refuses_to_extrapolate_without_a_point_past_the_knee(self) -> None:
        tiers = usl_tiers(LAM, SIGMA, KAPPA, PER_CUSTOMER, steps=(1.5, 2))  # at most 600 of 900 req/s
        est = estimate_capacity(tiers, PER_CUSTOMER, 5000, latency_slo_ms=10_000)
        assert est.method == "lower-bound"
        assert "past the knee" in est.note
        assert est.high is None
        assert est.predicted_customers == est.low == pytest.approx(10_000, rel=0.05)
        assert "sigma" in est.params  # the fit is still reported, only not trusted

    def test_refuses_with_fewer_than_six_load_levels(self) -> None:
        tiers = usl_tiers(LAM, SIGMA, KAPPA, PER_CUSTOMER, customers=(5000,), steps=(1.5, 2, 4))
        est = estimate_capacity(tiers, PER_CUSTOMER, 5000, latency_slo_ms=10_000)
        assert est.method == "lower-bound"
        assert "at least 6 distinct load levels" in est.note

    def test_phases_with_a_saturated_generator_are_not_used(self) -> None:
        tiers = usl_tiers(LAM, SIGMA, KAPPA, PER_CUSTOMER, saturated_past_knee=True)
        est = estimate_capacity(tiers, PER_CUSTOMER, 5000, latency_slo_ms=10_000)
        assert est.method == "lower-bound"
        assert len(est.points) == 13 and all(off < 900 for off, _, _ in est.points)

    def test_a_busy_machine_step_counts_only_if_it_met_the_slo(self) -> None:
        # Other work on the machine only adds latency: x1.5 met the SLO anyway, so it was carried;
        # x2 missed it, which says nothing (busy machine), so the floor stops at x1.5 and the
        # estimate says where the measurement, not the service, gave out.
        def busy_step(offered: float, latency_ms: float, label: str) -> object:
            slow = latency_summary(latency_ms, count=1000, p95_ms=latency_ms * 2)
            return phase("stress", offered_rps=offered, latency=slow, service=slow, label=label,
                         generator=generator_health(crowded=True, other_cpu_pct=120.0))  # fmt: skip

        steady = phase(offered_rps=225.0, service_ms=2.0)
        goal = tier(5000, steady=steady, stress=[busy_step(337.5, 10.0, "x1.5"), busy_step(450.0, 400.0, "x2")])
        est = estimate_capacity([goal], 0.045, 5000, latency_slo_ms=100)
        assert est.method == "lower-bound"
        assert est.predicted_customers == pytest.approx(7500)
        assert [off for off, _, _ in est.points] == [225.0, 337.5]
        assert est.params["unmeasured_customers"] == pytest.approx(10_000)
        assert est.high is None  # the x2 miss is nobody's, so it caps nothing
        assert "missed the SLO while the machine was busy" in est.note
        # The same x2 miss on a quiet machine is the service's: it caps the band.
        quiet = tier(5000, steady=steady, stress=[phase("stress", offered_rps=337.5, service_ms=2.0, label="x1.5"),
                                                 with_generator(goal.stress[1], generator_health())])  # fmt: skip
        est = estimate_capacity([quiet], 0.045, 5000, latency_slo_ms=100)
        assert est.high == pytest.approx(10_000) and "unmeasured_customers" not in est.params

    def test_a_wide_band_refuses_to_extrapolate(self) -> None:
        # One saturated point per tier, far past a big gap, with 10 % noise: κ barely identified.
        tiers = usl_tiers(
            LAM, SIGMA, KAPPA, PER_CUSTOMER, customers=(5, 50), steps=(1.5, 2, 4, 400), noise=0.1, seed=1
        )
        est = estimate_capacity(tiers, PER_CUSTOMER, 5000, latency_slo_ms=10_000)
        assert est.method == "lower-bound"
        assert "wider than the estimate" in est.note
        assert est.params["relative_band_width"] > 1.0

    def test_unidentified_parameters_refuse_to_extrapolate(self) -> None:
        # Everything below one request in flight except a single saturated point: σ and κ are
        # seen through one equation, so no standard error can be honest.
        tiers = usl_tiers(
            LAM, SIGMA, KAPPA, PER_CUSTOMER, customers=(5, 50), steps=(1.5, 2, 4, 400), noise=0.1, seed=0
        )
        est = estimate_capacity(tiers, PER_CUSTOMER, 5000, latency_slo_ms=10_000)
        assert est.method == "lower-bound"
        assert "covariance could not be estimated" in est.note

    def test_nothing_met_the_slo(self) -> None:
        tiers = usl_tiers(LAM, SIGMA, KAPPA, PER_CUSTOMER)
        est = estimate_capacity(tiers, PER_CUSTOMER, 5000, latency_slo_ms=1.0)
        assert est.method == "none"
        assert est.predicted_customers is None and est.confidence == "none"

    def test_no_tiers(self) -> None:
        est = estimate_capacity([], PER_CUSTOMER, 5000, latency_slo_ms=200)
        assert est.method == "none" and est.points == ()

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"per_customer_rps": 0}, "per_customer_rps = 0"),
            ({"goal_customers": 0}, "goal_customers = 0"),
            ({"latency_slo_ms": -1}, "latency_slo_ms = -1"),
            ({"slo_percentile": "p90"}, "'p90'"),
        ],
    )
    def test_rejects_bad_arguments(self, kwargs: dict[str, object], message: str) -> None:
        args: dict[str, object] = {
            "per_customer_rps": 0.06,
            "goal_customers": 5000,
            "latency_slo_ms": 200,
            "slo_percentile": "p95",
        }
        args.update(kwargs)
        with pytest.raises(ValueError, match=message):
            estimate_capacity([], **args)  # type: ignore[arg-type]


# --- find_knee --------------------------------------------------------------------------------


class TestFindKnee:
    def test_finds_the_corner_of_a_hockey_stick(self) -> None:
        offered = np.arange(100, 1300, 100, dtype=float)
        latency = np.where(offered <= 800, 20 + offered / 100, 28 + (offered - 800) ** 2 / 200)
        knee = find_knee(offered, latency)
        assert knee is not None and 700 <= knee <= 900

    def test_flat_noisy_latency_has_no_knee(self) -> None:
        rng = np.random.default_rng(0)
        offered = np.arange(100, 1300, 100, dtype=float)
        assert find_knee(offered, 20 + rng.uniform(-1, 1, offered.size)) is None

    def test_too_few_points(self) -> None:
        assert find_knee([1, 2, 3], [1, 1, 100]) is None
        assert find_knee([], []) is None

    def test_repeated_loads_are_averaged_and_order_does_not_matter(self) -> None:
        offered = [800, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
        latency = [30, 10, 10, 11, 11, 12, 12, 14, 26, 80, 300]
        assert find_knee(offered, latency) == find_knee(sorted(offered), sorted(latency))

    @pytest.mark.parametrize("seed", range(15))
    def test_agrees_with_kneed(self, seed: int) -> None:
        kneed = pytest.importorskip("kneed")
        rng = np.random.default_rng(seed)
        x = np.sort(rng.uniform(1, 100, 12))
        x = np.unique(x)
        y = np.exp(x / rng.uniform(10, 40)) + rng.uniform(0, 1, x.size)
        y = np.maximum.accumulate(y)
        theirs = kneed.KneeLocator(x, y, S=1.0, curve="convex", direction="increasing").knee
        ours = find_knee(x, y)
        if ours is not None:  # ours may additionally refuse a knee without a 1.5x rise
            assert ours == pytest.approx(theirs)


# --- endpoint_trends --------------------------------------------------------------------------


def trend_tiers(series: dict[str, list[float]], customers: tuple[int, ...] = (50, 500, 5000)) -> list[TierResult]:
    tiers = []
    for i, count in enumerate(customers):
        endpoints = [
            EndpointMeasurement(
                name=name,
                requests=1000,
                errors=0,
                errors_by_reason={},
                latency=latency_summary(values[i] / 2, p95_ms=values[i]),
                service=latency_summary(values[i] / 2, p95_ms=values[i]),
                latency_hdr="",
                service_hdr="",
            )
            for name, values in series.items()
        ]
        tiers.append(tier(count, steady=phase(offered_rps=count * 0.06, endpoints=endpoints)))
    return tiers


class TestEndpointTrends:
    def test_classifies_flat_linear_and_quadratic(self) -> None:
        # Every request pays 1 ms whatever the data (GET /health); the classes are of the rest.
        tiers = trend_tiers(
            {
                "GET /health": [1.0, 1.0, 1.0],
                "GET /flat": [20.0, 21.0, 20.5],
                "GET /linear": [2.0, 11.0, 101.0],
                "GET /quadratic": [3.0, 201.0, 20001.0],
                "GET /sqrt": [6.0, 16.8, 51.0],
            }
        )
        trends = {t.endpoint: t for t in endpoint_trends(tiers, {}, default_slo_p95_ms=200.0)}
        assert trends["GET /flat"].growth_class == "flat"
        assert trends["GET /linear"].growth_class == "linear"
        assert trends["GET /linear"].slope == pytest.approx(1.0)
        assert trends["GET /quadratic"].growth_class == "super-linear"
        assert trends["GET /quadratic"].slope == pytest.approx(2.0)
        assert trends["GET /sqrt"].growth_class == "sub-linear"
        assert trends["GET /flat"].breaks_at_customers is None
        assert trends["GET /sqrt"].breaks_at_customers is None

    @pytest.mark.parametrize(("errors", "completed_share", "judged"), [(0, 1.0, True), (500, 1.0, False), (0, 0.7, False)])
    def test_a_steady_window_the_service_did_not_keep_up_with_says_nothing_about_data(
        self, errors: int, completed_share: float, judged: bool
    ) -> None:
        # At 5000 customers every endpoint is 100x slower: data, if the service kept up; queueing
        # for a pool or a core, if half its requests failed or it fell behind the arrivals.
        tiers = trend_tiers({"GET /a": [2.0, 2.1, 200.0], "GET /b": [3.0, 3.0, 300.0]})
        last = tiers[-1]
        assert last.steady is not None
        steady = dataclasses.replace(
            last.steady,
            endpoints=tuple(dataclasses.replace(e, errors=errors) for e in last.steady.endpoints),
            iterations_completed=int(last.steady.offered_rps * 60 * completed_share),
            active_s=60.0,
        )
        tiers[-1] = dataclasses.replace(last, steady=steady)
        trends = endpoint_trends(tiers, {}, default_slo_p95_ms=100.0)
        assert all(len(t.points) == (3 if judged else 2) for t in trends)
        assert all((t.growth_class == "flat") is not judged for t in trends)

    def test_linear_growth_breaks_where_the_power_law_crosses_the_slo(self) -> None:
        tiers = trend_tiers({"GET /slots": [1.0, 10.0, 100.0]})  # 0.02 ms per customer
        (trend,) = endpoint_trends(tiers, {"GET /slots": 200.0}, default_slo_p95_ms=1000.0)
        assert trend.breaks_at_customers == pytest.approx(10_000)
        assert trend.slo_p95_ms == 200.0
        assert trend.points == ((50, 1.0), (500, 10.0), (5000, 100.0))

    def test_default_slo_applies_to_unlisted_endpoints(self) -> None:
        tiers = trend_tiers({"GET /slots": [1.0, 10.0, 100.0]})
        (trend,) = endpoint_trends(tiers, {}, default_slo_p95_ms=1000.0)
        assert trend.breaks_at_customers == pytest.approx(50_000)

    def test_sub_millisecond_noise_is_not_scaling(self) -> None:
        tiers = trend_tiers({"GET /health": [0.4, 0.5, 0.6], "GET /zero": [0.0, 0.1, 0.3]})
        trends = endpoint_trends(tiers, {}, default_slo_p95_ms=200.0, noise_floor_ms=1.0)
        assert all(t.growth_class == "flat" for t in trends)
        assert all(t.breaks_at_customers is None for t in trends)
        assert all(t.slope is not None and math.isfinite(t.slope) for t in trends)

    def test_three_points_give_an_honest_interval(self) -> None:
        tiers = trend_tiers({"GET /noisy": [2.0, 30.0, 150.0]})
        (trend,) = endpoint_trends(tiers, {}, default_slo_p95_ms=200.0)
        assert trend.slope_low is not None and trend.slope_high is not None
        assert trend.slope_low < trend.slope < trend.slope_high  # type: ignore[operator]
        assert trend.slope_high - trend.slope_low > 0.5  # t with 1 dof is wide, on purpose

    def test_a_scan_is_linear_once_the_cost_every_request_pays_is_left_out(self) -> None:
        # Measured on the missing-index demo: 6.1 -> 23.9 ms from 20 to 200 customers, while the
        # fastest endpoint took 2.1 ms. On raw p95 that is a log-log slope of 0.59 ("sub-linear",
        # never breaking); the scan itself grew 4.0 -> 21.8 ms, and breaks 100 ms before 2x goal.
        tiers = trend_tiers({"GET /clinic": [2.06, 2.13], "GET /patients?q": [6.09, 23.9]}, customers=(20, 200))
        trends = {t.endpoint: t for t in endpoint_trends(tiers, {}, default_slo_p95_ms=100.0)}
        scan = trends["GET /patients?q"]
        assert scan.growth_class == "linear" and scan.fixed_ms == pytest.approx(2.06)
        assert scan.breaks_at_customers is not None and 1000 < scan.breaks_at_customers < 2000
        assert trends["GET /clinic"].growth_class == "flat"

    def test_an_endpoint_close_to_the_fixed_cost_is_fitted_raw(self) -> None:
        # 2.1 -> 3.4 ms over a 2.0 ms fixed cost: the excess (0.1 -> 1.4) is a difference of two
        # noisy p95s, and its 14x ratio would read as steep growth.
        tiers = trend_tiers({"GET /clinic": [2.0, 2.1], "GET /slots": [2.1, 3.4]}, customers=(20, 200))
        trends = {t.endpoint: t for t in endpoint_trends(tiers, {}, default_slo_p95_ms=100.0)}
        assert trends["GET /slots"].fixed_ms == 0.0
        assert trends["GET /slots"].growth_class == "sub-linear"

    def test_two_tiers_give_a_slope_without_an_interval(self) -> None:
        tiers = trend_tiers({"GET /a": [2.0, 20.0]}, customers=(50, 500))
        (trend,) = endpoint_trends(tiers, {}, default_slo_p95_ms=200.0)
        assert trend.slope == pytest.approx(1.0) and trend.slope_low is None

    def test_one_tier_is_unknown(self) -> None:
        tiers = trend_tiers({"GET /a": [2.0]}, customers=(50,))
        (trend,) = endpoint_trends(tiers, {}, default_slo_p95_ms=200.0)
        assert trend.growth_class == "unknown" and trend.slope is None

    @pytest.mark.parametrize(
        "generator",
        [
            generator_health(saturated=True),
            # Other work inflates one tier and not the next: a slope drawn through that is noise.
            generator_health(crowded=True, other_cpu_pct=150.0),
        ],
        ids=["saturated-generator", "busy-machine"],
    )
    def test_tiers_not_measured_cleanly_are_left_out(self, generator: GeneratorState) -> None:
        tiers = trend_tiers({"GET /a": [2.0, 20.0, 2000.0]})
        last = tiers[-1]
        assert last.steady is not None
        tiers[-1] = tier(last.customers, steady=with_generator(last.steady, generator))
        (trend,) = endpoint_trends(tiers, {}, default_slo_p95_ms=200.0)
        assert [c for c, _ in trend.points] == [50, 500]

    def test_negative_noise_floor_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="noise_floor_ms"):
            endpoint_trends([], {}, default_slo_p95_ms=200.0, noise_floor_ms=-1)


def test_capacity_analysis_imports_no_matplotlib_and_no_locust() -> None:
    code = (
        "import sys, harness.capacity\n"
        "bad = [m for m in ('matplotlib', 'locust', 'kneed') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_floor_held_at_the_packs_max_rps_says_so_instead_of_a_limit() -> None:
    # The goal tier's stress steps stopped at the cap (40 arrivals/s), and nothing failed below:
    # the floor is the cap's. With a measured failure above the floor, it is the service's.
    steady = phase(offered_rps=20.0, service_ms=2.0)
    step = phase("stress", offered_rps=40.0, service_ms=2.0, label="x2")
    capped = dataclasses.replace(tier(1000, steady=steady, stress=[step]), max_rps_arrivals=40.0)
    est = estimate_capacity([capped], 0.02, 1000, latency_slo_ms=100)
    assert est.predicted_customers == pytest.approx(2000)
    assert est.params["max_rps_customers"] == pytest.approx(2000)
    slow = latency_summary(400.0, count=1000, p95_ms=900.0)
    failing = phase("stress", offered_rps=40.0, latency=slow, service=slow, label="x2")
    failed = dataclasses.replace(tier(1000, steady=steady, stress=[failing]), max_rps_arrivals=40.0)
    assert "max_rps_customers" not in estimate_capacity([failed], 0.02, 1000, latency_slo_ms=100).params
