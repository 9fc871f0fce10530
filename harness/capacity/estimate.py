"""Capacity in customers: how many customers the target can serve within its SLO.

Two kinds of evidence, measured first and modelled second:

* **Measured, model-free**, at the goal's data volume (a smaller tier's data makes every request
  cheaper, so a rate it carried proves nothing about the goal): the highest load carried within
  the SLO is a floor under any estimate; the lowest load measured failing is a ceiling that a
  model may not exceed; a load missed while the machine was busy with other work says nothing
  (the floor may stop there because of the noise); the pack's ``max_rps`` may be where the
  measurement, not the service, stopped. The latency knee (:mod:`harness.capacity.knee`) is
  reported beside them.
* **The USL** (:mod:`harness.capacity.usl`): the largest throughput the fitted curve reaches
  while its latency, scaled from mean to the SLO percentile, stays within the SLO, divided by one
  customer's peak rate. Used only when the measurements support it: enough load levels, some past
  the knee, no measured failure below it, and a band narrower than the estimate itself.

Offered load counts iterations (one persona action, one or more requests), so goodput is counted
in iterations too (``completed_iterations_per_s``): otherwise every comparison with the offered
load would be off by the requests an action makes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from harness.capacity.knee import find_knee
from harness.capacity.usl import (
    MIN_LOAD_LEVELS,
    InsufficientData,
    UslFit,
    capacity_throughput,
    distinct_levels,
    fit_usl,
    penalties,
    slo_concurrency,
)
from harness.records import (
    CapacityEstimate,
    CapacityParams,
    EndpointMeasurement,
    PhaseMeasurement,
    TierResult,
)

__all__ = ["completed_iterations_per_s", "estimate_capacity", "margin_factors", "requests_per_iteration"]

#: A phase is past the knee when its goodput falls below this share of the offered rate.
PAST_KNEE_RATIO = 0.9
#: A phase whose completions are within this share of its arrivals kept up: the shortfall is the
#: window's edge (iterations still in flight when it closed) and arrival jitter, not the service.
KEPT_UP_RATIO = 0.98
#: Refuse to extrapolate when the capacity band is wider than this, relative to the estimate.
MAX_RELATIVE_BAND = 1.0
#: A USL capacity more than this factor above a rate measured failing at the goal's data volume
#: is contradicted by that measurement; within it, the measured phase sat at the limit (goodput is
#: measured to a few percent) and only caps the band.
CEILING_TOLERANCE = 1.1
#: USL capacity and the latency knee "disagree" when one exceeds the other by this factor.
KNEE_DISAGREEMENT = 2.0

_PERCENTILES = ("p50", "p95", "p99", "p999")


def estimate_capacity(
    tiers: Sequence[TierResult],
    per_customer_rps: float,
    goal_customers: int,
    latency_slo_ms: float,
    slo_percentile: str = "p95",
    *,
    max_error_rate: float = 0.01,
) -> CapacityEstimate:
    """Predicted capacity in customers, with a band, from every valid steady and stress phase.

    Methods, in order of preference:

    * ``"usl"``: a USL fit on >= 6 load levels, some past the knee (goodput below 90 % of the
      offered rate), and a capacity band narrower than the estimate itself. Capacity is the
      throughput at min(N*, N where the fitted latency crosses the SLO); the fitted mean latency is
      scaled to the SLO percentile by the measured service-time ratio p_slo/mean at the busiest
      phase that still met the SLO (the regime closest to the crossing; ratios grow with load).
    * ``"lower-bound"``: capacity is at least the highest load measured meeting the SLO
      (intended-start latency at the SLO percentile, error rate within ``max_error_rate``, not past
      the knee): the offered rate of a phase that kept up (completions within ``KEPT_UP_RATIO``
      of arrivals), else its goodput; ``high`` is None. The note says why the USL was not used.
    * ``"none"``: no valid phase met the SLO.

    Phases measured with a saturated generator are never used, nor those measured on a busy
    machine that missed the SLO; ``params.unmeasured_rps`` is the lowest of the latter above
    the floor (the floor may stop there because of the noise, not the service).
    """
    _check_arguments(per_customer_rps, goal_customers, latency_slo_ms, slo_percentile)
    question = _Question(per_customer_rps, goal_customers, latency_slo_ms, slo_percentile, max_error_rate)
    points, unmeasured = _usable_points(tiers, slo_percentile, latency_slo_ms, max_error_rate)
    measured = _measure(tiers, points, unmeasured, question)
    params = _measured_params(question, measured)
    if not points:
        reason = "no valid load phase (all missing or measured with a saturated generator)"
        return _measured_estimate(reason, question, measured, params)
    return _usl_estimate(question, measured, params)


def _check_arguments(
    per_customer_rps: float, goal_customers: int, latency_slo_ms: float, slo_percentile: str
) -> None:
    if per_customer_rps <= 0 or not math.isfinite(per_customer_rps):
        raise ValueError(
            f"per_customer_rps = {per_customer_rps}: one customer's peak rate must be a positive "
            "number of requests per second (e.g. 0.2)"
        )
    if goal_customers <= 0:
        raise ValueError(f"goal_customers = {goal_customers}: the goal tier must be a positive customer count")
    if slo_percentile not in _PERCENTILES:
        raise ValueError(
            f"slo_percentile = {slo_percentile!r}: not a recorded percentile; use one of "
            + ", ".join(repr(p) for p in _PERCENTILES)
        )
    if latency_slo_ms <= 0:
        raise ValueError(f"latency_slo_ms = {latency_slo_ms}: the latency SLO must be positive")


@dataclass(frozen=True)
class _Question:
    """What an estimate is asked: one customer's peak rate, the goal and the SLO to hold."""

    per_customer_rps: float
    goal_customers: int
    latency_slo_ms: float
    slo_percentile: str
    max_error_rate: float

    @property
    def slo(self) -> str:
        """The SLO as the notes name it, e.g. ``p95 200 ms``."""
        return f"{self.slo_percentile} {self.latency_slo_ms:g} ms"

    def customers(self, rps: float) -> float:
        return rps / self.per_customer_rps


