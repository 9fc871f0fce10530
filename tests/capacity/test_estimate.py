"""Capacity in customers: the USL estimate, the measured floor and ceiling, and every refusal."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from factories import endpoint, generator_health, latency_summary, phase, tier, with_generator
from scipy.optimize import brentq

from harness.capacity import estimate_capacity
from tests.capacity.usl_service import KAPPA, LAM, PER_CUSTOMER, SIGMA, usl, usl_tiers


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
        assert est.params.usl is not None and est.params.usl.sigma == pytest.approx(SIGMA, abs=0.02)
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
        assert est.params.past_knee_points == 1  # 200 completed iterations/s of 400 offered
        assert est.params.lower_bound_customers == pytest.approx(1000, rel=0.01)

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
        assert est.params.lower_bound_customers == pytest.approx(2000, rel=0.001)
        uncounted = dataclasses.replace(step, iterations_completed=0)
        est = estimate_capacity([tier(1000, steady=steady, stress=[uncounted])], 0.1, 1000, latency_slo_ms=100)
        assert est.params.lower_bound_customers == pytest.approx(1800, rel=0.001)  # 360 / 2.0 per iteration

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
        assert est.params.lower_bound_customers == pytest.approx(1500)

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

    def test_a_step_one_endpoint_answered_with_errors_was_not_carried(self) -> None:
        # At x2 a downstream with a fixed number of slots answered 503 to 60 % of one endpoint's
        # requests: 0.6 % of all requests, under the budget, and its latency was fine. The service
        # did not carry x2 all the same, so the floor stays at x1.5 and x2 caps the band.
        def step(factor: float, failing: int) -> object:
            rate = 100.0 * factor
            requests = int(rate * 60)
            eps = [endpoint("GET /items", requests=requests - 100, service_ms=2.0),
                   endpoint("GET /quote", requests=100, errors=failing, service_ms=2.0,
                            errors_by_reason={"http-503": failing} if failing else {})]  # fmt: skip
            return phase("steady" if factor == 1 else "stress", offered_rps=rate, service_ms=2.0, endpoints=eps,
                         label="steady" if factor == 1 else f"stress x{factor:g}")  # fmt: skip

        t = tier(1000, steady=step(1, 0), stress=[step(1.5, 0), step(2, 60)])  # type: ignore[arg-type]
        est = estimate_capacity([t], 0.1, 1000, latency_slo_ms=100)
        assert est.params.lower_bound_customers == pytest.approx(1500)
        assert est.high == pytest.approx(2000) and est.params.ceiling_customers == pytest.approx(2000)
        assert est.method == "lower-bound"

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
        assert est.params.usl is not None  # the fit is still reported, only not trusted

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
        assert est.params.unmeasured_customers == pytest.approx(10_000)
        assert est.high is None  # the x2 miss is nobody's, so it caps nothing
        assert "missed the SLO while the machine was busy" in est.note
        # The same x2 miss on a quiet machine is the service's: it caps the band.
        quiet = tier(5000, steady=steady, stress=[phase("stress", offered_rps=337.5, service_ms=2.0, label="x1.5"),
                                                 with_generator(goal.stress[1], generator_health())])  # fmt: skip
        est = estimate_capacity([quiet], 0.045, 5000, latency_slo_ms=100)
        assert est.high == pytest.approx(10_000) and est.params.unmeasured_customers is None

    def test_a_wide_band_refuses_to_extrapolate(self) -> None:
        # One saturated point per tier, far past a big gap, with 10 % noise: κ barely identified.
        tiers = usl_tiers(
            LAM, SIGMA, KAPPA, PER_CUSTOMER, customers=(5, 50), steps=(1.5, 2, 4, 400), noise=0.1, seed=1
        )
        est = estimate_capacity(tiers, PER_CUSTOMER, 5000, latency_slo_ms=10_000)
        assert est.method == "lower-bound"
        assert "wider than the estimate" in est.note
        assert est.params.relative_band_width is not None and est.params.relative_band_width > 1.0

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
    assert est.params.max_rps_customers == pytest.approx(2000)
    slow = latency_summary(400.0, count=1000, p95_ms=900.0)
    failing = phase("stress", offered_rps=40.0, latency=slow, service=slow, label="x2")
    failed = dataclasses.replace(tier(1000, steady=steady, stress=[failing]), max_rps_arrivals=40.0)
    assert estimate_capacity([failed], 0.02, 1000, latency_slo_ms=100).params.max_rps_customers is None


def test_a_load_whose_arrivals_could_not_start_because_every_user_waited_on_the_target_failed() -> None:
    # x2 collapsed: the users all waited on the target and arrivals were dropped. That is the
    # target's limit, a ceiling; a generator short of its own CPU says nothing and is left out.
    from harness import validity

    def collapsed(limited: bool) -> object:
        p = phase("stress", offered_rps=200.0, achieved_rps=20.0, service_ms=900.0, label="stress x2")
        v = validity.from_parts(p.generator, ["190 of 1600 iterations could not start"], [], (),
                                generator_limited=limited)  # fmt: skip
        return dataclasses.replace(p, validity=v)

    steady = phase("steady", offered_rps=100.0, service_ms=2.0)
    target = estimate_capacity([tier(1000, steady=steady, stress=[collapsed(False)])], 0.1, 1000, latency_slo_ms=100)  # type: ignore[list-item]
    assert target.params.ceiling_customers == pytest.approx(2000) and target.high == pytest.approx(2000)
    generator = estimate_capacity([tier(1000, steady=steady, stress=[collapsed(True)])], 0.1, 1000, latency_slo_ms=100)  # type: ignore[list-item]
    assert generator.params.ceiling_customers is None
