"""Data-volume scaling: each endpoint's growth class, its interval and where it breaks its SLO."""

from __future__ import annotations

import dataclasses
import math

import pytest
from factories import GeneratorState, generator_health, latency_summary, phase, tier, with_generator

from harness.capacity import endpoint_trends
from harness.records import EndpointMeasurement, TierResult
from harness.validity import MIN_PROBE_REQUESTS


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
        # Growth that is certain crosses the SLO somewhere, sub-linear or not: far out for a sqrt.
        assert trends["GET /sqrt"].breaks_at_customers is not None and trends["GET /sqrt"].breaks_at_customers > 50_000

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
        assert all(("not enough data" in t.note) is not judged for t in trends)

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
        # 6.1 -> 23.9 -> 120.5 ms from 20 to 2000 customers, while the fastest endpoint takes 2.1 ms.
        # On raw values that is a log-log slope of about 0.6 (sub-linear at best); the scan itself
        # grows 4.0 -> 21.8 -> 118 ms (0.73, linear) and crosses 100 ms before 2000 customers.
        tiers = trend_tiers({"GET /clinic": [2.06, 2.13, 2.1], "GET /patients?q": [6.09, 23.9, 120.5]},
                            customers=(20, 200, 2000))  # fmt: skip
        trends = {t.endpoint: t for t in endpoint_trends(tiers, {}, default_slo_p95_ms=100.0)}
        scan = trends["GET /patients?q"]
        assert scan.growth_class == "linear" and scan.fixed_ms == pytest.approx(2.06)
        assert scan.breaks_at_customers is not None and 1000 < scan.breaks_at_customers < 2000
        assert trends["GET /clinic"].growth_class == "flat"

    def test_an_endpoint_close_to_the_fixed_cost_is_fitted_raw(self) -> None:
        # 2.1 -> 3.4 ms over a 2.0 ms fixed cost: the excess (0.1 -> 1.4) is a difference of two
        # noisy p95s, and its 14x ratio would read as steep growth.
        tiers = trend_tiers({"GET /clinic": [2.0, 2.1, 2.05], "GET /slots": [2.1, 3.4, 5.5]}, customers=(20, 200, 2000))
        trends = {t.endpoint: t for t in endpoint_trends(tiers, {}, default_slo_p95_ms=100.0)}
        assert trends["GET /slots"].fixed_ms == 0.0
        assert trends["GET /slots"].growth_class == "sub-linear"

    def test_two_tiers_give_a_slope_without_an_interval_and_no_class(self) -> None:
        tiers = trend_tiers({"GET /a": [2.0, 20.0]}, customers=(50, 500))
        (trend,) = endpoint_trends(tiers, {}, default_slo_p95_ms=200.0)
        assert trend.slope == pytest.approx(1.0) and trend.slope_low is None
        assert trend.growth_class == "unknown" and trend.breaks_at_customers is None
        assert trend.note == "not enough data: 2 data volumes measured, a class needs 3"

    def test_a_class_is_named_only_when_the_interval_rules_out_the_others(self) -> None:
        # A noisy slope of about 0.3 whose interval runs from flat to super-linear is no class.
        tiers = trend_tiers({"GET /noisy": [2.0, 12.0, 9.0]}, customers=(50, 500, 5000))
        (trend,) = endpoint_trends(tiers, {}, default_slo_p95_ms=200.0)
        assert trend.growth_class == "unknown" and trend.breaks_at_customers is None
        assert "interval" in trend.note and "more data volumes" in trend.note

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


def probe_tiers(
    series: dict[str, list[float]], sizes: dict[str, list[float]] | None = None,
    customers: tuple[int, ...] = (50, 500, 5000), requests: int = 8,
) -> list[TierResult]:
    """Tiers whose probes measured each endpoint's median service time (and response size); their
    steady windows collapsed (every endpoint 10 s), as an overloaded goal tier does."""
    tiers = []
    for i, count in enumerate(customers):
        def measured(name: str, ms: float, i: int = i) -> EndpointMeasurement:
            size = (sizes or {}).get(name, [200.0] * len(customers))[i]
            return EndpointMeasurement(
                name=name, requests=requests, errors=0, errors_by_reason={},
                latency=latency_summary(ms, p50_ms=ms, count=requests),
                service=latency_summary(ms, p50_ms=ms, count=requests),
                latency_hdr="", service_hdr="", bytes_total=int(size * requests), bytes_max=int(size),
            )  # fmt: skip

        probe = phase("probe", offered_rps=4.0, endpoints=[measured(n, v[i]) for n, v in series.items()])
        slow = phase(offered_rps=count * 0.06, endpoints=[measured(n, 10_000.0) for n in series])
        tiers.append(dataclasses.replace(tier(count, steady=slow), probe=probe))
    return tiers


class TestProbeTrends:
    def test_the_probes_measure_every_tier_even_one_whose_load_collapsed(self) -> None:
        tiers = probe_tiers({"GET /search": [23.0, 36.0, 96.0], "GET /item": [5.0, 5.1, 5.0]})
        trends = {t.endpoint: t for t in endpoint_trends(tiers, {}, default_slo_p95_ms=100.0)}
        search = trends["GET /search"]
        assert search.measure == "probe-p50"
        assert search.points == ((50, 23.0), (500, 36.0), (5000, 96.0))
        assert trends["GET /item"].growth_class == "flat"

    def test_the_few_requests_a_short_probe_gives_each_task_are_enough_for_its_median(self) -> None:
        tiers = probe_tiers({"GET /a": [2.0, 20.0, 200.0]}, requests=MIN_PROBE_REQUESTS)
        (trend,) = endpoint_trends(tiers, {}, default_slo_p95_ms=100.0)
        assert [c for c, _ in trend.points] == [50, 500, 5000]

    def test_an_endpoint_with_too_few_probe_requests_or_a_crowded_probe_is_left_out(self) -> None:
        tiers = probe_tiers({"GET /a": [2.0, 20.0, 200.0]}, requests=MIN_PROBE_REQUESTS - 1)
        assert endpoint_trends(tiers, {}, default_slo_p95_ms=100.0) == ()
        tiers = probe_tiers({"GET /a": [2.0, 20.0, 200.0]})
        last = tiers[-1]
        assert last.probe is not None
        tiers[-1] = dataclasses.replace(last, probe=with_generator(last.probe, generator_health(crowded=True)))
        (trend,) = endpoint_trends(tiers, {}, default_slo_p95_ms=100.0)
        assert [c for c, _ in trend.points] == [50, 500]

    def test_a_response_that_grows_with_the_data_is_measured_apart_from_its_time(self) -> None:
        tiers = probe_tiers({"GET /list": [3.0, 3.1, 3.0], "GET /one": [3.0, 3.0, 3.1]},
                            sizes={"GET /list": [420.0, 4200.0, 42_000.0], "GET /one": [300.0, 310.0, 305.0]})  # fmt: skip
        trends = {t.endpoint: t for t in endpoint_trends(tiers, {}, default_slo_p95_ms=100.0)}
        grown = trends["GET /list"]
        assert grown.growth_class == "flat" and grown.size_class == "linear"
        assert grown.size_points[-1] == (5000, 42_000.0) and grown.size_slope == pytest.approx(1.0)
        assert trends["GET /one"].size_class == "unknown"  # a few hundred bytes are not judged