# --- the phases that measured the target -----------------------------------------------------


@dataclass(frozen=True)
class _Point:
    tier: int
    phase: PhaseMeasurement
    goodput: float
    carried: float  # the load shown carried: the offered rate when it kept up, else the goodput
    latency_ms: float  # intended-start latency at the SLO percentile
    service_ratio: float  # service p_slo / service mean
    met_slo: bool  # the load held: this measurement, or most measurements of a repeated load
    past_knee: bool
    held_alone: bool = False  # this one measurement held, whatever repeats of it said


def _percentile(summary: object, percentile: str) -> float:
    return float(getattr(summary, f"{percentile}_ms"))


def _usable_points(
    tiers: Sequence[TierResult], slo_percentile: str, latency_slo_ms: float, max_error_rate: float
) -> tuple[list[_Point], list[tuple[int, float]]]:
    """The phases that measured the target, and (tier, offered rate) of the crowded ones that
    could not say.

    A crowded phase (the machine busy with other work) counts only if it met the SLO anyway:
    the noise adds latency, so a pass is an upper bound, a miss is nobody's. A phase with a
    saturated generator is left out silently: the generator usually saturates because the
    target took the CPU of the machine they share, which is the target's own limit there.
    """
    points = []
    unmeasured: list[tuple[int, float]] = []
    per_iteration = requests_per_iteration(tiers)
    for tier in tiers:
        phases = ([tier.steady] if tier.steady is not None else []) + list(tier.stress)
        for phase in phases:
            # A generator short of its own resources did not measure the target; one whose users all
            # waited on the target (arrivals dropped, nothing else) measured the target's limit.
            if phase.validity.generator_limited or phase.offered_rps <= 0:
                continue
            error_rate = phase.error_rate
            # Offered load counts iterations (one persona action, one or more requests); goodput
            # is counted in the same unit, or every comparison with offered load is off by the
            # requests an action makes.
            goodput = completed_iterations_per_s(phase, per_iteration) * (1.0 - error_rate)
            past_knee = goodput < PAST_KNEE_RATIO * phase.offered_rps
            latency = _percentile(phase.latency, slo_percentile)
            met = (latency <= latency_slo_ms and error_rate <= max_error_rate and not past_knee
                   and _failing_endpoint(phase, max_error_rate) is None and not phase.validity.saturated)  # fmt: skip
            if phase.validity.crowded and not met:
                unmeasured.append((tier.customers, phase.offered_rps))
                continue
            points.append(
                _Point(
                    tier=tier.customers,
                    phase=phase,
                    goodput=goodput,
                    carried=phase.offered_rps if goodput >= KEPT_UP_RATIO * phase.offered_rps else goodput,
                    latency_ms=latency,
                    service_ratio=(_percentile(phase.service, slo_percentile) / phase.service.mean_ms
                                   if phase.service.mean_ms > 0 else 1.0),
                    met_slo=met,
                    past_knee=past_knee,
                    held_alone=met,
                )
            )
    return _majority(points), unmeasured


