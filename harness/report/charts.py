"""Charts for the reports, drawn from the scorecard as matplotlib ``Figure`` objects.

The only module that imports matplotlib. Figures are built directly (``Figure()``), never through
pyplot, so nothing is kept in global state and charts can be built from any thread; rendering goes
through the SVG backend (``figure_svg``) for the self-contained HTML report.

Charts read the scorecard dict, not the AuditRecord: ``scaleready report RUN`` redraws an earlier
run from its scorecard.json alone, and a fresh audit must draw the same pictures. Fields added to
the scorecard after a run was written are absent from its scorecard; a chart then draws what the
older fields hold, or nothing.

Every chart function returns None when there is nothing to draw. Each is drawn for a full-width
slot of the report and of an A4 page, has a title and labelled axes (their SVG groups carry the
ids ``title``, ``xlabel-N`` and ``ylabel-N``, which the browser tests look for), and comes with a
one-sentence caption saying how to read it. Units are the offered load's throughout: arrivals and
completed iterations per second (one iteration is one persona action of one or more requests).
"""

from __future__ import annotations

import functools
import io
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, cast

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from harness.capacity import UslFit
from harness.report.scorecard import usl_from_params

__all__ = [
    "Chart",
    "all_charts",
    "endpoint_chart",
    "figure_png",
    "figure_svg",
    "history_chart",
    "latency_chart",
    "resources_chart",
    "throughput_chart",
    "tier_endpoints_chart",
    "usl_chart",
]

Card = Mapping[str, Any]
P = ParamSpec("P")

WIDTH_IN = 9.0  # full width; printed on A4 it shrinks to about 0.8x, so fonts stay above 8 pt
_STYLE: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.size": 10.5,
    "axes.titlesize": 12.0,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10.5,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "legend.fontsize": 9.5,
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
_KNEE = "#6a1b9a"
_PERCENTILES = (("p50", "#2e7d32"), ("p95", "#ef6c00"), ("p99", "#6a1b9a"))


@dataclass(frozen=True)
class Chart:
    """One chart of the report: where it goes, its title, how to read it, and the figure."""

    id: str
    title: str
    caption: str
    figure: Figure


# --- reading the scorecard -------------------------------------------------------------------


@dataclass(frozen=True)
class _Phase:
    """One measured load phase (a steady window or a stress step) as the charts need it."""

    tier: int
    kind: str  # "steady" or "stress"
    offered: float
    completed: float  # completed iterations/s: the offered load's unit
    p95: float | None
    saturated: bool


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _phases(card: Card) -> list[_Phase]:
    """Every steady window and stress step that completed something, in the offered load's unit."""
    raw: list[tuple[int, str, Mapping[str, Any], bool]] = []
    for t in card.get("tiers", []):
        if t.get("steady_window") is not None:
            generator = t.get("generator") or {}
            raw.append((t["customers"], "steady", t, bool(generator.get("saturated"))))
        raw += [(t["customers"], "stress", s, bool(s.get("saturated"))) for s in t.get("stress", [])]
    per_iteration = _requests_per_iteration(raw)
    phases = []
    for customers, kind, p, saturated in raw:
        offered, achieved = _number(p.get("offered_rps")), _number(p.get("achieved_rps"))
        completed = _number(p.get("completed_ips"))
        if completed is None and achieved is not None:
            completed = achieved / per_iteration  # a scorecard written before completed_ips
        if not offered or not completed:
            continue
        phases.append(_Phase(customers, kind, offered, completed, _number(p.get("p95_ms")), saturated))
    return phases


def _requests_per_iteration(raw: Sequence[tuple[int, str, Mapping[str, Any], bool]]) -> float:
    """Requests per iteration at the lightest unsaturated phase, for scorecards without
    ``completed_ips`` (harness.capacity.requests_per_iteration, from the scorecard's numbers)."""
    light = [p for _, _, p, saturated in raw if not saturated and (_number(p.get("offered_rps")) or 0) > 0
             and (_number(p.get("achieved_rps")) or 0) > 0]  # fmt: skip
    if not light:
        return 1.0
    lightest = min(light, key=lambda p: p["offered_rps"])
    return max(float(lightest["achieved_rps"]) / float(lightest["offered_rps"]), 1e-9)


