"""Charts: each builds a Figure from a scorecard (or None when there is nothing to draw) and renders to SVG."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from factories import audit_record, full_audit_record, latency_summary, phase, resource_series, tier
from matplotlib.figure import Figure

from harness.capacity import estimate_capacity, fit_usl
from harness.records import (
    AuditRecord,
    CapacityEstimate,
    CapacityParams,
    EndpointTrend,
    UslParameters,
)
from harness.report import build_scorecard
from harness.report.charts import (
    all_charts,
    endpoint_chart,
    figure_svg,
    latency_chart,
    resources_chart,
    throughput_chart,
    tier_charts,
    usl_chart,
)


def usl_params() -> UslParameters:
    n = np.array([0.05, 0.3, 1, 3, 8, 16, 30, 50])
    x = 100 * n / (1 + 0.03 * (np.maximum(n, 1) - 1) + 0.0018 * np.maximum(n, 1) * (np.maximum(n, 1) - 1))
    return fit_usl(n, x * np.linspace(0.98, 1.02, n.size)).to_params()


def capacity(method: str = "usl", **params: float) -> CapacityEstimate:
    base = CapacityParams(goal_rps=300.0, latency_slo_ms=200.0, per_customer_rps=0.06)
    if method == "usl":
        base = replace(base, usl=usl_params(), x_capacity=900.0, x_capacity_low=870.0, x_capacity_high=930.0)
    return CapacityEstimate(
        predicted_customers=15_000.0 if method == "usl" else 10_000.0,
        low=14_500.0 if method == "usl" else 10_000.0,
        high=15_500.0 if method == "usl" else None,
        method=method,
        params=replace(base, **params),
        headroom=3.0,
        goal_customers=5000,
        confidence="high",
        points=((30.0, 30.0, 0.3), (60.0, 60.0, 0.6), (300.0, 300.0, 3.6), (600.0, 600.0, 12.0)),
    )


def card(record: AuditRecord) -> dict[str, object]:
    return build_scorecard(record)


def small_record(cap: CapacityEstimate | None = None, trends: tuple[EndpointTrend, ...] = ()) -> AuditRecord:
    """Two tiers: 500 (steady + one stress) and 5000 (steady, one stress, one saturated stress)."""
    tiers = [
        tier(500, steady=phase(offered_rps=30, service_ms=10), stress=[phase("stress", offered_rps=60, service_ms=10)]),
        tier(
            5000,
            steady=phase(offered_rps=300, service_ms=12),
            stress=[
                phase("stress", offered_rps=600, service_ms=20, latency=latency_summary(25)),
                phase("stress", offered_rps=1200, achieved_rps=700, service_ms=90, saturated=True),
            ],
        ),
    ]
    return audit_record(tiers, capacity=cap, trends=trends)


TRENDS = (
    EndpointTrend("GET /flat", ((50, 20.0), (500, 21.0), (5000, 20.5)), 0.01, -0.5, 0.5, "flat", None, 200.0),
    EndpointTrend("GET /slots", ((50, 1.0), (500, 10.0), (5000, 100.0)), 1.0, 1.0, 1.0, "linear", 7500.0, 150.0),
    EndpointTrend("GET /me", ((50, 3.0),), None, None, None, "unknown", None, 200.0),
)


class TestThroughputChart:
    def test_usl_record_draws_points_capacity_band_goal_and_latency(self) -> None:
        fig = throughput_chart(card(small_record(capacity(knee_offered_rps=600.0))))
        assert isinstance(fig, Figure)
        top, bottom = fig.axes
        assert len(top.collections) == 3  # one scatter per tier + the saturated phases
        assert len(top.lines) == 4  # kept up, capacity, goal, knee
        assert len(top.patches) == 1  # the capacity band
        assert len(bottom.lines) == 5  # p95 per tier (2), goal, knee, SLO
        assert top.get_xscale() == "log" and "arrivals/s" in bottom.get_xlabel()
        assert "ms" in bottom.get_ylabel()
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert "goal: 5,000 customers" in labels and "generator saturated (not the service's)" in labels
        assert "p95 SLO 200 ms" in labels and any(label.startswith("knee") for label in labels)

    def test_lower_bound_draws_the_measured_floor(self) -> None:
        fig = throughput_chart(card(small_record(capacity("lower-bound", lower_bound_rps=600.0))))
        assert fig is not None
        top, _ = fig.axes
        assert len(top.lines) == 3  # kept up, capacity >= floor, goal
        assert any("≥" in t.get_text() for t in fig.legends[0].get_texts())

    def test_without_an_estimate_the_goal_comes_from_the_tiers(self) -> None:
        fig = throughput_chart(card(small_record(None)))
        assert fig is not None
        top, _ = fig.axes
        assert len(top.lines) == 2  # kept up, goal (largest tier)

    def test_nothing_to_draw(self) -> None:
        assert throughput_chart(card(audit_record())) is None
        assert throughput_chart(card(audit_record([tier(50, status="skipped")]))) is None


class TestUslChart:
    def test_points_and_curve_are_in_the_same_unit(self) -> None:
        # Each persona action makes 1.6 requests, as the booking demo's do: the load's unit is
        # actions (iterations) per second, its requests/s are 1.6 times that. The fit is made on
        # completed actions/s, so the chart's points must be too, and lie on the curve.
        per_iteration = 1.6
        sigma, kappa, lam = 0.05, 0.002, 100.0
        phases = []
        for i, n in enumerate([0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 14.0, 20.0]):
            m = max(n, 1.0)
            x_iterations = lam * n / (1 + sigma * (m - 1) + kappa * m * (m - 1))
            offered = x_iterations * (1.0 if n < 8 else 1.4)  # the last three are past the knee
            rps = x_iterations * per_iteration
            p = phase("steady" if i == 0 else "stress", offered_rps=offered, achieved_rps=rps,
                      service_ms=1000.0 * n / rps, duration_s=60.0)
            phases.append(replace(p, iterations_completed=round(x_iterations * 60), active_s=60.0))
        tiers = [tier(5000, steady=phases[0], stress=phases[1:])]
        cap = estimate_capacity(tiers, per_customer_rps=0.01, goal_customers=5000, latency_slo_ms=10_000.0)
        scorecard = card(audit_record(tiers, capacity=cap))
        fig = usl_chart(scorecard)
        assert fig is not None
        (ax,) = fig.axes
        points = next(c for c in ax.collections if c.get_label().startswith("measured"))
        n_plotted, x_plotted = points.get_offsets().T
        curve = next(line for line in ax.lines if line.get_label().startswith("USL fit"))
        on_curve = np.interp(n_plotted, curve.get_xdata(), curve.get_ydata())
        assert np.allclose(x_plotted, on_curve, rtol=0.05), (x_plotted, on_curve)
        requests = sorted(p.achieved_rps for p in phases)
        assert not np.allclose(sorted(x_plotted), requests, rtol=0.2)  # not requests/s
        assert "actions/s" in ax.get_ylabel()

    def test_nothing_to_draw_without_a_fit(self) -> None:
        assert usl_chart(card(small_record(capacity("lower-bound", lower_bound_rps=600.0)))) is None
        assert usl_chart(card(audit_record())) is None


class TestLatencyChart:
    def test_percentile_bars_per_tier_and_the_slos(self) -> None:
        fig = latency_chart(card(small_record(capacity())))
        assert fig is not None
        (ax,) = fig.axes
        assert len(ax.patches) == 6  # p50, p95, p99 for each of two tiers
        assert [t.get_text() for t in ax.get_xticklabels()] == ["500", "5,000"]
        assert len(ax.lines) == 1  # the p95 SLO (from the estimate; no p99 SLO recorded)
        assert "ms" in ax.get_ylabel()

    def test_nothing_to_draw(self) -> None:
        assert latency_chart(card(audit_record())) is None


class TestEndpointChart:
    def test_one_line_per_endpoint_fit_extension_and_slo_lines(self) -> None:
        fig = endpoint_chart(card(small_record(trends=TRENDS)))
        assert fig is not None
        (ax,) = fig.axes
        # 3 endpoints + the linear one's dotted power law + its own SLO (150) + the common SLO (200)
        assert len(ax.lines) == 6
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        dotted = [line for line in ax.lines if line.get_linestyle() == ":"]
        assert max(dotted[0].get_xdata()) == pytest.approx(7500.0)  # extended to where it breaks

    def test_nothing_to_draw(self) -> None:
        assert endpoint_chart(card(audit_record())) is None
        empty = EndpointTrend("GET /x", (), None, None, None, "unknown", None)
        assert endpoint_chart(card(audit_record(trends=[empty]))) is None
        one_volume = EndpointTrend("GET /x", ((50, 3.0),), None, None, None, "unknown", None)
        assert endpoint_chart(card(audit_record(trends=[one_volume]))) is None


class TestResourcesChart:
    def test_cpu_and_memory_per_tier(self) -> None:
        tiers = [tier(50, steady=phase(), resources=resource_series([80, 81, 82, 83])),
                 tier(500, steady=phase(), resources=resource_series([90, 95, 100, 105], start_requests=20_000))]
        fig = resources_chart(card(audit_record(tiers)))
        assert fig is not None
        cpu, rss = fig.axes
        assert len(rss.lines) == 2 and "MB" in rss.get_ylabel() and "core" in cpu.get_ylabel()
        assert list(rss.lines[1].get_ydata()) == [90, 95, 100, 105]

    def test_nothing_to_draw_when_the_target_was_not_sampled(self) -> None:
        assert resources_chart(card(small_record())) is None


class TestEveryChart:
    def test_every_chart_has_a_title_and_labelled_axes(self) -> None:
        record = full_audit_record("NOT READY")
        scorecard = card(record)
        charts = all_charts(scorecard) + [c for t in record.tiers for c in tier_charts(scorecard, t.customers)]
        assert {c.id for c in charts} >= {"latency", "throughput", "usl", "endpoint-scaling", "resources",
                                          "tier-5000-endpoints"}  # fmt: skip
        for chart in charts:
            axes = chart.figure.axes
            assert chart.figure.get_suptitle(), chart.id
            assert axes[-1].get_xlabel(), chart.id
            assert all(ax.get_ylabel() for ax in axes), chart.id
            assert chart.caption and chart.title


class TestRendering:
    def test_figure_svg_is_an_inline_svg_element(self) -> None:
        fig = throughput_chart(card(small_record(capacity())))
        assert fig is not None
        svg = figure_svg(fig, salt="throughput")
        assert svg.startswith("<svg")
        assert "<?xml" not in svg and "<!DOCTYPE" not in svg
        assert "Throughput and latency vs offered load" in svg  # text stays text
        assert 'id="throughput-title"' in svg and 'id="throughput-xlabel-1"' in svg  # for the browser tests
        assert svg.rstrip().endswith("</svg>")

    def test_svg_is_deterministic(self) -> None:
        first = figure_svg(latency_chart(card(small_record(capacity()))))  # type: ignore[arg-type]
        second = figure_svg(latency_chart(card(small_record(capacity()))))  # type: ignore[arg-type]
        assert first == second

    def test_all_charts_lists_what_the_record_supports(self) -> None:
        charts = all_charts(card(small_record(capacity(), trends=TRENDS)))
        assert [c.id for c in charts] == ["latency", "throughput", "usl", "endpoint-scaling"]
        assert all(isinstance(c.figure, Figure) and c.title for c in charts)
        assert all(c.figure.get_label() == c.id for c in charts)
        assert [c.id for c in all_charts(card(small_record()))] == ["latency", "throughput"]
        assert all_charts(card(audit_record())) == []

    def test_charts_in_one_page_do_not_share_element_ids(self) -> None:
        import re

        ids = [
            set(re.findall(r'id="([^"]+)"', figure_svg(c.figure)))
            for c in all_charts(card(small_record(capacity(), trends=TRENDS)))
        ]
        assert not (ids[0] & ids[1]) and not (ids[1] & ids[2]) and not (ids[2] & ids[3])

    def test_pyplot_is_never_imported(self) -> None:
        code = "import sys, harness.report.charts\nassert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        subprocess.run([sys.executable, "-c", code], check=True)

    def test_charts_import_no_stage(self) -> None:
        # Charts read records and pure analysis; a stage (or Locust) behind them would let a
        # report run something.
        code = (
            "import sys, harness.report.charts\n"
            "bad = [m for m in sys.modules if m.split('.')[:2] in (['harness', 'load'], ['harness', 'tiers'],"
            " ['harness', 'target']) or m == 'locust']\n"
            "assert not bad, bad\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