def _majority(points: list[_Point]) -> list[_Point]:
    """A load measured more than once held only if most of its measurements did (a tie did not):
    one short window at the margin decides nothing alone."""
    groups: dict[tuple[int, float], list[_Point]] = {}
    for p in points:
        groups.setdefault((p.tier, round(p.phase.offered_rps, 3)), []).append(p)
    out = []
    for p in points:
        group = groups[(p.tier, round(p.phase.offered_rps, 3))]
        held = 2 * sum(q.met_slo for q in group) > len(group)
        out.append(p if len(group) == 1 else replace(p, met_slo=held))
    return out


def _mixed(points: Sequence[_Point]) -> tuple[float, int, int] | None:
    """The highest load measured more than once with mixed results: (rate, held, of)."""
    raw: dict[tuple[int, float], list[bool]] = {}
    for p in points:
        raw.setdefault((p.tier, round(p.phase.offered_rps, 3)), []).append(p.held_alone)
    mixed = [(rate, sum(v), len(v)) for (_, rate), v in raw.items() if len(v) > 1 and 0 < sum(v) < len(v)]
    return max(mixed, default=None)


#: An endpoint's error rate over the budget counts once it rests on this many errors (as the
#: verdict's error SLO does): one endpoint shedding load fails the step whatever the others do.
MIN_ENDPOINT_ERRORS = 5


def _failing_endpoint(phase: PhaseMeasurement, max_error_rate: float) -> EndpointMeasurement | None:
    """The endpoint with the highest error rate over the budget in this phase, if any: a load
    one endpoint answered with errors or timeouts was not carried, whatever its latency."""
    failing = [e for e in phase.endpoints if e.errors >= MIN_ENDPOINT_ERRORS and e.error_rate > max_error_rate]
    return max(failing, key=lambda e: e.error_rate, default=None)


def completed_iterations_per_s(phase: PhaseMeasurement, per_iteration: float) -> float:
    """The phase's throughput in offered load's unit: completed iterations per second.

    Counted by the engine; records made before it counted them fall back to requests divided by
    the audit's measured requests per iteration (a few percent off, the personas' mix varies).
    """
    counted = phase.achieved_ips
    return counted if counted is not None else phase.achieved_rps / per_iteration


def requests_per_iteration(tiers: Sequence[TierResult]) -> float:
    """How many requests one iteration (a persona's action) makes, measured (for old records).

    Taken from the lightest measured phase of the audit, where iterations finish: a phase past
    the knee starts iterations it cannot finish, so its own ratio would understate the work.
    The workload (the personas and their weights) is the same at every tier.
    """
    phases = [
        p for t in tiers for p in (t.steady, *t.stress)
        if p is not None and p.iterations_started > 0 and p.requests > 0 and not p.validity.saturated
    ]  # fmt: skip
    if not phases:
        return 1.0
    lightest = min(phases, key=lambda p: p.offered_rps)
    return lightest.requests / lightest.iterations_started


