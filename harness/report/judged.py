"""What a tier's status rests on, in words: which percentiles the verdict judged per endpoint.

A small tier carries little traffic by nature, so the verdict judges a p95 or a p99 only on enough
requests for it (at least 10 requests slower than it) and otherwise only the error budget and,
from 10 requests, a median against the p95 limit. A tier that passed on that much is not shown
as plainly "passed": the report says what was judged. The decision itself is the verdict's
(``tiers[].slo_checks`` in the scorecard); this module only counts and words it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TierJudged", "tier_judged"]


@dataclass(frozen=True)
class TierJudged:
    status: str  # the badge: the tier's status, or "partly judged" for a pass on part of the SLOs
    css: str  # the badge's class suffix
    summary: str  # "p95 9/10 · p99 4/10 · median 1/10", or "" when not recorded
    sentence: str  # what the status rests on, for the tier's page

    @property
    def fully_judged(self) -> bool:
        return self.status == "passed"


def _count(checks: list[Mapping[str, Any]], percentile: str) -> int:
    return sum(1 for c in checks if percentile in c["percentiles"])


def _some(count: int, total: int) -> str:
    return "none" if count == 0 else "all" if count == total else f"{count}"


def tier_judged(tier: Mapping[str, Any]) -> TierJudged:
    """The badge and the words for one scorecard tier."""
    status = tier["status"]
    checks = tier.get("slo_checks")
    if checks is None:
        unknown = status == "passed" and "slo_checks" not in tier
        sentence = ("This run's scorecard predates the record of which percentiles were judged."
                    if unknown else "")  # fmt: skip
        return TierJudged(status, status, "", sentence)
    n = len(checks)
    p95, p99, p50 = _count(checks, "p95"), _count(checks, "p99"), _count(checks, "p50")
    parts = [f"p95 {p95}/{n}", f"p99 {p99}/{n}"] + ([f"median only {p50}/{n}"] if p50 else [])
    summary = " · ".join(parts)
    if status != "passed":
        return TierJudged(status, status, summary, "")
    if n and p95 == n and p99 == n:
        return TierJudged("passed", "passed", summary,
                          "Every endpoint's p95 and p99 were judged against their objectives, and the error budget held.")  # fmt: skip
    none_at_all = n - p95 - p50
    sentence = (
        f"Passed on what its traffic allowed to judge: the error budget of all {n} endpoints; "
        f"the p95 of {_some(p95, n)} and the p99 of {_some(p99, n)}"
        + (f"; for {p50} only the median, against the p95 limit" if p50 else "")
        + (f"; {none_at_all} had too few requests for any percentile" if none_at_all > 0 else "")
        + ". A percentile is judged only on enough requests for at least 10 to be slower than "
        "it, and a small tier's peak hour sends few."
    )
    return TierJudged("partly judged", "partial", summary, sentence)
