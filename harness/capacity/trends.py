"""Data-volume scaling: how each endpoint's service time and response size grow with the data.

The points come from each tier's probe (a short, unloaded phase before its load: the median
service time of each endpoint at that data volume), so every tier counts, even one whose load
collapsed; records without probes fall back to the steady windows' service p95, leaving out the
windows the service did not keep up with. A power law (a least-squares line in log-log) is fitted
above the fixed cost every request pays whatever the data. Its slope's class (flat, sub-linear,
linear, super-linear) is named only from at least three data volumes, and only when the slope's
confidence interval lies within one class; a linear or worse one says at how many customers it
crosses the SLO. Response sizes get the same fit: a list that grows with the data is a scale
problem before it is slow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from harness.capacity.estimate import PAST_KNEE_RATIO
from harness.capacity.usl import CONFIDENCE_LEVEL
from harness.records import EndpointTrend, GrowthClass, PhaseMeasurement, TierResult
from harness.validity import probe_endpoints

__all__ = ["MIN_VOLUMES", "endpoint_trends", "fit_trends", "fixed_cost_ms"]

#: Log-log slope thresholds for the data-volume classes.
FLAT_SLOPE = 0.1
SUBLINEAR_SLOPE = 0.6
LINEAR_SLOPE = 1.3
#: The smallest value above the fixed cost a power law is fitted to (log of zero is undefined).
MIN_EXCESS_MS = 0.05
#: Growth under this share of the smallest value is flat, whatever the fit's interval says: 25 %
#: over a hundredfold more data is no scaling problem.
FLAT_GROWTH_SHARE = 0.25
#: Fewest data volumes a class is named from: two points always lie on a line.
MIN_VOLUMES = 3
#: A response this small is not judged for growth (a few hundred bytes jitter with ids and dates).
MIN_SIZE_BYTES = 1024.0

_CLASSES: tuple[GrowthClass, ...] = ("flat", "sub-linear", "linear", "super-linear")


def _class_of(slope: float) -> GrowthClass:
    if slope < FLAT_SLOPE:
        return "flat"
    if slope < SUBLINEAR_SLOPE:
        return "sub-linear"
    if slope <= LINEAR_SLOPE:
        return "linear"
    return "super-linear"


@dataclass(frozen=True)
class _Fit:
    slope: float
    intercept: float
    low: float | None
    high: float | None


def _fit(customers: Sequence[int], values: Sequence[float]) -> _Fit:
    """Least squares of log value on log customers, with a Student-t interval on the slope."""
    lx = np.log(np.asarray(customers, dtype=float))
    ly = np.log(np.asarray(values, dtype=float))
    slope, intercept = (float(v) for v in np.polyfit(lx, ly, 1))
    dof = len(customers) - 2
    if dof <= 0:
        return _Fit(slope, intercept, None, None)
    resid = ly - (slope * lx + intercept)
    sxx = float(np.sum((lx - lx.mean()) ** 2))
    se = math.sqrt(float(np.sum(resid**2)) / dof / sxx)
    half = float(stats.t.ppf(0.5 + CONFIDENCE_LEVEL / 2.0, dof)) * se
    return _Fit(slope, intercept, slope - half, slope + half)


def _classify(fit: _Fit, volumes: int, growth: float, noise: float, smallest: float = 0.0) -> tuple[GrowthClass, str]:
    """The class the whole interval lies in, or unknown with the reason."""
    if volumes < MIN_VOLUMES:
        return "unknown", (
            f"not enough data: {volumes} data volume{'s' * (volumes != 1)} measured, "
            f"a class needs {MIN_VOLUMES}"
        )
    if growth < max(noise, FLAT_GROWTH_SHARE * smallest):
        return "flat", ""
    assert fit.low is not None and fit.high is not None
    low, high = _class_of(fit.low), _class_of(fit.high)
    if low == high:
        return low, ""
    return "unknown", (
        f"the slope {fit.slope:.2f} has an interval of {fit.low:.2f} to {fit.high:.2f}, from {low} to "
        f"{high}: more data volumes (tiers) would tell them apart"
    )


def _overloaded(phase: PhaseMeasurement, max_error_rate: float) -> bool:
    completed = phase.achieved_ips
    return phase.error_rate > max_error_rate or (completed is not None and completed < PAST_KNEE_RATIO * phase.offered_rps)


def endpoint_trends(
    tiers: Sequence[TierResult],
    slo_p95_ms: Mapping[str, float],
    default_slo_p95_ms: float,
    noise_floor_ms: float = 1.0,
    max_error_rate: float = 0.01,
) -> tuple[EndpointTrend, ...]:
    """How each endpoint's unloaded service time and response size grow with the data volume.

    From the probes when the tiers have them (the median of each endpoint's service time, from
    ``harness.validity.MIN_PROBE_REQUESTS`` requests up; a probe spoiled or crowded is left out), else from the
    steady windows' service p95, leaving out windows the service did not keep up with (errors
    over ``max_error_rate``, or goodput under ``PAST_KNEE_RATIO`` of the offered rate: there every
    endpoint waits in the same queue) and windows not measured cleanly. Growth (max - min) below
    ``noise_floor_ms`` is flat whatever the slope.
    """
    if noise_floor_ms < 0:
        raise ValueError(f"noise_floor_ms = {noise_floor_ms}: the noise floor cannot be negative")
    ordered = sorted((t for t in tiers if t.customers > 0), key=lambda t: t.customers)
    if any(t.probe is not None for t in ordered):
        series, sizes = _probe_series(ordered)
        return fit_trends(series, slo_p95_ms, default_slo_p95_ms, noise_floor_ms, measure="probe-p50", sizes=sizes)
    series = {}
    for tier in ordered:
        steady = tier.steady
        # A busy machine inflates one tier and not the next: a slope from that is noise.
        if steady is None or not steady.validity.clean or _overloaded(steady, max_error_rate):
            continue
        for e in steady.endpoints:
            if e.requests > 0 and e.service.count > 0:
                series.setdefault(e.name, []).append((tier.customers, float(e.service.p95_ms)))
    return fit_trends(series, slo_p95_ms, default_slo_p95_ms, noise_floor_ms)


def _probe_series(
    tiers: Sequence[TierResult],
) -> tuple[dict[str, list[tuple[int, float]]], dict[str, list[tuple[int, float]]]]:
    series: dict[str, list[tuple[int, float]]] = {}
    sizes: dict[str, list[tuple[int, float]]] = {}
    for tier in tiers:
        for e in probe_endpoints(tier.probe).values():
            series.setdefault(e.name, []).append((tier.customers, float(e.service.p50_ms)))
            sizes.setdefault(e.name, []).append((tier.customers, e.bytes_mean))
    return series, sizes


def fixed_cost_ms(series: Mapping[str, Sequence[tuple[int, float]]]) -> float:
    """What every request pays whatever the data: the fastest endpoint's p95 at the smallest tier.

    Fitted on raw p95, a power law reads ``fixed + c * n`` as a slope well under 1 while the
    fixed part (framework, loopback, the generator) dominates the small tiers: 2.5 ms fixed plus a
    scan growing from 3.6 to 21.4 ms reads as 6.1 -> 23.9 ms, slope 0.59 ("sub-linear"), where
    the scan alone has slope 0.77 (linear). Taken from the smallest tier only,
    so a slowdown that every endpoint shares as the data grows (an unindexed lookup in the
    authentication of every request) still shows.
    """
    smallest = min((c for pts in series.values() for c, _ in pts), default=None)
    if smallest is None:
        return 0.0
    return min((ms for pts in series.values() for c, ms in pts if c == smallest), default=0.0)


def fit_trends(
    series: Mapping[str, Sequence[tuple[int, float]]],
    slo_p95_ms: Mapping[str, float],
    default_slo_p95_ms: float,
    noise_floor_ms: float = 1.0,
    *,
    measure: Literal["probe-p50", "steady-p95"] = "steady-p95",
    sizes: Mapping[str, Sequence[tuple[int, float]]] | None = None,
) -> tuple[EndpointTrend, ...]:
    """Each endpoint's growth class and SLO break from its (customers, ms) points.

    The fit is of the time above the fixed cost every request pays (``fixed_cost_ms``) for an
    endpoint that, at the smallest tier, takes at least twice that cost, and of the raw time for
    the others, as a power law of customers; flat is judged on the raw growth against the noise floor.
    """
    fixed = fixed_cost_ms(series)
    trends = []
    for name in sorted(series):
        pts = tuple(series[name])
        slo = float(slo_p95_ms.get(name, default_slo_p95_ms))
        size = _size_trend(tuple((sizes or {}).get(name, ())))
        volumes = len({c for c, _ in pts})
        if volumes < 2:
            trends.append(EndpointTrend(
                name, pts, None, None, None, "unknown", None, slo_p95_ms=slo, measure=measure,
                note=_classify(_Fit(0.0, 0.0, None, None), volumes, 0.0, 0.0)[1], size_points=size.points,
                size_slope=size.slope, size_slope_low=size.low, size_class=size.growth,
            ))  # fmt: skip
            continue
        # Only an endpoint whose own work at the smallest tier is at least the fixed cost is fitted
        # above it: for the others the excess is a small difference of two noisy values, and its
        # ratio from tier to tier is noise.
        base = fixed if min(pts)[1] >= 2.0 * fixed else 0.0
        values = [v for _, v in pts]
        fit = _fit([c for c, _ in pts], [max(v - base, MIN_EXCESS_MS) for v in values])
        growth_class, note = _classify(fit, volumes, max(values) - min(values), noise_floor_ms, min(values))
        # Growth that is certain (the whole interval above flat) crosses the SLO somewhere, whether
        # or not its class could be named: where the fitted curve does.
        breaks_at = None
        certain = growth_class in ("sub-linear", "linear", "super-linear") or (
            growth_class == "unknown" and volumes >= MIN_VOLUMES and fit.low is not None and fit.low >= FLAT_SLOPE
        )
        if certain and slo > base and fit.slope > 0:
            breaks_at = float(math.exp((math.log(slo - base) - fit.intercept) / fit.slope))
        trends.append(
            EndpointTrend(
                endpoint=name,
                points=pts,
                slope=fit.slope,
                slope_low=fit.low,
                slope_high=fit.high,
                growth_class=growth_class,
                breaks_at_customers=breaks_at,
                slo_p95_ms=slo,
                fixed_ms=round(base, 3),
                measure=measure,
                note=note,
                size_points=size.points,
                size_slope=size.slope,
                size_slope_low=size.low,
                size_class=size.growth,
            )
        )
    return tuple(trends)


@dataclass(frozen=True)
class _Size:
    points: tuple[tuple[int, float], ...] = ()
    slope: float | None = None
    low: float | None = None
    growth: GrowthClass = "unknown"


def _size_trend(points: tuple[tuple[int, float], ...]) -> _Size:
    """The response size's fit: it grows with the data when its whole interval says so."""
    volumes = len({c for c, _ in points})
    if volumes < 2 or min(v for _, v in points) <= 0:
        return _Size(points)
    fit = _fit([c for c, _ in points], [v for _, v in points])
    growth = _classify(fit, volumes, 1.0, 0.0)[0] if max(v for _, v in points) >= MIN_SIZE_BYTES else "unknown"
    return _Size(points, fit.slope, fit.low, growth)