# --- measured, model-free -------------------------------------------------------------------


@dataclass(frozen=True)
class _Measured:
    """What the phases show without a model; the bounds are taken at the goal's data volume."""

    points: tuple[_Point, ...]  # every phase that measured the target
    floor_rps: float | None  # the highest load carried within the SLO
    ceiling: _Point | None  # the lowest load above the floor measured failing (errors, SLO, knee)
    blind_rps: float | None  # the lowest load above the floor missed on a busy machine
    capped_rps: float | None  # the pack's max_rps, when nothing measured failed
    knee_rps: float | None  # where latency turns up (Kneedle), over every tier

    @property
    def met(self) -> list[_Point]:
        return [p for p in self.points if p.met_slo]

    @property
    def record_points(self) -> tuple[tuple[float, float, float], ...]:
        ordered = sorted(self.points, key=lambda p: (p.phase.offered_rps, p.tier))
        return tuple((p.phase.offered_rps, p.goodput, p.phase.concurrency) for p in ordered)


def _measure(
    tiers: Sequence[TierResult],
    points: list[_Point],
    unmeasured: list[tuple[int, float]],
    question: _Question,
) -> _Measured:
    measured_tiers = {p.tier for p in points}
    goal_tiers = [t for t in measured_tiers if t >= question.goal_customers]
    at_volume = min(goal_tiers) if goal_tiers else max(measured_tiers, default=0)
    floor_rps = max((p.carried for p in points if p.met_slo and p.tier >= at_volume), default=None)
    ceiling = _ceiling(points, at_volume, floor_rps)
    ordered = sorted(points, key=lambda p: p.phase.offered_rps)
    return _Measured(
        points=tuple(points),
        floor_rps=floor_rps,
        ceiling=ceiling,
        blind_rps=_blind_spot(unmeasured, at_volume, floor_rps, ceiling),
        capped_rps=_max_rps_cap(tiers, at_volume) if ceiling is None else None,
        knee_rps=find_knee([p.phase.offered_rps for p in ordered], [p.latency_ms for p in ordered]),
    )


def _ceiling(points: list[_Point], at_volume: int, floor_rps: float | None) -> _Point | None:
    """A rate the service was measured failing at, at the goal's data volume (errors, SLO or
    past the knee), caps any estimate: a model that predicts more is contradicted."""
    failed = [
        p for p in points
        if p.tier >= at_volume and not p.met_slo and (floor_rps is None or p.phase.offered_rps > floor_rps)
    ]  # fmt: skip
    return min(failed, key=lambda p: p.phase.offered_rps, default=None)


def _blind_spot(
    unmeasured: list[tuple[int, float]], at_volume: int, floor_rps: float | None, ceiling: _Point | None
) -> float | None:
    """The lowest rate above the floor, at the goal's data volume, that missed the SLO while the
    machine was busy with other work: the floor may stop there because of the noise."""
    blind = [
        rps for tier, rps in unmeasured
        if tier >= at_volume and (floor_rps is None or rps > floor_rps)
        and (ceiling is None or rps < ceiling.phase.offered_rps)
    ]  # fmt: skip
    return min(blind) if blind else None


def _max_rps_cap(tiers: Sequence[TierResult], at_volume: int) -> float | None:
    """The pack's max_rps that kept the load at the goal's data volume from going further: with
    nothing failing below it, the floor is the cap's, not the service's."""
    capped = [t.max_rps_arrivals for t in tiers if t.customers >= at_volume and t.max_rps_arrivals is not None]
    return min(capped) if capped else None


