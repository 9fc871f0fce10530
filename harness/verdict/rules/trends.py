"""Data volume: an endpoint whose service time grows with the customers' data."""

from __future__ import annotations

from collections.abc import Sequence

from harness.records import EndpointTrend
from harness.verdict.outcome import Outcome, make_finding, reproduce_command
from harness.verdict.policy import ReproduceContext, VerdictPolicy
from harness.verdict.wording import about, ms

__all__ = ["trend_findings"]


def trend_findings(
    trends: Sequence[EndpointTrend], policy: VerdictPolicy, ctx: ReproduceContext
) -> Outcome:
    """An endpoint growing linearly or faster with data and predicted to break its SLO before
    ``trend_break_factor`` x the goal is AT RISK even while it still meets the SLO at the goal.

    A predicted break further out, or super-linear growth with no predicted break, is a ``low``
    finding that does not change the verdict.
    """
    out = Outcome()
    for trend in sorted(trends, key=lambda t: t.endpoint):
        if trend.growth_class in ("linear", "super-linear") and trend.points:
            out += _trend(trend, policy, ctx)
    return out


def _trend(trend: EndpointTrend, policy: VerdictPolicy, ctx: ReproduceContext) -> Outcome:
    last_n, last_ms = max(trend.points)
    label = policy.label(trend.endpoint)
    slo = trend.slo_p95_ms if trend.slo_p95_ms is not None else policy.slo_for(trend.endpoint).p95_ms
    breaks = trend.breaks_at_customers
    evidence: dict[str, object] = {
        "points": [list(p) for p in trend.points],
        "slope": trend.slope,
        "slope_low": trend.slope_low,
        "slope_high": trend.slope_high,
        "growth_class": trend.growth_class,
        "breaks_at_customers": breaks,
        "slo_p95_ms": slo,
        "goal_customers": policy.goal_customers,
        "fixed_ms": trend.fixed_ms,
    }
    detail = _detail(trend)
    repro = reproduce_command(ctx, f"tier:{last_n}")
    if breaks is None:
        if trend.growth_class != "super-linear":
            return Outcome()
        return Outcome(findings=(make_finding(
            "data-volume-scaling", [trend.endpoint], severity="low",
            title=f"{label} gets slower faster than the data grows: at {last_n} customers it takes {ms(last_ms)} ms",
            detail=detail + " No SLO crossing could be predicted from the fit.",
            evidence=evidence, reproduce=repro, endpoint=trend.endpoint,
        ),))  # fmt: skip
    soon = breaks < policy.trend_break_factor * policy.goal_customers
    finding = make_finding(
        "data-volume-scaling",
        [trend.endpoint],
        severity=("high" if breaks <= policy.goal_customers else "medium") if soon else "low",
        title=(
            f"{label} gets slower as you add customers: at {last_n} it takes {ms(last_ms)} ms "
            f"and will break its {ms(slo)} ms SLO at about {about(breaks)}"
        ),
        detail=detail + ("" if soon else f" That is beyond {policy.trend_break_factor:g}x the goal, so it does not "
                                          "change the verdict yet."),  # fmt: skip
        evidence=evidence,
        reproduce=repro,
        endpoint=trend.endpoint,
    )
    if not soon:
        return Outcome(findings=(finding,))
    return Outcome(findings=(finding,), risks=(
        f"{trend.endpoint} grows {trend.growth_class} with data and is predicted to break its "
        f"SLO at about {about(breaks)} customers, before {policy.trend_break_factor:g}x the goal.",
    ))  # fmt: skip


def _detail(trend: EndpointTrend) -> str:
    cause = (
        "Linear growth with the data usually means a scan: a query without an index on the filter "
        "(tenant id, date), or a list endpoint returning every row instead of a page."
        if trend.growth_class == "linear"
        else "Faster-than-linear growth usually means work per row that itself grows: an N+1 query "
        "pattern over a growing list, a nested loop, a sort without an index."
    )
    shape = f"log-log slope {trend.slope:.2f}" if trend.slope is not None else "growth"
    return (
        f"The service time p95 of {trend.endpoint} at nominal load grows with the customers' data "
        f"({shape}: {', '.join(f'{n} -> {ms(value)} ms' for n, value in trend.points)}"
        + (f"; fitted above the {ms(trend.fixed_ms)} ms every request pays" if trend.fixed_ms else "")
        + f"). {cause} "
        f"Run EXPLAIN on its queries at the largest tier and count queries per request."
    )
