"""A regression against the pack's baseline run: significant and larger than the noise.

The comparison itself (harness.comparison) decided which changes are regressions; this rule
turns each into a ``baseline-regression`` finding with its numbers and makes the verdict AT RISK
at least: the service still meets its objectives, but it got slower than it was, and a team
wants to know the night it happened, not the night it breaks an SLO. Improvements are notes.
"""

from __future__ import annotations

from harness.records import BaselineComparison, MetricChange
from harness.verdict.evidence import Evidence
from harness.verdict.outcome import Outcome, make_finding, reproduce_command
from harness.verdict.policy import ReproduceContext, VerdictPolicy

__all__ = ["baseline_findings", "describe_change"]

_WHAT = {"service_p50": "median service time", "p95": "p95 latency"}


def describe_change(c: MetricChange) -> str:
    """``GET /slots's median service time at 500 customers: 1.9 ms -> 2.5 ms (+31 %, 95 % interval
    +27 % to +35 %, p = 1e-40)``."""
    return (f"{c.endpoint}'s {_WHAT.get(c.metric, c.metric)} at {c.tier} customers: {c.before:.3g} ms -> "
            f"{c.after:.3g} ms ({c.change:+.0%}, 95 % interval {c.low:+.0%} to {c.high:+.0%}, "
            f"p = {c.p_value:.2g})")  # fmt: skip


def baseline_findings(evidence: Evidence, policy: VerdictPolicy, ctx: ReproduceContext) -> Outcome:
    comparison = evidence.baseline
    if comparison is None:
        return Outcome()
    out = Outcome()
    # One finding per endpoint and tier: its median and its p95 moving together are one regression.
    seen: set[tuple[int, str]] = set()
    for c in comparison.regressions:
        if (c.tier, c.endpoint) in seen:
            continue
        seen.add((c.tier, c.endpoint))
        out += _regression(comparison, c, ctx)
    for c in comparison.improvements:
        out += Outcome(notes=(f"Faster than the baseline {comparison.baseline_run_id}: {describe_change(c)}.",))
    return out


def _regression(comparison: BaselineComparison, c: MetricChange, ctx: ReproduceContext) -> Outcome:
    noise = (f"the run-to-run noise of this metric over {c.noise_runs} earlier runs is {c.noise:.0%}"
             if c.noise is not None else "too few earlier runs to measure its run-to-run noise, so the 10 % minimum applies")  # fmt: skip
    title = (f"{c.endpoint} got {c.change:.0%} slower at {c.tier} customers than in the baseline run "
             f"{comparison.baseline_run_id}")  # fmt: skip
    detail = (
        f"{describe_change(c)}. The change is significant (Mann-Whitney U over {c.requests_before} and "
        f"{c.requests_after} requests) and larger than the {c.threshold:.0%} a regression must exceed "
        f"({noise}). Compare the two runs with `scaleready compare {comparison.baseline_run_id} "
        f"{comparison.run_id}`; if the change is intended, pin this run as the new baseline with "
        f"`scaleready baseline pin {comparison.run_id}`."
    )
    finding = make_finding(
        "baseline-regression", (c.tier, c.endpoint), severity="medium", title=title, detail=detail,
        evidence={
            "baseline_run_id": comparison.baseline_run_id, "baseline_commit": comparison.baseline_commit,
            "metric": c.metric, "before_ms": round(c.before, 4), "after_ms": round(c.after, 4),
            "change": round(c.change, 4), "interval": [round(c.low, 4), round(c.high, 4)],
            "p_value": c.p_value, "threshold": round(c.threshold, 4),
            "noise": None if c.noise is None else round(c.noise, 4),
            "requests": [c.requests_before, c.requests_after],
        },
        reproduce=reproduce_command(ctx, None), tier=c.tier, endpoint=c.endpoint,
    )  # fmt: skip
    return Outcome(findings=(finding,), risks=(f"{title}.",))