def _measured_params(question: _Question, measured: _Measured) -> CapacityParams:
    customers = question.customers
    floor, blind, capped, knee = measured.floor_rps, measured.blind_rps, measured.capped_rps, measured.knee_rps
    ceiling = measured.ceiling.phase.offered_rps if measured.ceiling is not None else None
    mixed = _mixed(measured.points)
    return CapacityParams(
        per_customer_rps=question.per_customer_rps,
        goal_rps=question.goal_customers * question.per_customer_rps,
        latency_slo_ms=question.latency_slo_ms,
        valid_points=len(measured.points),
        past_knee_points=sum(p.past_knee for p in measured.points),
        lower_bound_rps=floor,
        lower_bound_customers=None if floor is None else customers(floor),
        ceiling_rps=ceiling,
        ceiling_customers=None if ceiling is None else customers(ceiling),
        unmeasured_rps=blind,
        unmeasured_customers=None if blind is None else customers(blind),
        max_rps_arrivals=capped,
        max_rps_customers=None if capped is None else customers(capped),
        knee_offered_rps=knee,
        knee_customers=None if knee is None else customers(knee),
        mixed_rps=mixed[0] if mixed else None,
        mixed_customers=customers(mixed[0]) if mixed else None,
        mixed_held=mixed[1] if mixed else None,
        mixed_of=mixed[2] if mixed else None,
    )


def _knee_text(question: _Question, measured: _Measured) -> str:
    knee_rps = measured.knee_rps
    if knee_rps is None:
        return ""
    if measured.ceiling is not None and knee_rps >= measured.ceiling.phase.offered_rps:
        return ""  # a knee past a load measured failing says nothing the failure does not
    return (
        f" Latency turns up (Kneedle) at {knee_rps:.4g} iterations/s offered "
        f"(~{question.customers(knee_rps):,.0f} customers)."
    )


def _measured_estimate(
    reason: str, question: _Question, measured: _Measured, params: CapacityParams
) -> CapacityEstimate:
    """The estimate without the USL (``reason`` says why not): the measured floor, or none."""
    knee_text = _knee_text(question, measured)
    if measured.floor_rps is None:
        return CapacityEstimate(
            predicted_customers=None,
            low=None,
            high=None,
            method="none",
            params=params,
            headroom=None,
            goal_customers=question.goal_customers,
            confidence="none",
            points=measured.record_points,
            note="No capacity estimate: no valid phase met the "
            f"{question.slo} SLO ({reason.rstrip('.')}).{knee_text}",
        )
    lb = question.customers(measured.floor_rps)
    ceiling = measured.ceiling
    return CapacityEstimate(
        predicted_customers=lb,
        low=lb,
        high=question.customers(ceiling.phase.offered_rps) if ceiling is not None else None,
        method="lower-bound",
        params=params,
        headroom=lb / question.goal_customers,
        goal_customers=question.goal_customers,
        # A measured floor is solid evidence only when it already clears the goal.
        confidence="medium" if lb >= question.goal_customers else "low",
        points=measured.record_points,
        note=f"Capacity is at least {lb:,.0f} customers ({measured.floor_rps:.4g} iterations/s carried "
        f"within the {question.slo} SLO); not extrapolated: {reason.rstrip('.')}.{knee_text}"
        + (
            f" The next load offered, {measured.blind_rps:.4g} iterations/s, missed the SLO while the "
            "machine was busy with other work, so it says nothing: more may be carried."
            if measured.blind_rps is not None
            else ""
        ),
    )


def _why_failed(point: _Point, question: _Question) -> str:
    phase = point.phase
    if phase.error_rate > question.max_error_rate:
        return f"{phase.error_rate:.0%} errors, over the {question.max_error_rate:.0%} budget"
    failing = _failing_endpoint(phase, question.max_error_rate)
    if failing is not None:
        return (f"{failing.name} failed {failing.error_rate:.0%} of its requests, over the "
                f"{question.max_error_rate:.0%} budget")  # fmt: skip
    if point.past_knee:
        return f"{point.goodput:.4g} of {phase.offered_rps:.4g} iterations/s completed"
    return f"{question.slo_percentile} {point.latency_ms:.4g} ms, over the {question.latency_slo_ms:g} ms SLO"