def _capacity(card: Card) -> Mapping[str, Any]:
    return card.get("capacity") or {}


def _params(card: Card) -> Mapping[str, Any]:
    return _capacity(card).get("params") or {}


def _slo(card: Card) -> Mapping[str, Any]:
    """The pack's SLOs as the audit recorded them (absent from older scorecards)."""
    options = card.get("options") or {}
    slo = options.get("slo") if isinstance(options, Mapping) else None
    return slo if isinstance(slo, Mapping) else {}


def _default_slo(card: Card) -> tuple[float | None, float | None]:
    """The p95 and p99 objectives of every endpoint without its own."""
    slo = _slo(card)
    p95 = _number(slo.get("p95_ms")) or _number(_params(card).get("latency_slo_ms"))
    return p95, _number(slo.get("p99_ms"))


def _endpoint_slo(card: Card, endpoint: str) -> tuple[float | None, float | None]:
    own = (_slo(card).get("endpoints") or {}).get(endpoint) or {}
    p95, p99 = _default_slo(card)
    return _number(own.get("p95_ms")) or p95, _number(own.get("p99_ms")) or p99


def _goal(card: Card) -> tuple[int, float] | None:
    """The goal tier and its nominal arrival rate (from the estimate, else from the tiers)."""
    capacity, params = _capacity(card), _params(card)
    goal_customers = capacity.get("goal_customers") or (card.get("options") or {}).get("goal_customers")
    goal_rps = _number(params.get("goal_rps"))
    if goal_customers and goal_rps:
        return int(goal_customers), goal_rps
    tiers = [t for t in card.get("tiers", []) if t["customers"] > 0 and (t.get("offered_rps") or 0) > 0]
    if not tiers:
        return None
    goal = int(goal_customers or max(t["customers"] for t in tiers))
    for t in tiers:
        if t["customers"] == goal:
            return goal, float(t["offered_rps"])
    largest = max(tiers, key=lambda t: t["customers"])
    return goal, goal * float(largest["offered_rps"]) / largest["customers"]


