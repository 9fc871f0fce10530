"""Charts: each builds a Figure from a record (or None when there is nothing to draw) and renders to SVG."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from factories import audit_record, latency_summary, phase, tier
from matplotlib.figure import Figure

from harness.capacity import fit_usl
from harness.records import (
    AuditRecord,
    CapacityEstimate,
    CapacityParams,
    EndpointTrend,
    UslParameters,
)
from harness.report.charts import (
    all_charts,
    endpoint_chart,
    figure_svg,
    latency_chart,
    throughput_chart,
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
    )


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
    def test_usl_record_draws_points_model_band_and_goal(self) -> None:
        fig = throughput_chart(small_record(capacity()))
        assert isinstance(fig, Figure)
        left, right = fig.axes
        assert len(left.collections) == 3  # one scatter per tier + the saturated phase
        assert len(left.lines) == 3  # achieved = offered, capacity, goal
        assert len(left.patches) == 1  # the capacity band
        assert len(right.lines) == 3  # USL curve, N*, goal throughput
        assert len(right.collections) == 2  # band + measured points
        assert left.get_xscale() == "log" and "iterations/s" in left.get_xlabel()
        labels = [t.get_text() for t in left.get_legend().get_texts()]
        assert "goal: 5,000 customers" in labels and "generator saturated (not used)" in labels

    def test_lower_bound_draws_one_panel_with_the_measured_floor(self) -> None:
        fig = throughput_chart(small_record(capacity("lower-bound", lower_bound_rps=600.0)))
        assert fig is not None
        (ax,) = fig.axes
        assert len(ax.lines) == 3  # achieved = offered, capacity >= floor, goal
        assert any("≥" in t.get_text() for t in ax.get_legend().get_texts())

    def test_without_an_estimate_the_goal_comes_from_the_tiers(self) -> None:
        fig = throughput_chart(small_record(None))
        assert fig is not None
        (ax,) = fig.axes
        assert len(ax.lines) == 2  # achieved = offered, goal (largest tier)

    def test_nothing_to_draw(self) -> None:
        assert throughput_chart(audit_record()) is None
        assert throughput_chart(audit_record([tier(50, status="skipped")])) is None


class TestLatencyChart:
    def test_percentile_lines_slo_and_knee(self) -> None:
        fig = latency_chart(small_record(capacity(knee_offered_rps=600.0)))
        assert fig is not None
        (ax,) = fig.axes
        assert [line.get_label() for line in ax.lines[:3]] == ["p50", "p95", "p99"]
        assert len(ax.lines) == 5  # p50, p95, p99, SLO, knee
        assert len(ax.lines[0].get_xdata()) == 4  # the saturated phase is not on the lines
        assert len(ax.collections) == 1  # ...but shown apart
        assert "ms" in ax.get_ylabel()

    def test_nothing_to_draw(self) -> None:
        assert latency_chart(audit_record()) is None


class TestEndpointChart:
    def test_one_line_per_endpoint_fit_extension_and_slo_lines(self) -> None:
        fig = endpoint_chart(small_record(trends=TRENDS))
        assert fig is not None
        (ax,) = fig.axes
        # 3 endpoints + the linear one's dotted power law + its own SLO (150) + the common SLO (200)
        assert len(ax.lines) == 6
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        dotted = [line for line in ax.lines if line.get_linestyle() == ":"]
        assert max(dotted[0].get_xdata()) == pytest.approx(7500.0)  # extended to where it breaks

    def test_nothing_to_draw(self) -> None:
        assert endpoint_chart(audit_record()) is None
        empty = EndpointTrend("GET /x", (), None, None, None, "unknown", None)
        assert endpoint_chart(audit_record(trends=[empty])) is None


class TestRendering:
    def test_figure_svg_is_an_inline_svg_element(self) -> None:
        fig = throughput_chart(small_record(capacity()))
        assert fig is not None
        svg = figure_svg(fig)
        assert svg.startswith("<svg")
        assert "<?xml" not in svg and "<!DOCTYPE" not in svg
        assert "Throughput vs offered load" in svg  # text stays text
        assert svg.rstrip().endswith("</svg>")

    def test_svg_is_deterministic(self) -> None:
        first = figure_svg(latency_chart(small_record(capacity())))  # type: ignore[arg-type]
        second = figure_svg(latency_chart(small_record(capacity())))  # type: ignore[arg-type]
        assert first == second

    def test_all_charts_lists_what_the_record_supports(self) -> None:
        charts = all_charts(small_record(capacity(), trends=TRENDS))
        assert [c[0] for c in charts] == ["throughput", "latency", "endpoint-scaling"]
        assert all(isinstance(fig, Figure) and title for _, title, fig in charts)
        assert all(fig.get_label() == chart_id for chart_id, _, fig in charts)
        assert [c[0] for c in all_charts(small_record())] == ["throughput", "latency"]
        assert all_charts(audit_record()) == []

    def test_charts_in_one_page_do_not_share_element_ids(self) -> None:
        import re

        ids = [
            set(re.findall(r'id="([^"]+)"', figure_svg(fig)))
            for _, _, fig in all_charts(small_record(capacity(), trends=TRENDS))
        ]
        assert not (ids[0] & ids[1]) and not (ids[1] & ids[2])

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