# --- the USL -----------------------------------------------------------------------------------


def _choose_fit_points(points: list[_Point]) -> tuple[list[_Point], int]:
    """Prefer the largest tier alone (the goal's data volume) when it can carry a fit by itself."""
    if not points:
        return points, 0
    largest = max(p.tier for p in points)
    own = [p for p in points if p.tier == largest]
    own_levels = distinct_levels(np.array([p.phase.concurrency for p in own]))
    if own_levels >= MIN_LOAD_LEVELS and any(p.past_knee for p in own):
        return own, largest
    return points, 0


def _usl_estimate(question: _Question, measured: _Measured, params: CapacityParams) -> CapacityEstimate:
    """The USL's capacity, or the measured estimate when the fit cannot be trusted (the note
    says why); the estimate's params carry what the fit found either way."""
    fit_points, fit_tier = _choose_fit_points(list(measured.points))
    try:
        fit = fit_usl([p.phase.concurrency for p in fit_points], [p.goodput for p in fit_points])
    except InsufficientData as exc:
        return _measured_estimate(str(exc), question, measured, params)
    contention, coherency = penalties(fit.sigma, fit.kappa, fit.n_star if math.isfinite(fit.n_star) else fit.n_max)
    params = replace(
        params,
        usl=fit.to_params(),
        fit_tier=fit_tier,
        contention_penalty=contention,
        coherency_penalty=coherency,
    )
    usl_text = _describe_fit(fit)
    if not any(p.past_knee for p in fit_points):
        reason = (
            f"no phase of the fit is past the knee (each completed at least {PAST_KNEE_RATIO:.0%} of its "
            "arrivals), so the USL would extrapolate blind; add stress steps until throughput stops "
            "following load"
        )
        return _measured_estimate(reason, question, measured, params)

    ratio = _slo_to_mean_ratio(measured)
    r_limit_s = question.latency_slo_ms / 1000.0 / ratio
    x_cap = float(capacity_throughput(fit.lam, fit.sigma, fit.kappa, r_limit_s))
    n_slo = float(slo_concurrency(fit.lam, fit.sigma, fit.kappa, r_limit_s))
    params = replace(params, slo_to_mean_ratio=ratio, n_slo=n_slo if math.isfinite(n_slo) else None)
    refusal = _contradicted(fit, x_cap, question, measured)
    if refusal is not None:
        return _measured_estimate(f"{refusal} {usl_text}", question, measured, params)

    x_low, x_high = _capacity_band(fit, r_limit_s, x_cap)
    rel_width = (x_high - x_low) / x_cap if x_cap > 0 else math.inf
    params = replace(
        params,
        x_capacity=x_cap,
        x_capacity_low=x_low,
        x_capacity_high=x_high if math.isfinite(x_high) else None,
        relative_band_width=rel_width if math.isfinite(rel_width) else -1.0,
    )
    refusal = _unusable_band(x_cap, x_low, x_high, rel_width, ratio, question)
    if refusal is not None:
        return _measured_estimate(f"{refusal} {usl_text}", question, measured, params)
    band = _UslCapacity(fit, ratio, x_cap, x_low, x_high, rel_width)
    return _usl_result(band, question, measured, params, usl_text)


def _describe_fit(fit: UslFit) -> str:
    return (
        f"USL σ = {fit.sigma:.3g} ± {fit.sigma_se:.2g} (contention), κ = {fit.kappa:.3g} ± "
        f"{fit.kappa_se:.2g} (coherency), λ = {fit.lam:.4g} iterations/s per request in flight; "
        + (
            f"peak {fit.x_max:.4g} iterations/s at N* = {fit.n_star:.3g} in flight"
            if math.isfinite(fit.n_star)
            else f"no peak (κ = 0, Amdahl): throughput approaches {fit.x_max:.4g} iterations/s"
        )
        + f"; {fit.dominant} dominates."
    )