def _time(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --- drawing helpers -------------------------------------------------------------------------


def _palette(count: int) -> list[tuple[float, float, float, float]]:
    cmap = matplotlib.colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def _new_figure(height: float, *, rows: int = 1, sharex: bool = False,
                height_ratios: Sequence[float] | None = None) -> tuple[Figure, list[Axes]]:  # fmt: skip
    with matplotlib.rc_context(cast(Any, _STYLE)):
        fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
        axes = fig.subplots(rows, 1, sharex=sharex, squeeze=False,
                            gridspec_kw={"height_ratios": height_ratios} if height_ratios else None)[:, 0]  # fmt: skip
    return fig, list(axes)


def _labels(fig: Figure, axes: Sequence[Axes], title: str, xlabel: str, ylabels: Sequence[str]) -> None:
    """The title over the figure's left edge, the x label on the last axes, a y label on each;
    with SVG ids. (A title on the axes would start where the tick labels end, and long endpoint
    names push it off the figure.)"""
    fig.suptitle(title, x=0.01, ha="left", fontsize=12.0, fontweight="bold", gid="title")
    axes[-1].set_xlabel(xlabel)
    for i, (ax, ylabel) in enumerate(zip(axes, ylabels, strict=True)):
        ax.set_ylabel(ylabel)
        ax.yaxis.label.set_gid(f"ylabel-{i}")
    axes[-1].xaxis.label.set_gid(f"xlabel-{len(axes) - 1}")


def _plain_numbers(ax: Axes, *, x: bool = True, y: bool = True) -> None:
    """Log axes read better as 50, 500, 5000 than as 10^2; minor ticks only add clutter (and
    most of the time it takes to lay a figure out)."""
    fmt = FuncFormatter(lambda v, _pos: f"{v:,.6g}")
    for enabled, axis in ((x, ax.xaxis), (y, ax.yaxis)):
        if enabled:
            axis.set_major_formatter(fmt)
            axis.set_minor_locator(NullLocator())


def _positive(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None and v > 0 and math.isfinite(v)]


def _short(name: str, limit: int = 44) -> str:
    """An endpoint name short enough for a tick label or a legend (the tables keep it whole)."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _legend_below(ax: Axes, ncol: int = 3, *, also: Axes | None = None) -> None:
    """One legend under the plot (for ``ax`` and the panel ``also`` above it): inside, a legend
    hides the points a reader is looking for."""
    handles, labels = also.get_legend_handles_labels() if also is not None else ([], [])
    own_handles, own_labels = ax.get_legend_handles_labels()
    if handles or own_handles:
        fig = ax.get_figure()
        assert fig is not None
        fig.legend(handles + own_handles, labels + own_labels, loc="outside lower center", ncol=ncol)


def _rc(function: Callable[P, Figure | None]) -> Callable[P, Figure | None]:
    """Draw inside the house style (rc parameters apply when artists are created)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure | None:
        with matplotlib.rc_context(cast(Any, _STYLE)):
            return function(*args, **kwargs)

    return wrapper


# --- throughput and latency against offered load ---------------------------------------------


@_rc
def throughput_chart(card: Card) -> Figure | None:
    """Completed iterations/s and p95 latency against offered arrivals/s, every measured phase.

    Top: throughput (log-log; on the dotted diagonal the service kept up), the capacity (the
    USL's, with its band, or the measured floor), the goal's load and the latency knee. Bottom:
    the p95 latency of the same phases with the SLO. Phases measured with a saturated generator
    are grey crosses: not the service's numbers.
    """
    phases = _phases(card)
    if not phases:
        return None
    fig, (top, bottom) = _new_figure(6.4, rows=2, sharex=True, height_ratios=(1.25, 1.0))
    tiers = sorted({p.tier for p in phases})
    colors = dict(zip(tiers, _palette(len(tiers)), strict=True))
    good = [p for p in phases if not p.saturated]
    saturated = [p for p in phases if p.saturated]
    for customers in tiers:
        own = [p for p in good if p.tier == customers]
        if own:
            top.scatter([p.offered for p in own], [p.completed for p in own], color=colors[customers],
                        s=[46 if p.kind == "steady" else 26 for p in own], edgecolors="white",
                        linewidths=0.6, zorder=3, label=f"{customers:,} customers")  # fmt: skip
            lat = [p for p in own if p.p95 is not None]
            bottom.plot([p.offered for p in lat], [max(p.p95 or 0, 1e-3) for p in lat], marker="o",
                        markersize=4, color=colors[customers], linewidth=1.2)  # fmt: skip
    if saturated:
        top.scatter([p.offered for p in saturated], [p.completed for p in saturated], color=_SATURATED,
                    marker="x", s=30, zorder=3, label="generator saturated (not the service's)")  # fmt: skip
        bottom.scatter([p.offered for p in saturated if p.p95], [p.p95 for p in saturated if p.p95],
                       color=_SATURATED, marker="x", s=30, zorder=3)  # fmt: skip
    params = _params(card)
    goal = _goal(card)
    extent = _positive([p.offered for p in phases] + [p.completed for p in phases])
    if goal is not None:
        extent.append(goal[1])
    extent += _positive([_number(params.get("x_capacity_high")), _number(params.get("lower_bound_rps"))])
    lo, hi = min(extent) / 1.5, max(extent) * 1.5
    span = np.geomspace(lo, hi, 50)
    top.plot(span, span, color="#616161", linestyle=":", linewidth=1.0, label="kept up (completed = offered)")
    _capacity_lines(top, card)
    knee = _number(params.get("knee_offered_rps"))
    for ax in (top, bottom):
        if goal is not None:
            ax.axvline(goal[1], color=_GOAL, linestyle="--", linewidth=1.1,
                       label=f"goal: {goal[0]:,} customers" if ax is top else None)  # fmt: skip
        if knee is not None:
            ax.axvline(knee, color=_KNEE, linestyle="-.", linewidth=1.1,
                       label=f"knee: latency turns up at {knee:,.4g}/s" if ax is top else None)  # fmt: skip
    slo = _number(params.get("latency_slo_ms")) or _default_slo(card)[0]
    if slo is not None:
        bottom.axhline(slo, color=_SLO, linestyle="--", linewidth=1.1, label=f"p95 SLO {slo:g} ms")
    for ax in (top, bottom):
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_numbers(ax)
    top.set_xlim(lo, hi)
    top.set_ylim(lo, hi)
    _labels(fig, (top, bottom), "Throughput and latency vs offered load",
            "offered load (arrivals/s: persona actions started per second)",
            ("completed actions/s", "p95 latency (ms)"))  # fmt: skip
    _legend_below(bottom, ncol=3, also=top)
    return fig


def _capacity_lines(ax: Axes, card: Card) -> None:
    """The USL capacity with its band, or else the measured floor, as horizontal lines."""
    capacity, params = _capacity(card), _params(card)
    x_cap = _number(params.get("x_capacity"))
    if capacity.get("method") == "usl" and x_cap is not None:
        x_low = _number(params.get("x_capacity_low")) or x_cap
        x_high = _number(params.get("x_capacity_high")) or x_cap
        ax.axhspan(x_low, x_high, color=_MODEL, alpha=0.12, linewidth=0)
        ax.axhline(x_cap, color=_MODEL, linewidth=1.4, label=f"capacity (USL) {x_cap:,.4g}/s, 95 % band")
    elif (floor := _number(params.get("lower_bound_rps"))) is not None:
        ax.axhline(floor, color=_MODEL, linewidth=1.2, linestyle="--",
                   label=f"capacity ≥ {floor:,.4g}/s (carried within the SLO)")  # fmt: skip


# --- the Universal Scalability Law -----------------------------------------------------------


@_rc
def usl_chart(card: Card) -> Figure | None:
    """Goodput against in-server concurrency N = X·R, with the fitted USL curve and its band.

    The points are the capacity estimate's own (``capacity.points``: goodput in completed
    iterations/s, the unit the curve was fitted in). When the fit used the largest tier alone,
    the other tiers' points are drawn hollow: a different data volume, not part of the fit.
    """
    capacity = _capacity(card)
    usl = usl_from_params(_params(card))
    fit = UslFit.from_params(usl)
    points = [p for p in capacity.get("points", []) if (p.get("concurrency") or 0) > 0]
    if fit is None or not points:
        return None
    fig, (ax,) = _new_figure(4.6)
    fit_tier = int(_params(card).get("fit_tier") or 0)
    in_fit = _fit_tier_offered(card, fit_tier)
    used = [p for p in points if not in_fit or p["offered_rps"] in in_fit]
    other = [p for p in points if in_fit and p["offered_rps"] not in in_fit]
    n_values = [float(p["concurrency"]) for p in points]
    n_lo = min(n_values + ([fit.n_min] if fit.n_min > 0 else []))
    n_hi = max(n_values + ([fit.n_max] if math.isfinite(fit.n_max) else []))
    if math.isfinite(fit.n_star):
        n_hi = max(n_hi, fit.n_star * 1.5)
    grid = np.geomspace(n_lo / 1.5, n_hi * 2.0, 200)
    x, low, high = fit.predict(grid)
    top = max(float(np.max(x)), max(float(p["achieved_rps"]) for p in points)) * 1.6
    if fit.has_band:
        ax.fill_between(grid, low, np.minimum(high, top), color=_MODEL, alpha=0.15, linewidth=0,
                        label="95 % band of the curve")  # fmt: skip
    trusted = capacity.get("method") == "usl"
    ax.plot(grid, x, color=_MODEL if trusted else _SATURATED, linewidth=1.8, linestyle="-" if trusted else "--",
            label=f"USL fit: σ = {fit.sigma:.3g}, κ = {fit.kappa:.2g}, λ = {fit.lam:.4g}/s"
            + ("" if trusted else " (not used for capacity: see the note)"))  # fmt: skip
    ax.scatter([p["concurrency"] for p in used], [p["achieved_rps"] for p in used], color="#212121", s=22,
               zorder=3, label="measured phases" + (f" at {fit_tier:,} customers (the fit's)" if in_fit else ""))  # fmt: skip
    if other:
        ax.scatter([p["concurrency"] for p in other], [p["achieved_rps"] for p in other], facecolors="none",
                   edgecolors="#757575", s=22, zorder=3, label="other tiers (not in the fit)")  # fmt: skip
    if math.isfinite(fit.n_star):
        ax.axvline(fit.n_star, color=_MODEL, linestyle=":", linewidth=1.0, label=f"peak at N* = {fit.n_star:.3g} in flight")
    goal = _goal(card)
    if goal is not None:
        ax.axhline(goal[1], color=_GOAL, linestyle="--", linewidth=1.1, label=f"needed for {goal[0]:,} customers")
    ax.set_xscale("log")
    _plain_numbers(ax, y=False)
    ax.set_ylim(0, top)
    _labels(fig, (ax,), "Universal Scalability Law fit",
            "requests in flight inside the service, N = throughput × response time (Little's law)",
            ("completed actions/s",))  # fmt: skip
    _legend_below(ax, ncol=2)
    return fig


def _fit_tier_offered(card: Card, fit_tier: int) -> set[float]:
    """The offered rates measured at the tier the fit used alone (empty: it used every tier)."""
    if fit_tier <= 0:
        return set()
    for t in card.get("tiers", []):
        if t["customers"] == fit_tier:
            return {float(t["offered_rps"])} | {float(s["offered_rps"]) for s in t.get("stress", [])}
    return set()


# --- latency per tier ------------------------------------------------------------------------


@_rc
def latency_chart(card: Card) -> Figure | None:
    """The steady window's p50, p95 and p99 (all endpoints together) per tier, with the SLOs.

    Grouped bars on a log scale (a healthy p50 of 2 ms and a collapsed p99 of 10 s share one
    chart). A tier measured with a saturated generator is hatched: that latency was the
    harness's, not the service's.
    """
    tiers = [t for t in card.get("tiers", []) if t.get("p50_ms") is not None]
    if not tiers:
        return None
    fig, (ax,) = _new_figure(3.9)
    positions = np.arange(len(tiers))
    width = 0.26
    for i, (name, color) in enumerate(_PERCENTILES):
        values = [max(t.get(f"{name}_ms") or 0.0, 1e-2) for t in tiers]
        bars = ax.bar(positions + (i - 1) * width, values, width, color=color, label=name)
        for bar, t in zip(bars, tiers, strict=True):
            if (t.get("generator") or {}).get("saturated"):
                bar.set_hatch("///")
                bar.set_alpha(0.45)
    p95, p99 = _default_slo(card)
    if p95 is not None:
        ax.axhline(p95, color=_SLO, linestyle="--", linewidth=1.1, label=f"p95 SLO {p95:g} ms")
    if p99 is not None:
        ax.axhline(p99, color=_SLO, linestyle=":", linewidth=1.1, label=f"p99 SLO {p99:g} ms")
    ax.set_yscale("log")
    _plain_numbers(ax, x=False)
    ax.set_xticks(positions, [f"{t['customers']:,}" for t in tiers])
    ax.grid(axis="x", visible=False)
    _labels(fig, (ax,), "Latency percentiles per tier (steady window, all endpoints)",
            "tier (customers)", ("latency from intended start (ms)",))  # fmt: skip
    _legend_below(ax, ncol=5)
    return fig


@_rc
def tier_endpoints_chart(card: Card, customers: int) -> Figure | None:
    """One tier's endpoints: p50 to p99 as a line with a dot at p95, each against its p95 SLO.

    Endpoints whose p95 the verdict could not judge (too few requests) are drawn pale and say so.
    """
    t = next((t for t in card.get("tiers", []) if t["customers"] == customers), None)
    endpoints = [e for e in (t or {}).get("endpoints", []) if e.get("p50_ms") is not None]
    if t is None or not endpoints:
        return None
    judged = {c["endpoint"]: c["percentiles"] for c in t.get("slo_checks") or []}
    endpoints = sorted(endpoints, key=lambda e: e["name"], reverse=True)  # top to bottom: A..Z
    fig, (ax,) = _new_figure(max(2.4, 0.95 + 0.36 * len(endpoints)))
    rows = np.arange(len(endpoints))
    slo_label_shown = False
    for row, e in zip(rows, endpoints, strict=True):
        pale = e["name"] in judged and "p95" not in judged[e["name"]]
        alpha = 0.35 if pale else 1.0
        lo, p95, hi = (max(e.get(k) or 0.0, 1e-2) for k in ("p50_ms", "p95_ms", "p99_ms"))
        ax.plot([lo, hi], [row, row], color="#455a64", linewidth=2.2, alpha=alpha, solid_capstyle="round")
        for value, (_, color), size in zip((lo, p95, hi), _PERCENTILES, (26, 44, 26), strict=True):
            ax.scatter([value], [row], color=color, s=size, zorder=3 + (size > 26), alpha=alpha)
        slo, _ = _endpoint_slo(card, e["name"])
        if slo is not None:
            ax.plot([slo, slo], [row - 0.34, row + 0.34], color=_SLO, linewidth=1.8,
                    label=None if slo_label_shown else "its p95 SLO")  # fmt: skip
            slo_label_shown = True
    for (name, color), size in zip(_PERCENTILES, (26, 44, 26), strict=True):
        ax.scatter([], [], color=color, s=size, label=name)  # the legend's, at full colour
    ax.set_yticks(rows, [f"{_short(e['name'])}  ({e['requests']:,})" for e in endpoints])
    for label, e in zip(ax.get_yticklabels(), endpoints, strict=True):
        if e["name"] in judged and "p95" not in judged[e["name"]]:
            label.set_color("#8a939c")
    if any("p95" not in ps for ps in judged.values()):
        ax.plot([], [], color="#455a64", alpha=0.35, linewidth=2.2, label="pale: too few requests to judge its p95")
    ax.set_ylim(-0.7, len(endpoints) - 0.3)
    ax.set_xscale("log")
    _plain_numbers(ax, y=False)
    ax.grid(axis="y", visible=False)
    _labels(fig, (ax,), f"Latency by endpoint at {customers:,} customers (steady window)",
            "latency from intended start (ms, log scale)", ("endpoint (requests)",))  # fmt: skip
    _legend_below(ax, ncol=5)
    return fig


# --- data volume -----------------------------------------------------------------------------


@_rc
def endpoint_chart(card: Card) -> Figure | None:
    """Each endpoint's unloaded service p95 against customers (log-log), with its SLO.

    Endpoints that grow linearly or worse also get their fitted power law, dotted, extended to
    where it crosses the SLO (at most 100x the largest tier), so the break point is visible.
    SLO lines are dashed: the most common one in red, endpoint-specific ones in their colour.
    """
    trends = [t for t in card.get("trends", []) if t.get("points")]
    if not any(len(t["points"]) >= 2 for t in trends):
        return None  # one data volume shows no trend
    fig, (ax,) = _new_figure(4.8 + 0.16 * max(0, len(trends) - 6))
    colors = _palette(len(trends))
    slo_values = [t["slo_p95_ms"] for t in trends if t.get("slo_p95_ms")]
    common = max(set(slo_values), key=slo_values.count) if slo_values else None
    for color, trend in zip(colors, trends, strict=True):
        customers = [p["customers"] for p in trend["points"]]
        values = [max(p["service_p95_ms"] or 0.0, 1e-3) for p in trend["points"]]
        slope = trend.get("slope")
        name = _short(trend["endpoint"])
        label = name if slope is None else f"{name} ({trend['growth_class']}, slope {slope:.2f})"
        ax.plot(customers, values, marker="o", markersize=4, color=color, linewidth=1.4, label=label)
        if trend.get("growth_class") in ("linear", "super-linear") and slope is not None and len(customers) > 1:
            lx, ly = np.log(customers), np.log(values)
            intercept = float(np.mean(ly) - slope * np.mean(lx))
            end: float = max(customers)
            if trend.get("breaks_at_customers") is not None:
                end = min(max(end, trend["breaks_at_customers"]), 100 * max(customers))
            span = np.geomspace(min(customers), end, 30)
            ax.plot(span, np.exp(intercept) * span**slope, color=color, linestyle=":", linewidth=1.2)
        own = trend.get("slo_p95_ms")
        if own and own != common:
            ax.axhline(own, color=color, linestyle="--", linewidth=0.9, label=f"{name} SLO {own:g} ms")
    if common is not None:
        ax.axhline(common, color=_SLO, linestyle="--", linewidth=1.1, label=f"p95 SLO {common:g} ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    measured = _positive(p["customers"] for t in trends for p in t["points"])
    ax.set_xlim(min(measured) / 1.5, max(ax.get_xlim()[1], max(measured) * 1.5))
    _plain_numbers(ax)
    _labels(fig, (ax,), "Endpoint latency vs data volume",
            "customers (data volume, log scale)", ("service time p95, unloaded (ms)",))  # fmt: skip
    _legend_below(ax, ncol=2)
    return fig


# --- the target's resources ------------------------------------------------------------------


@_rc
def resources_chart(card: Card) -> Figure | None:
    """The target's CPU and memory through the tiers (when the harness started it).

    Time runs from the first sample; each tier is shaded and named, its steady window drawn
    darker. CPU is in % of one core (a single-process service is saturated at 100 %).
    """
    tiers = [t for t in card.get("tiers", []) if t.get("resources")]
    samples = [(t["customers"], s) for t in tiers for s in t["resources"]]
    if len(samples) < 2:
        return None
    t0 = min(_time(s["at"]) for _, s in samples)
    fig, (cpu_ax, rss_ax) = _new_figure(5.2, rows=2, sharex=True)
    colors = _palette(len(tiers))
    for color, t in zip(colors, tiers, strict=True):
        times = [(_time(s["at"]) - t0) / 60 for s in t["resources"]]
        cpu_ax.plot(times, [s["cpu_pct"] for s in t["resources"]], color=color, linewidth=1.2,
                    label=f"{t['customers']:,} customers")  # fmt: skip
        rss_ax.plot(times, [s["rss_mb"] for s in t["resources"]], color=color, linewidth=1.4)
        for ax in (cpu_ax, rss_ax):
            ax.axvspan(times[0], times[-1], color=color, alpha=0.06, linewidth=0)
            window = t.get("steady_window")
            if window:
                ax.axvspan((_time(window["start"]) - t0) / 60, (_time(window["end"]) - t0) / 60,
                           color=color, alpha=0.16, linewidth=0)  # fmt: skip
    cpu_ax.axhline(100, color=_SLO, linestyle=":", linewidth=1.0, label="one core busy")
    cores = (card.get("environment") or {}).get("cores")
    if isinstance(cores, int) and cores > 1:
        cpu_ax.axhline(100 * cores, color=_SLO, linestyle="--", linewidth=1.0, label=f"all {cores} cores busy")
    cpu_ax.set_ylim(bottom=0)
    rss_ax.set_ylim(bottom=0, top=max(s["rss_mb"] or 0 for _, s in samples) * 1.15 or 1)
    _labels(fig, (cpu_ax, rss_ax), "The service's CPU and memory during the tiers",
            "minutes since the first tier started (darker band: steady window)",
            ("CPU (% of one core)", "memory, RSS (MB)"))  # fmt: skip
    _legend_below(rss_ax, ncol=5, also=cpu_ax)
    return fig


# --- rendering -------------------------------------------------------------------------------


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


def figure_png(fig: Figure, *, dpi: int = 110) -> bytes:
    """Render a figure to PNG bytes (for `scaleready history --plot`)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


@_rc
def history_chart(series: Mapping[str, Any]) -> Figure | None:
    """One metric over the runs of a pack, oldest first, with the change points marked.

    ``series`` is the scorecard's ``history`` shape: ``metric``, ``tier``, ``endpoint``, ``unit``,
    ``points`` ([{run_id, finished_at, value, verdict}]) and ``changes`` ([{run_id, ...}]).
    """
    points = [p for p in series.get("points") or () if _number(p.get("value")) is not None]
    if len(points) < 2:
        return None
    fig, (ax,) = _new_figure(3.4)
    x = list(range(len(points)))
    values = [float(p["value"]) for p in points]
    ax.plot(x, values, color=_MODEL, marker="o", markersize=4, linewidth=1.2, label=str(series.get("metric")))
    bad = [(i, v) for i, (p, v) in enumerate(zip(points, values, strict=True)) if p.get("verdict") not in ("READY", None)]
    if bad:
        ax.scatter([i for i, _ in bad], [v for _, v in bad], color=_SLO, zorder=3, s=22, label="not READY")
    index = {p.get("run_id"): i for i, p in enumerate(points)}
    for change in series.get("changes") or ():
        at = index.get(change.get("run_id"))
        if at is not None:
            ax.axvline(at - 0.5, color=_KNEE, linestyle="--", linewidth=1.0)
            ax.annotate(f"{float(change.get('shift') or 0):+.0%}", (at - 0.5, max(values)),
                        textcoords="offset points", xytext=(3, -10), color=_KNEE, fontsize=9)  # fmt: skip
    step = max(1, len(points) // 10)
    ax.set_xticks(x[::step], [str(p.get("run_id", ""))[:15] for p in points][::step], rotation=20, ha="right")
    ax.set_ylim(bottom=0)
    where = f"{series.get('endpoint')}" if series.get("endpoint") not in (None, "*") else "all endpoints"
    tier = series.get("tier")
    title = f"{series.get('metric')} over the last {len(points)} runs" + (f" ({where} at {tier} customers)" if tier else "")
    _labels(fig, [ax], title, "run", [str(series.get("unit") or series.get("metric"))])
    _legend_below(ax, ncol=2)
    return fig


def _prefix_ids(svg: str, prefix: str) -> str:
    # Matplotlib names elements "figure_1", "axes_1"... in every figure; inlined side by side in
    # one HTML page they would collide, so every id and every reference to one gets the prefix.
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', svg)


_CAPTIONS = {
    "latency": "Each group is one tier's steady window: the bars are the median (p50), 1 request "
    "in 20 (p95) and 1 in 100 (p99); bars above a red line missed that objective.",
    "throughput": "Each dot is one measured load step. On the dotted diagonal the service kept up "
    "with the load; where the dots fall below it, work piled up. Below, the same steps' p95 "
    "latency: the knee is where it turns up, the red line is the objective.",
    "usl": "The Universal Scalability Law fitted to the measured steps: how throughput grows with "
    "the requests in flight, and where it stops growing (the peak).",
    "endpoint-scaling": "Each line is one endpoint's service time with no load, as the data grows "
    "from tier to tier; a dotted line is its fitted trend, extended to where it would cross the "
    "objective.",
    "history": "The largest tier's p95 in each run of this pack and profile, oldest first, this run "
    "last; a dashed line marks a change point (where the runs after it stayed moved), with its shift.",
    "resources": "The service's own CPU and memory, sampled every second by the harness. Memory "
    "that climbs through every tier and never comes down is a leak; CPU flat at a core's 100 % "
    "is a saturated process.",
}


def _history_of(card: Card) -> Figure | None:
    series = card.get("history")
    return history_chart(series) if series else None


def all_charts(card: Card) -> list[Chart]:
    """Every audit-wide chart the scorecard supports, in report order (tier charts: see
    :func:`tier_charts`)."""
    builders: tuple[tuple[str, str, Callable[[Card], Figure | None]], ...] = (
        ("latency", "Latency percentiles per tier", latency_chart),
        ("throughput", "Throughput and latency vs offered load", throughput_chart),
        ("usl", "Universal Scalability Law fit", usl_chart),
        ("endpoint-scaling", "Endpoint latency vs data volume", endpoint_chart),
        ("resources", "The service's CPU and memory", resources_chart),
        ("history", "The nightly series", _history_of),
    )
    charts = []
    for chart_id, title, build in builders:
        fig = build(card)
        if fig is not None:
            fig.set_label(chart_id)
            charts.append(Chart(chart_id, title, _CAPTIONS[chart_id], fig))
    return charts


def tier_charts(card: Card, customers: int) -> list[Chart]:
    """The charts of one tier's page."""
    fig = tier_endpoints_chart(card, customers)
    if fig is None:
        return []
    chart_id = f"tier-{customers}-endpoints"
    fig.set_label(chart_id)
    caption = ("Each row is one endpoint: the line runs from its median (p50) to 1 request in 100 "
               "(p99), the larger dot is 1 in 20 (p95), the red tick its p95 objective; pale rows "
               "had too few requests for their p95 to be judged.")  # fmt: skip
    return [Chart(chart_id, f"Latency by endpoint at {customers:,} customers", caption, fig)]
