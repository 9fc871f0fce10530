"""Data volume: an endpoint whose own service time, or whose response, grows with the customers' data.

A prediction never contradicts what was measured: an endpoint already over its SLO at a measured
tier is reported as measured there, not as breaking "at about" a larger count.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.records import EndpointTrend, Finding
from harness.verdict.outcome import Outcome, TierAssessment, make_finding, reproduce_command
from harness.verdict.policy import ReproduceContext, VerdictPolicy
from harness.verdict.wording import about, ms

__all__ = ["SIZE_RISK_BYTES", "size_text", "trend_findings"]

#: A response projected past this size at the horizon the verdict looks to (trend_break_factor x
#: the goal) needs pagination before then: a megabyte per request is what clients and proxies time
#: out on and what a cache cannot hold many of.
SIZE_RISK_BYTES = 1_000_000
#: Below this a growing response is not worth a finding of its own.
SIZE_FINDING_BYTES = 10_000


def trend_findings(
    trends: Sequence[EndpointTrend],
    policy: VerdictPolicy,
    ctx: ReproduceContext,
    assessments: Sequence[TierAssessment] = (),
) -> Outcome:
    """An endpoint growing linearly or faster with data and predicted to break its SLO before
    ``trend_break_factor`` x the goal is AT RISK even while it still meets the SLO at the goal.

    A predicted break further out, or super-linear growth with no predicted break, is a ``low``
    finding that does not change the verdict. A response growing with the data is its own finding.
    """
    out = Outcome()
    for trend in sorted(trends, key=lambda t: t.endpoint):
        grows = trend.growth_class != "flat" and (trend.breaks_at_customers is not None or trend.growth_class == "super-linear")
        if trend.points and grows:
            out += _time(trend, policy, ctx, _failed_at(trend.endpoint, assessments))
        out += _size(trend, policy, ctx)
    return out


def _failed_at(endpoint: str, assessments: Sequence[TierAssessment]) -> int | None:
    """The smallest tier at which this endpoint was measured missing its latency SLO."""
    for a in sorted(assessments, key=lambda a: a.customers):
        if any(f.category == "slo-latency" and f.endpoint == endpoint for f in a.findings):
            return a.customers
    return None


def _time(trend: EndpointTrend, policy: VerdictPolicy, ctx: ReproduceContext, failed_at: int | None) -> Outcome:
    last_n, last_ms = max(trend.points)
    label = policy.label(trend.endpoint)
    slo = trend.slo_p95_ms if trend.slo_p95_ms is not None else policy.slo_for(trend.endpoint).p95_ms
    breaks = trend.breaks_at_customers
    evidence: dict[str, object] = {
        "points": [list(p) for p in trend.points],
        "measure": trend.measure,
        "slope": trend.slope,
        "slope_low": trend.slope_low,
        "slope_high": trend.slope_high,
        "growth_class": trend.growth_class,
        "breaks_at_customers": breaks,
        "slo_p95_ms": slo,
        "goal_customers": policy.goal_customers,
        "fixed_ms": trend.fixed_ms,
        "measured_over_slo_at": failed_at,
    }
    detail = _detail(trend)
    repro = reproduce_command(ctx, f"tier:{last_n}")

    def finding(severity: str, title: str, text: str) -> Finding:
        return make_finding("data-volume-scaling", [trend.endpoint], severity=severity,  # type: ignore[arg-type]
                            title=title, detail=text, evidence=evidence, reproduce=repro,
                            endpoint=trend.endpoint)  # fmt: skip

    if failed_at is not None and (breaks is None or breaks > failed_at):
        # Measured, not predicted: the tier says so; this says why it will only get worse.
        return Outcome(findings=(finding(
            "high" if failed_at <= policy.goal_customers else "medium",
            f"{label} gets slower as you add customers: at {last_n} it takes {ms(last_ms)} ms{_what(trend)}, "
            f"and it already missed its {ms(slo)} ms SLO at {failed_at} customers",
            detail,
        ),))  # fmt: skip
    if breaks is None:
        if trend.growth_class != "super-linear":
            return Outcome()
        return Outcome(findings=(finding(
            "low", f"{label} gets slower faster than the data grows: at {last_n} customers it takes {ms(last_ms)} ms",
            detail + " No SLO crossing could be predicted from the fit.",
        ),))  # fmt: skip
    soon = breaks < policy.trend_break_factor * policy.goal_customers
    found = finding(
        ("high" if breaks <= policy.goal_customers else "medium") if soon else "low",
        f"{label} gets slower as you add customers: at {last_n} it takes {ms(last_ms)} ms{_what(trend)} "
        f"and will break its {ms(slo)} ms SLO at about {about(breaks)}",
        detail + ("" if soon else f" That is beyond {policy.trend_break_factor:g}x the goal, so it does not "
                                  "change the verdict yet."),  # fmt: skip
    )
    if not soon:
        return Outcome(findings=(found,))
    return Outcome(findings=(found,), risks=(
        f"{trend.endpoint} grows {trend.growth_class} with data and is predicted to break its "
        f"SLO at about {about(breaks)} customers, before {policy.trend_break_factor:g}x the goal.",
    ))  # fmt: skip


def _what(trend: EndpointTrend) -> str:
    return " unloaded (median)" if trend.measure == "probe-p50" else ""


def _detail(trend: EndpointTrend) -> str:
    cause = {
        "linear": "Linear growth with the data usually means a scan: a query without an index on the filter "
        "(tenant id, date), or a list endpoint returning every row instead of a page.",
        "super-linear": "Faster-than-linear growth usually means work per row that itself grows: an N+1 query "
        "pattern over a growing list, a nested loop, a sort without an index.",
    }.get(trend.growth_class, "Growth with the data, whatever its exact shape, usually means the request reads "
          "more as the customers' data grows: a scan an index would avoid, a list with no page size, a "
          "per-row lookup.")
    what = ("its median service time with no other load (the tier's probe)" if trend.measure == "probe-p50"
            else "its service time p95 at nominal load")  # fmt: skip
    shape = (
        f"log-log slope {trend.slope:.2f}, interval {trend.slope_low:.2f} to {trend.slope_high:.2f}"
        if trend.slope is not None and trend.slope_low is not None and trend.slope_high is not None
        else "growth"
    )
    return (
        f"{trend.endpoint}: {what} grows with the customers' data "
        f"({shape}: {', '.join(f'{n} -> {ms(value)} ms' for n, value in trend.points)}"
        + (f"; fitted above the {ms(trend.fixed_ms)} ms every request pays" if trend.fixed_ms else "")
        + f"). {cause} Run EXPLAIN on its queries at the largest tier and count queries per request."
    )


def size_text(points: Sequence[tuple[int, float]]) -> str:
    return ", ".join(f"{n} -> {_bytes(b)}" for n, b in points)


def _bytes(b: float) -> str:
    if b >= 1_000_000:
        return f"{b / 1_000_000:.1f} MB"
    if b >= 1000:
        return f"{b / 1000:.0f} KB" if b >= 10_000 else f"{b / 1000:.1f} KB"
    return f"{b:.0f} B"


def _size(trend: EndpointTrend, policy: VerdictPolicy, ctx: ReproduceContext) -> Outcome:
    """A response that grows with the data: a list with no page size returns all of it."""
    if trend.size_class not in ("sub-linear", "linear", "super-linear") or not trend.size_points:
        return Outcome()
    last_n, last_b = max(trend.size_points)
    if last_b < SIZE_FINDING_BYTES or trend.size_slope is None:
        return Outcome()
    horizon = policy.trend_break_factor * policy.goal_customers
    projected = last_b * (horizon / last_n) ** trend.size_slope if horizon > last_n else last_b
    risky = projected >= SIZE_RISK_BYTES
    found = make_finding(
        "data-volume-scaling", [trend.endpoint, "size"],
        severity="medium" if risky else "low",
        title=(
            f"{policy.label(trend.endpoint)}'s response grows with the customers' data: {_bytes(last_b)} at "
            f"{last_n} customers" + (f", about {_bytes(projected)} at {about(horizon)}" if horizon > last_n else "")
        ),
        detail=(
            f"The mean response of {trend.endpoint} in each tier's probe grew with the data ({size_text(trend.size_points)}; "
            f"log-log slope {trend.size_slope:.2f}, {trend.size_class}). A response that grows with the data is a list "
            "without a page size: each request transfers and serialises more as customers are added, and it "
            "turns slow and memory-hungry before its latency shows it. Paginate it (a limit and a cursor), or "
            "filter it to what the caller needs."
        ),
        evidence={"size_points": [list(p) for p in trend.size_points], "size_slope": trend.size_slope,
                  "size_class": trend.size_class, "projected_bytes": projected, "horizon_customers": horizon},
        reproduce=reproduce_command(ctx, f"tier:{last_n}"),
        endpoint=trend.endpoint,
    )  # fmt: skip
    if not risky:
        return Outcome(findings=(found,))
    return Outcome(findings=(found,), risks=(
        f"{trend.endpoint}'s response is projected to reach {_bytes(projected)} at {about(horizon)} customers.",
    ))  # fmt: skip