def _slo_to_mean_ratio(measured: _Measured) -> float:
    """How far the SLO percentile sits above the mean, to scale the fitted mean latency by: at
    the busiest phase that met the SLO (the regime closest to the crossing), else the lightest."""
    met = measured.met
    ref = max(met, key=lambda p: p.goodput) if met else min(measured.points, key=lambda p: p.phase.offered_rps)
    return max(ref.service_ratio, 1.0)


def _contradicted(fit: UslFit, x_cap: float, question: _Question, measured: _Measured) -> str | None:
    """Why the fit's capacity cannot be used at all, or None."""
    if not math.isfinite(x_cap):
        return "the fit shows no throughput limit (σ = κ = 0) and no latency growth within the measured range."
    ceiling = measured.ceiling
    if ceiling is not None and x_cap > CEILING_TOLERANCE * ceiling.phase.offered_rps:
        return (
            f"the USL fit predicts {x_cap:.4g} iterations/s, but at {ceiling.tier:,} customers the "
            f"service already failed at {ceiling.phase.offered_rps:.4g} offered ({_why_failed(ceiling, question)}): "
            "a model that a measurement contradicts is not used."
        )
    if not fit.has_band:
        return "the fit's covariance could not be estimated (parameters not identifiable)."
    return None


def _capacity_band(fit: UslFit, r_limit_s: float, x_cap: float) -> tuple[float, float]:
    """The capacity's band, from the fit's parameter draws, widened to hold the estimate."""
    theta = fit.sample()
    caps = capacity_throughput(theta[:, 0], theta[:, 1], theta[:, 2], r_limit_s)
    tail = (1.0 - fit.level) / 2.0
    x_low, x_high = (float(v) for v in np.quantile(caps, [tail, 1.0 - tail]))
    return min(x_low, x_cap), max(x_high, x_cap)


def _unusable_band(
    x_cap: float, x_low: float, x_high: float, rel_width: float, ratio: float, question: _Question
) -> str | None:
    """Why the capacity and its band say too little to extrapolate from, or None."""
    if x_cap <= 0:
        return (
            f"the fitted latency misses the SLO even at light load (ratio {ratio:.2g} of "
            f"{question.slo_percentile} to mean)."
        )
    if not rel_width <= MAX_RELATIVE_BAND:
        return (
            f"the USL capacity band ({x_low:.4g} to {x_high:.4g} iterations/s) is wider than the estimate "
            f"{x_cap:.4g} iterations/s itself (limit {MAX_RELATIVE_BAND:g}x); more stress steps past the "
            "knee would narrow it."
        )
    return None


@dataclass(frozen=True)
class _UslCapacity:
    """The USL's capacity within the SLO, in iterations/s, and its band."""

    fit: UslFit
    ratio: float  # the SLO percentile over the mean latency the fit was scaled by
    x_cap: float
    x_low: float
    x_high: float
    rel_width: float  # (x_high - x_low) / x_cap


