"""Charts for the reports, built from an AuditRecord as matplotlib ``Figure`` objects.

The only module that imports matplotlib. Figures are built directly (``Figure()``), never through
pyplot, so nothing is kept in global state and charts can be built from any thread; rendering goes
through the SVG backend (``figure_svg``) for the self-contained HTML report.

Every chart function returns None when the record holds nothing to draw, so a report can simply
skip it. Only the shapes of the data are decided here; the numbers come from analysis
(``harness.capacity``) through the record.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable
from typing import Any, cast

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from harness.capacity import UslFit, completed_iterations_per_s, requests_per_iteration
from harness.records import (
    AuditRecord,
    CapacityEstimate,
    CapacityParams,
    PhaseMeasurement,
    TierResult,
)

__all__ = ["all_charts", "endpoint_chart", "figure_svg", "latency_chart", "throughput_chart"]

_STYLE: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.size": 9.0,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.0,
    "legend.fontsize": 8.0,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
}
_SATURATED = "#9e9e9e"
_SLO = "#c62828"
_GOAL = "#37474f"
_MODEL = "#1565c0"


def _palette(count: int) -> list[tuple[float, float, float, float]]:
    cmap = matplotlib.colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def _new_figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(cast(Any, _STYLE)):
        return Figure(figsize=(width, height), layout="constrained")


def _plain_numbers(ax: Axes, *, x: bool = True, y: bool = True) -> None:
    """Log axes read better as 50, 500, 5000 than as 10^2."""
    fmt = FuncFormatter(lambda v, _pos: f"{v:,.6g}")
    for enabled, axis in ((x, ax.xaxis), (y, ax.yaxis)):
        if enabled:
            axis.set_major_formatter(fmt)
            axis.set_minor_formatter(NullFormatter())


def _phases(tier: TierResult) -> list[PhaseMeasurement]:
    return ([tier.steady] if tier.steady is not None else []) + list(tier.stress)


def _measured(phase: PhaseMeasurement) -> bool:
    return phase.achieved_rps > 0 and not phase.validity.saturated


def _goal_rps(record: AuditRecord) -> tuple[int, float] | None:
    """The goal tier and its nominal arrival rate (from the estimate, else from the tiers)."""
    capacity = record.capacity
    if capacity is not None and capacity.params.goal_rps:
        return capacity.goal_customers, float(capacity.params.goal_rps)
    tiers = [t for t in record.tiers if t.customers > 0 and t.offered_rps > 0]
    if not tiers:
        return None
    goal = capacity.goal_customers if capacity is not None else max(t.customers for t in tiers)
    for t in tiers:
        if t.customers == goal:
            return goal, t.offered_rps
    largest = max(tiers, key=lambda t: t.customers)
    return goal, goal * largest.offered_rps / largest.customers


def _positive(values: Iterable[float]) -> list[float]:
    return [v for v in values if v > 0 and math.isfinite(v)]


# --- (a) throughput -------------------------------------------------------------------------


def throughput_chart(record: AuditRecord) -> Figure | None:
    """Achieved vs offered load for every steady and stress phase, and the USL model.

    Left: completed iterations/s against offered arrivals/s (log-log; the diagonal is "keeping up"), the
    estimated capacity with its band and the goal tier's nominal load. Right, when the record
    carries a USL fit: throughput against in-server concurrency N = X·R with the fitted curve, its
    95 % band and N*. Phases measured with a saturated generator are drawn grey, as not used.
    """
    tiers = [t for t in record.tiers if any(p.achieved_rps > 0 for p in _phases(t))]
    if not tiers:
        return None
    capacity = record.capacity
    fit = UslFit.from_params(capacity.params.usl) if capacity is not None else None
    with matplotlib.rc_context(cast(Any, _STYLE)):
        fig = _new_figure(11.0 if fit else 6.5, 4.4)
        axes = fig.subplots(1, 2 if fit else 1, squeeze=False)[0]
        ax = axes[0]
        colors = _palette(len(tiers))
        all_x: list[float] = []
        saturated: list[PhaseMeasurement] = []
        completed: dict[int, float] = {}  # id(phase) -> completed iterations/s, offered's unit
        per_iteration = requests_per_iteration(record.tiers)
        for color, tier in zip(colors, tiers, strict=True):
            phases = [p for p in _phases(tier) if p.achieved_rps > 0]
            completed.update({id(p): completed_iterations_per_s(p, per_iteration) for p in phases})
            saturated += [p for p in phases if p.validity.saturated]
            good = [p for p in phases if not p.validity.saturated]
            all_x += [p.offered_rps for p in phases] + [completed[id(p)] for p in phases]
            if good:
                ax.scatter(
                    [p.offered_rps for p in good],
                    [completed[id(p)] for p in good],
                    color=color,
                    s=[36 if p.kind == "steady" else 22 for p in good],
                    marker="o",
                    edgecolors="white",
                    linewidths=0.6,
                    zorder=3,
                    label=f"{tier.customers:,} customers",
                )
        if saturated:
            ax.scatter(
                [p.offered_rps for p in saturated],
                [completed[id(p)] for p in saturated],
                color=_SATURATED,
                marker="x",
                s=26,
                zorder=3,
                label="generator saturated (not used)",
            )
        lo, hi = min(_positive(all_x)), max(_positive(all_x))
        goal = _goal_rps(record)
        if goal is not None:
            hi = max(hi, goal[1])
        if capacity is not None:
            for value in (capacity.params.x_capacity_high, capacity.params.lower_bound_rps):
                if value is not None:
                    hi = max(hi, value)
        span = np.geomspace(lo / 1.5, hi * 1.5, 50)
        ax.plot(span, span, color="#616161", linestyle=":", linewidth=1.0, label="achieved = offered")
        if capacity is not None:
            _capacity_lines(ax, capacity)
        if goal is not None:
            ax.axvline(goal[1], color=_GOAL, linestyle="--", linewidth=1.1, label=f"goal: {goal[0]:,} customers")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo / 1.5, hi * 1.5)
        ax.set_ylim(lo / 1.5, hi * 1.5)
        _plain_numbers(ax)
        ax.set_xlabel("offered arrivals (iterations/s)")
        ax.set_ylabel("throughput, completed iterations/s")
        ax.set_title("Throughput vs offered load")
        ax.legend(loc="lower right")
        if fit is not None:
            _usl_panel(axes[1], record, fit, goal)
    return fig


def _capacity_lines(ax: Axes, capacity: CapacityEstimate) -> None:
    """The USL capacity with its band, or else the measured floor, as horizontal lines."""
    params = capacity.params
    if capacity.method == "usl" and params.x_capacity is not None:
        x_cap = params.x_capacity
        x_low = params.x_capacity_low if params.x_capacity_low is not None else x_cap
        x_high = params.x_capacity_high if params.x_capacity_high is not None else x_cap
        ax.axhspan(x_low, x_high, color=_MODEL, alpha=0.12, linewidth=0)
        ax.axhline(x_cap, color=_MODEL, linewidth=1.4, label=f"capacity (USL) {x_cap:,.4g} iterations/s, 95 % band")
    elif params.lower_bound_rps is not None:
        lb = params.lower_bound_rps
        ax.axhline(lb, color=_MODEL, linewidth=1.2, linestyle="--", label=f"capacity ≥ {lb:,.4g} iterations/s (measured)")


def _usl_panel(ax: Axes, record: AuditRecord, fit: UslFit, goal: tuple[int, float] | None) -> None:
    points = [p for t in record.tiers for p in _phases(t) if _measured(p) and p.concurrency > 0]
    n_values = [p.concurrency for p in points]
    n_lo = min(n_values + [fit.n_min if fit.n_min > 0 else 1.0])
    n_hi = max(n_values + [fit.n_max if math.isfinite(fit.n_max) else 1.0])
    if math.isfinite(fit.n_star):
        n_hi = max(n_hi, fit.n_star * 1.5)
    grid = np.geomspace(n_lo / 1.5, n_hi * 2.0, 200)
    x, low, high = fit.predict(grid)
    if fit.has_band:
        ax.fill_between(grid, low, np.minimum(high, 3 * np.max(x)), color=_MODEL, alpha=0.15, linewidth=0, label="95 % band")
    trusted = record.capacity is not None and record.capacity.method == "usl"
    ax.plot(
        grid,
        x,
        color=_MODEL if trusted else _SATURATED,
        linewidth=1.6,
        linestyle="-" if trusted else "--",
        label=f"USL σ={fit.sigma:.3g} κ={fit.kappa:.2g}" + ("" if trusted else " (not used: see note)"),
    )
    ax.scatter(
        n_values,
        [p.achieved_rps for p in points],
        color="#212121",
        s=18,
        zorder=3,
        label="measured phases",
    )
    if math.isfinite(fit.n_star):
        ax.axvline(fit.n_star, color=_MODEL, linestyle=":", linewidth=1.0, label=f"N* = {fit.n_star:.3g} in flight")
    if goal is not None:
        ax.axhline(goal[1], color=_GOAL, linestyle="--", linewidth=1.1, label=f"needed for {goal[0]:,} customers")
    ax.set_xscale("log")
    _plain_numbers(ax, y=False)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("requests in flight in the target, N = X·R (Little's law)")
    ax.set_ylabel("throughput (iterations/s)")
    ax.set_title("Universal Scalability Law fit")
    ax.legend(loc="upper left")


# --- (b) latency ----------------------------------------------------------------------------


def latency_chart(record: AuditRecord) -> Figure | None:
    """p50 / p95 / p99 latency from the intended start against offered load, all tiers together.

    Log-log: the tiers' loads span decades. The SLO and the latency knee are drawn when the
    capacity estimate carries them. Phases with a saturated generator are shown as grey crosses
    at their p99: that latency was the generator's, not the target's.
    """
    phases = [p for t in record.tiers for p in _phases(t) if p.achieved_rps > 0 and p.latency.count > 0]
    good = sorted((p for p in phases if not p.validity.saturated), key=lambda p: p.offered_rps)
    saturated = [p for p in phases if p.validity.saturated]
    if not phases:
        return None
    with matplotlib.rc_context(cast(Any, _STYLE)):
        fig = _new_figure(6.5, 4.4)
        ax = fig.subplots()
        if good:
            offered = [p.offered_rps for p in good]
            for name, color, width in (("p50", "#2e7d32", 1.2), ("p95", "#ef6c00", 1.6), ("p99", "#6a1b9a", 1.2)):
                values = [max(getattr(p.latency, f"{name}_ms"), 1e-3) for p in good]
                ax.plot(offered, values, marker="o", markersize=3.5, color=color, linewidth=width, label=name)
        if saturated:
            ax.scatter(
                [p.offered_rps for p in saturated],
                [max(p.latency.p99_ms, 1e-3) for p in saturated],
                color=_SATURATED,
                marker="x",
                s=26,
                zorder=3,
                label="p99, generator saturated (not the target's)",
            )
        params = record.capacity.params if record.capacity is not None else CapacityParams()
        if params.latency_slo_ms is not None:
            ax.axhline(params.latency_slo_ms, color=_SLO, linestyle="--", linewidth=1.1, label=f"SLO {params.latency_slo_ms:g} ms")
        if params.knee_offered_rps is not None:
            ax.axvline(params.knee_offered_rps, color=_GOAL, linestyle=":", linewidth=1.1, label=f"knee {params.knee_offered_rps:,.4g} arrivals/s")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_numbers(ax)
        ax.set_xlabel("offered arrivals (iterations/s)")
        ax.set_ylabel("latency from intended start (ms)")
        ax.set_title("Latency vs offered load")
        ax.legend(loc="upper left")
    return fig


# --- (c) data volume ------------------------------------------------------------------------


def endpoint_chart(record: AuditRecord) -> Figure | None:
    """Each endpoint's steady-window service p95 against customers (log-log), with its SLO.

    Endpoints that grow linearly or worse also get their fitted power law, dotted, extended to
    where it crosses the SLO (at most 100x the largest tier), so the break point is visible.
    SLO lines are dashed: the most common one in red, endpoint-specific ones in their colour.
    """
    trends = [t for t in record.trends if t.points]
    if not trends:
        return None
    with matplotlib.rc_context(cast(Any, _STYLE)):
        fig = _new_figure(7.5, 4.6)
        ax = fig.subplots()
        colors = _palette(len(trends))
        # The most common SLO (usually the default) is one red line; endpoint-specific SLOs are
        # dashed lines in the endpoint's colour.
        slo_values = [t.slo_p95_ms for t in trends if t.slo_p95_ms]
        common = max(set(slo_values), key=slo_values.count) if slo_values else None
        for color, trend in zip(colors, trends, strict=True):
            customers = [c for c, _ in trend.points]
            values = [max(v, 1e-3) for _, v in trend.points]
            label = trend.endpoint if trend.slope is None else f"{trend.endpoint} ({trend.growth_class}, slope {trend.slope:.2f})"
            ax.plot(customers, values, marker="o", markersize=4, color=color, linewidth=1.4, label=label)
            if trend.growth_class in ("linear", "super-linear") and trend.slope is not None:
                lx, ly = np.log(customers), np.log(values)
                intercept = float(np.mean(ly) - trend.slope * np.mean(lx))
                end: float = max(customers)
                if trend.breaks_at_customers is not None:
                    end = min(max(end, trend.breaks_at_customers), 100 * max(customers))
                span = np.geomspace(min(customers), end, 30)
                ax.plot(span, np.exp(intercept) * span**trend.slope, color=color, linestyle=":", linewidth=1.0)
            if trend.slo_p95_ms and trend.slo_p95_ms != common:
                ax.axhline(
                    trend.slo_p95_ms,
                    color=color,
                    linestyle="--",
                    linewidth=0.9,
                    label=f"{trend.endpoint} SLO {trend.slo_p95_ms:g} ms",
                )
        if common is not None:
            ax.axhline(common, color=_SLO, linestyle="--", linewidth=1.1, label=f"p95 SLO {common:g} ms")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_numbers(ax)
        ax.set_xlabel("customers (data volume)")
        ax.set_ylabel("service time p95 at nominal load (ms)")
        ax.set_title("Endpoint latency vs data volume")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


# --- rendering ------------------------------------------------------------------------------


def figure_svg(fig: Figure, *, salt: str | None = None) -> str:
    """Render a figure to an inline ``<svg>`` element (no XML prolog, no creation date).

    Text stays text (smaller, selectable, searchable). Element ids derive from ``salt`` (default:
    the figure's label, set by ``all_charts`` to the chart id), so output is deterministic and two
    charts inlined in one page do not share ids.
    """
    buffer = io.StringIO()
    rc: dict[str, Any] = {"svg.fonttype": "none", "svg.hashsalt": salt or fig.get_label() or "scaleready"}
    with matplotlib.rc_context(cast(Any, rc)):
        FigureCanvasSVG(fig).print_svg(buffer, metadata={"Date": None})
    text = buffer.getvalue()
    return _prefix_ids(text[text.find("<svg") :], rc["svg.hashsalt"])


def _prefix_ids(svg: str, prefix: str) -> str:
    # Matplotlib names elements "figure_1", "axes_1"... in every figure; inlined side by side in
    # one HTML page they would collide, so every id and every reference to one gets the prefix.
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', svg)


def all_charts(record: AuditRecord) -> list[tuple[str, str, Figure]]:
    """Every chart the record supports, as (id, title, figure), in report order."""
    builders = (
        ("throughput", "Throughput and capacity", throughput_chart),
        ("latency", "Latency vs offered load", latency_chart),
        ("endpoint-scaling", "Endpoint latency vs data volume", endpoint_chart),
    )
    charts = []
    for chart_id, title, build in builders:
        fig = build(record)
        if fig is not None:
            fig.set_label(chart_id)
            charts.append((chart_id, title, fig))
    return charts
