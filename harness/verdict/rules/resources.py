"""Resources: the target's memory growing steadily with the requests it serves is a leak."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from harness.records import Finding, TierResult
from harness.verdict.outcome import Outcome, make_finding, reproduce_command
from harness.verdict.policy import ReproduceContext, VerdictPolicy
from harness.verdict.wording import about

__all__ = ["resource_leak"]


@dataclass(frozen=True)
class _LineFit:
    slope: float  # MB per request
    r2: float
    n: int


def _fit_grouped(points: Sequence[tuple[Hashable, float, float]]) -> _LineFit | None:
    """A line with one intercept per group (a load phase of a tier) and a common slope: (group,
    x, y) points.

    Memory that steps up between phases is absorbed by the intercepts: between tiers the next
    tier's data is provisioned while no load runs, and when the offered load steps up the target
    takes more threads, connections and buffers for the requests in flight at once, which is
    bounded by that concurrency, not by how many requests it served. Only growth *while
    requests are served at one load* makes the slope.
    """
    groups: dict[Hashable, list[tuple[float, float]]] = defaultdict(list)
    for group, x, y in points:
        groups[group].append((x, y))
    sxx = sxy = syy = 0.0
    for members in groups.values():
        mx = sum(x for x, _ in members) / len(members)
        my = sum(y for _, y in members) / len(members)
        sxx += sum((x - mx) ** 2 for x, _ in members)
        sxy += sum((x - mx) * (y - my) for x, y in members)
        syy += sum((y - my) ** 2 for _, y in members)
    if sxx == 0:
        return None
    slope = sxy / sxx
    r2 = (sxy * sxy) / (sxx * syy) if syy > 0 else 0.0
    return _LineFit(slope=slope, r2=r2, n=len(points))


def _sustained_phase(tier: TierResult, at: float, max_p95_ms: float) -> int | None:
    """The measured load phase a sample was taken in, if the target sustained it (its index:
    0 the steady window, then the stress steps), else None: the steady window or a stress step
    whose p95 (from the intended start) met the SLO. Warm-up is left out (caches and pools fill
    then), and so is overload: requests queued in the target hold memory that depends on how
    many wait, not on how many were served. A tier without phases keeps all, as one phase."""
    phases = [p for p in (tier.steady, *tier.stress) if p is not None]
    if tier.warmup is None and not phases:
        return 0
    return next(
        (i for i, p in enumerate(phases)
         if p.started_at <= at <= p.ended_at and (p.latency.count == 0 or p.latency.p95_ms <= max_p95_ms)),
        None,
    )  # fmt: skip


def _rss_series(tiers: Sequence[TierResult], max_p95_ms: float = math.inf) -> list[tuple[Hashable, float, float]]:
    """((tier, phase), requests served since the first sample, RSS MB) for the samples taken
    under a sustained load, across tiers, counters made cumulative."""
    series: list[tuple[Hashable, float, float]] = []
    offset = 0.0
    previous = 0.0
    for tier in sorted(tiers, key=lambda t: t.customers):
        for sample in sorted(tier.resources, key=lambda s: s.at):
            raw = float(sample.requests_so_far)
            if raw < previous:  # a per-tier counter starting again from zero
                offset += previous
            previous = raw
            phase = _sustained_phase(tier, sample.at, max_p95_ms)
            if phase is not None:
                series.append(((tier.customers, phase), offset + raw, sample.rss_mb))
    return series


def resource_leak(
    tiers: Sequence[TierResult], policy: VerdictPolicy, ctx: ReproduceContext
) -> Outcome:
    """The target's RSS growing steadily with requests served, above the threshold, is a leak.

    The samples taken under a load the target sustained (steady windows and stress steps that
    met the default p95 SLO; warm-up and overload left out) of all tiers are put on one axis
    (requests served, counted by the load engine). The first third of it is dropped as warm-up
    (caches, connection pools, the allocator's arenas filling), and a line is fitted to the rest
    with one intercept per load phase: memory that steps up between tiers (the next tier's data
    provisioned while no load runs) or when the offered load steps up (more threads and
    connections for more requests at once) is not a leak; only growth while requests are
    served at one load counts. A leak is raised only when all hold:

    * the slope is at least ``leak_mb_per_10k_requests``;
    * the line explains the data (R^2 >= ``leak_min_r2``): steady growth, not noise or a step;
    * the growth persists to the end: the last half of the fitted samples grows at least half as
      fast as the whole (a cache that filled and then plateaued fails this);
    * the total growth over the fitted span is at least ``leak_min_growth_mb`` (RSS jitters by a
      few MB as the allocator and the garbage collector work), or at least
      ``leak_min_growth_mb_straight`` when the line is very straight (R^2 >=
      ``leak_straight_r2``): a shorter run still shows a per-request leak, while bounded caches
      filling up grow in steps.
    """
    series = _rss_series(tiers, max_p95_ms=policy.default_slo.p95_ms)
    if not series:
        return Outcome()
    if all(x == 0 for _, x, _ in series):
        return Outcome(notes=("The target's memory was sampled without request counts, so leaks were not judged.",))
    lo, hi = series[0][1], max(x for _, x, _ in series)
    cut = lo + (hi - lo) / 3
    judged = [(g, x, y) for g, x, y in series if x >= cut]
    span = (max(x for _, x, _ in judged) - min(x for _, x, _ in judged)) if judged else 0.0
    if len(judged) < policy.leak_min_samples or span < 10_000:
        return Outcome(notes=(
            f"Memory growth was not judged: {len(judged)} samples over {span:.0f} requests after warm-up, "
            f"fewer than {policy.leak_min_samples} samples or 10000 requests.",
        ))  # fmt: skip
    fit = _fit_grouped(judged)
    tail = _fit_grouped(judged[len(judged) // 2 :])
    if fit is None or tail is None:
        return Outcome()
    growth = _Growth(fit=fit, tail=tail, samples=len(judged), span=span)
    if not _is_leak(growth, policy):
        return Outcome()
    return Outcome(
        findings=(_leak_finding(growth, tiers, policy, ctx),),
        failures=(
            f"The target's memory grows steadily with requests served: {growth.per_10k:.1f} MB per 10000 requests (a leak).",
        ),
    )


@dataclass(frozen=True)
class _Growth:
    """The target's memory against requests served, after warm-up."""

    fit: _LineFit
    tail: _LineFit  # the last half of the samples alone
    samples: int
    span: float  # requests

    @property
    def per_10k(self) -> float:
        return self.fit.slope * 10_000

    @property
    def mb(self) -> float:
        return self.fit.slope * self.span


def _is_leak(g: _Growth, policy: VerdictPolicy) -> bool:
    steady = g.tail.slope >= 0.5 * g.fit.slope
    large = g.mb >= policy.leak_min_growth_mb or (
        g.mb >= policy.leak_min_growth_mb_straight and g.fit.r2 >= policy.leak_straight_r2
    )
    return g.per_10k >= policy.leak_mb_per_10k_requests and g.fit.r2 >= policy.leak_min_r2 and steady and large


def _leak_finding(g: _Growth, tiers: Sequence[TierResult], policy: VerdictPolicy, ctx: ReproduceContext) -> Finding:
    # Project at the goal's traffic, from the per-customer rate the tiers offered.
    rates = [t.offered_rps / t.customers for t in tiers if t.customers and t.offered_rps]
    goal_rps = (sum(rates) / len(rates)) * policy.goal_customers if rates else None
    per_hour = g.per_10k * goal_rps * 3600 / 10_000 if goal_rps else None
    largest = max(t.customers for t in tiers)
    return make_finding(
        "resource-leak",
        ["memory"],
        severity="high",
        title=(
            f"The service's memory grows with every request, about {g.per_10k:.1f} MB per 10000 requests"
            + (f" ({about(per_hour)} MB an hour at the goal's traffic)" if per_hour else "")
            + ": it will run out of memory unless restarted"
        ),
        detail=(
            f"Across {g.samples} samples after warm-up spanning {g.span:.0f} requests, the target's RSS grew "
            f"{g.mb:.0f} MB on a straight line (R^2 {g.fit.r2:.2f}; threshold {policy.leak_mb_per_10k_requests:g} "
            "MB per 10000 requests) and kept growing to the end of the run, so it is not a cache warming up. "
            "Something keeps a reference per request: an unbounded cache or memo without eviction, a list "
            "of requests or sessions appended to, objects registered on a global and never removed. Take "
            "two heap snapshots (tracemalloc) some thousand requests apart and diff them."
        ),
        evidence={
            "mb_per_10k_requests": g.per_10k,
            "r2": g.fit.r2,
            "samples": g.samples,
            "requests_span": g.span,
            "growth_mb": g.mb,
            "tail_mb_per_10k_requests": g.tail.slope * 10_000,
            "threshold_mb_per_10k_requests": policy.leak_mb_per_10k_requests,
            "goal_rps": goal_rps,
            "mb_per_hour_at_goal": per_hour,
        },
        reproduce=reproduce_command(ctx, f"tier:{largest}"),
    )