def _usl_result(
    band: _UslCapacity, question: _Question, measured: _Measured, params: CapacityParams, usl_text: str
) -> CapacityEstimate:
    """The USL estimate in customers, held between what was measured carried and failing."""
    customers = question.customers
    fit, x_cap = band.fit, band.x_cap
    predicted, low, high = customers(x_cap), customers(band.x_low), customers(band.x_high)
    if measured.ceiling is not None:  # within the tolerance: the measured failure still caps the band
        high = min(high, customers(measured.ceiling.phase.offered_rps))
        predicted = min(predicted, high)
    notes = [usl_text]
    if x_cap < fit.x_max * 0.999:
        notes.append(
            f"The {question.slo} SLO binds first, at {x_cap:.4g} iterations/s "
            f"(fitted mean latency × {band.ratio:.2g})."
        )
    floor_moved = False
    if measured.floor_rps is not None and customers(measured.floor_rps) > low:
        lb = customers(measured.floor_rps)
        notes.append(
            f"A load of {lb:,.0f} customers was measured within the SLO; the band's low end is "
            "raised to it."
        )
        floor_moved = lb > predicted
        low = lb
        predicted = max(predicted, lb)
        high = max(high, predicted)
    knee_agrees: bool | None = None
    knee_rps = measured.knee_rps
    if knee_rps is not None:
        ratio_knee = max(knee_rps, x_cap) / max(min(knee_rps, x_cap), 1e-12)
        knee_agrees = ratio_knee <= KNEE_DISAGREEMENT
        if not knee_agrees:
            notes.append(
                f"The USL capacity ({x_cap:.4g} iterations/s) and the latency knee ({knee_rps:.4g} iterations/s "
                f"offered) disagree by {ratio_knee:.1f}x; confidence lowered."
            )
    notes.append(_knee_text(question, measured).strip())
    confidence = _confidence_from(band.rel_width, fit.n_points, fit.r2, knee_agrees)
    if floor_moved and confidence == "high":
        confidence = "medium"
    return CapacityEstimate(
        predicted_customers=predicted,
        low=low,
        high=high if math.isfinite(high) else None,
        method="usl",
        params=params,
        headroom=predicted / question.goal_customers,
        goal_customers=question.goal_customers,
        confidence=confidence,
        points=measured.record_points,
        note=" ".join(n for n in notes if n),
    )


def _confidence_from(
    rel_width: float, n_points: int, r2: float, knee_agrees: bool | None
) -> Literal["high", "medium", "low"]:
    levels: tuple[Literal["low", "medium", "high"], ...] = ("low", "medium", "high")
    rank = 2 if rel_width <= 0.3 else 1 if rel_width <= 0.6 else 0
    if n_points < 8 or knee_agrees is None:
        rank = min(rank, 1)
    if r2 < 0.9:
        rank -= 1
    if knee_agrees is False:
        rank -= 1
    return levels[max(rank, 0)]


# --- measuring at the margin ----------------------------------------------------------------------

#: A tier whose held and failed loads are this close to the READY threshold is measured again there.
MARGIN = 1.3
#: Measurements of the threshold load wanted in all, so that most of them decide.
MARGIN_MEASUREMENTS = 3


def margin_factors(
    tier: TierResult,
    *,
    goal_customers: int,
    ready_headroom: float,
    latency_slo_ms: float,
    max_error_rate: float = 0.01,
    slo_percentile: str = "p95",
) -> tuple[float, ...]:
    """The stress factors (multiples of the tier's load) to measure once more, so that the
    verdict does not rest on one short window at the READY threshold.

    The threshold is ``ready_headroom`` x the goal's load. When it lies between the highest load the
    tier held and the lowest it failed, within ``MARGIN`` of either, it is measured until
    ``MARGIN_MEASUREMENTS`` windows exist there (repeats count by majority). Empty when the tier
    held well past it, failed well below it, or never reached it (a stop, the pack's max_rps).
    """
    if tier.steady is None or tier.offered_rps <= 0 or tier.customers <= 0:
        return ()
    threshold = ready_headroom * goal_customers / tier.customers
    points, _ = _usable_points([tier], slo_percentile, latency_slo_ms, max_error_rate)
    factor = {id(p): p.phase.offered_rps / tier.offered_rps for p in points}
    held = max((factor[id(p)] for p in points if p.met_slo), default=0.0)
    failed = min((factor[id(p)] for p in points if not p.met_slo and factor[id(p)] > held), default=None)
    if held >= MARGIN * threshold or failed is None and held < threshold:
        return ()
    if failed is not None and failed * MARGIN <= threshold:
        return ()
    at_threshold = sum(1 for p in points if abs(factor[id(p)] - threshold) < 1e-3 * threshold)
    return (round(threshold, 6),) * max(0, MARGIN_MEASUREMENTS - at_threshold)
