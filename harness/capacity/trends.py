"""Data-volume scaling: how each endpoint's service time grows with the customers' data.

Each endpoint's steady-window service p95 at nominal load against the tier's customer count, as a
power law (a least-squares line in log-log), above the fixed cost every request pays whatever the
data. The slope's class (flat, sub-linear, linear, super-linear) says how the endpoint scales, and
a linear or worse one says at how many customers it crosses its SLO.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from scipy import stats

from harness.capacity.estimate import PAST_KNEE_RATIO
from harness.capacity.usl import CONFIDENCE_LEVEL
from harness.records import EndpointTrend, PhaseMeasurement, TierResult

__all__ = ["endpoint_trends", "fit_trends", "fixed_cost_ms"]

#: Log-log slope thresholds for the data-volume classes.
FLAT_SLOPE = 0.1
SUBLINEAR_SLOPE = 0.6
LINEAR_SLOPE = 1.3
#: The smallest p95 above the fixed cost a power law is fitted to (log of zero is undefined).
MIN_EXCESS_MS = 0.05


def _classify(slope: float, growth_ms: float, noise_floor_ms: float) -> Literal["flat", "sub-linear", "linear", "super-linear"]:
    if slope < FLAT_SLOPE or growth_ms < noise_floor_ms:
        return "flat"
    if slope < SUBLINEAR_SLOPE:
        return "sub-linear"
    if slope <= LINEAR_SLOPE:
        return "linear"
    return "super-linear"


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
    """How each endpoint's steady-window service p95 grows with the customers' data volume.

    p95 rather than mean: it is what the SLO judges, so the fitted curve and the SLO it is compared
    with are in the same units; the noise that makes p95 jumpier than the mean is handled by
    ``noise_floor_ms``: growth (max − min over the tiers) below it is "flat", whatever the slope, so
    a 0.4 → 0.6 ms endpoint is noise, not scaling.

    The slope is a least-squares fit of log (p95 - fixed cost) on log customers (``fit_trends``,
    ``fixed_cost_ms``); its interval is Student t with
    k − 2 dof (t = 12.7 for three tiers: deliberately wide; two tiers give no interval).
    Linear or worse gets ``breaks_at_customers``, where the fitted power law crosses the SLO.
    Tiers without a steady phase or measured with a saturated generator or on a busy machine are
    left out, and so are steady windows the service did not keep up with (errors over ``max_error_rate``, or goodput
    under ``PAST_KNEE_RATIO`` of the offered rate): there every endpoint waits in the same queue,
    and its latency measures the load, not the data.
    """
    if noise_floor_ms < 0:
        raise ValueError(f"noise_floor_ms = {noise_floor_ms}: the noise floor cannot be negative")
    series: dict[str, list[tuple[int, float]]] = {}
    for tier in sorted(tiers, key=lambda t: t.customers):
        steady = tier.steady
        # A busy machine inflates one tier and not the next: a slope from that is noise.
        if steady is None or not steady.validity.clean or tier.customers <= 0:
            continue
        if _overloaded(steady, max_error_rate):
            continue
        for endpoint in steady.endpoints:
            if endpoint.requests <= 0 or endpoint.service.count <= 0:
                continue
            series.setdefault(endpoint.name, []).append((tier.customers, float(endpoint.service.p95_ms)))

    return fit_trends(series, slo_p95_ms, default_slo_p95_ms, noise_floor_ms)


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
) -> tuple[EndpointTrend, ...]:
    """Each endpoint's growth class and SLO break from its (customers, service p95 ms) points.

    The fit is of the p95 above the fixed cost every request pays (``fixed_cost_ms``) for an
    endpoint that, at the smallest tier, takes at least twice that cost, and of the raw p95 for the
    others, as a power law of customers; flat is judged on the raw growth against the noise floor.
    """
    fixed = fixed_cost_ms(series)
    trends = []
    for name in sorted(series):
        pts = tuple(series[name])
        slo = float(slo_p95_ms.get(name, default_slo_p95_ms))
        if len({c for c, _ in pts}) < 2:
            trends.append(
                EndpointTrend(name, pts, None, None, None, "unknown", None, slo_p95_ms=slo)
            )
            continue
        lx = np.log(np.array([c for c, _ in pts], dtype=float))
        values = np.array([v for _, v in pts], dtype=float)
        # Only an endpoint whose own work at the smallest tier is at least the fixed cost is fitted
        # above it: for the others the excess is a small difference of two noisy p95s, and its
        # ratio from tier to tier is noise (measured: endpoints growing 0.3-1.5 ms then read as
        # "linear" with a break at 5,000-250,000 customers).
        base = fixed if min(pts)[1] >= 2.0 * fixed else 0.0
        # HDR may report 0 ms for sub-resolution values
        ly = np.log(np.maximum(values - base, MIN_EXCESS_MS))
        slope, intercept = (float(v) for v in np.polyfit(lx, ly, 1))
        dof = len(pts) - 2
        if dof > 0:
            resid = ly - (slope * lx + intercept)
            sxx = float(np.sum((lx - lx.mean()) ** 2))
            se = math.sqrt(float(np.sum(resid**2)) / dof / sxx)
            half = float(stats.t.ppf(0.5 + CONFIDENCE_LEVEL / 2.0, dof)) * se
            slope_low: float | None = slope - half
            slope_high: float | None = slope + half
        else:
            slope_low = slope_high = None
        growth = float(values.max() - values.min())
        growth_class = _classify(slope, growth, noise_floor_ms)
        breaks_at = None
        if growth_class in ("linear", "super-linear") and slo > base:
            breaks_at = float(math.exp((math.log(slo - base) - intercept) / slope))
        trends.append(
            EndpointTrend(
                endpoint=name,
                points=pts,
                slope=slope,
                slope_low=slope_low,
                slope_high=slope_high,
                growth_class=growth_class,
                breaks_at_customers=breaks_at,
                slo_p95_ms=slo,
                fixed_ms=round(base, 3),
            )
        )
    return tuple(trends)
