"""What counts as passing: the SLOs, the error budget, the goal, and every threshold a rule uses.

Built from the pack's ``[slo]`` table (``harness.audit``); the rest are the harness's defaults,
each with the reason for its value next to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["EndpointSlo", "ReproduceContext", "VerdictPolicy"]


@dataclass(frozen=True)
class EndpointSlo:
    """Latency objectives of one endpoint, from the intended start of each request."""

    p95_ms: float
    p99_ms: float


@dataclass(frozen=True)
class VerdictPolicy:
    """What counts as passing. Built from the pack's `[slo]` table; the rest are harness defaults."""

    default_slo: EndpointSlo
    endpoint_slos: Mapping[str, EndpointSlo]  # by Locust request name, e.g. "GET /slots"
    max_error_rate: float  # e.g. 0.01; a rate exactly at the budget passes
    goal_customers: int  # e.g. 5000
    # READY needs predicted capacity / goal >= this: room for a spike and a few months of growth.
    ready_headroom: float = 1.5
    # A p99 is judged only on >= 1000 requests: then it rests on at least 10 requests slower than
    # it. Below that one slow request moves it (and Locust-era reports judged p99s of 50 requests).
    min_requests_for_percentiles: int = 1000
    # The same rule for the p95: 10 slower requests need 200.
    min_requests_for_p95: int = 200
    # Below that, from 10 requests on, only a gross failure is judged: a median over the p95
    # limit (5 of 10 requests over a 1-in-20 limit does not happen by chance). Small tiers carry
    # little traffic by nature; the tier at the goal must have enough for a p95 or it is invalid.
    min_requests_for_p50: int = 10
    # An error rate over the budget is judged once it rests on 5 errors: at a small tier 2 errors
    # in 120 requests happen a third of the time at a 1 % rate; 5 almost never.
    min_errors_for_error_rate: int = 5
    # Memory leak: 1 MB per 10k requests is ~100 bytes kept per request; at 100 req/s that is
    # 36 MB an hour, ~860 MB a day: a 1 GB container dies daily. Smaller slopes drown in the
    # allocator's jitter over an audit's ~10^5 requests. The growth must also be a good straight
    # line (R^2), persist to the end of the run, and total at least 20 MB; or at least 10 MB on
    # a very straight line (R^2 0.9): bounded caches still filling (SQLite's page cache on each
    # pooled connection) grow in steps and bends, a per-request leak on a line.
    leak_mb_per_10k_requests: float = 1.0
    leak_min_growth_mb: float = 20.0
    leak_min_r2: float = 0.8
    leak_min_growth_mb_straight: float = 10.0
    leak_straight_r2: float = 0.9
    leak_min_samples: int = 6
    # USL contention: sigma = 0.05 means 5 % of each request's work is serialised, which caps
    # throughput at 1/sigma = 20x a single request stream. Raised above it when sigma dominates.
    contention_sigma: float = 0.05
    # USL coherency: raised when kappa dominates and throughput peaks (N*) within this factor of
    # the largest concurrency measured: retrograde scaling is close, not a distant extrapolation.
    coherency_reach: float = 2.0
    # Data-volume trends: an endpoint predicted to break its SLO before this x the goal is AT RISK.
    trend_break_factor: float = 2.0
    # READY needs integrity checked at every tier, and a valid tier at or above the goal
    # (otherwise readiness at the goal rests on extrapolation alone).
    require_integrity: bool = True
    require_goal_tier: bool = True
    # Human names for endpoints in titles, e.g. {"GET /patients": "Patient search"}.
    endpoint_labels: Mapping[str, str] = field(default_factory=dict)

    def slo_for(self, endpoint: str) -> EndpointSlo:
        return self.endpoint_slos.get(endpoint, self.default_slo)

    def label(self, endpoint: str) -> str:
        """The endpoint's human name for titles, or the endpoint itself."""
        return self.endpoint_labels.get(endpoint, endpoint)

    def error_rate_judged(self, errors: int) -> bool:
        """Whether an error rate over the budget rests on enough errors to be judged."""
        return errors >= self.min_errors_for_error_rate


@dataclass(frozen=True)
class ReproduceContext:
    """What a finding's reproduce command needs to rerun one stage or tier."""

    pack: str  # e.g. "scenarios/booking"
    profile: str
    target_url: str | None
    started_by_harness: bool
    extra_args: str = ""  # e.g. "--seed 42 --flaw n-plus-one"
