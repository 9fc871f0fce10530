"""Server errors under load, each replayed once alone: still failing is a bug, passing is capacity.

A server error that still fails when replayed alone is reported as ``property``: it falsifies the
"no 5xx on any input" property the properties stage checks, found by the load instead of by
Hypothesis, and it is as definite (NOT READY). One that passes alone means a resource ran out
under concurrency (``saturation-errors``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from harness.records import Finding, PhaseMeasurement, ReplayedError, TierResult
from harness.verdict.outcome import TierOutcome, make_finding
from harness.verdict.policy import VerdictPolicy
from harness.verdict.wording import names

__all__ = ["bugs", "capacity_errors", "passed_alone"]


def bugs(tier: TierResult, policy: VerdictPolicy, repro: str) -> TierOutcome:
    """Requests that fail even when replayed alone: bugs, whatever the load."""
    failing = [r for r in tier.replayed_errors if r.still_failing]
    if not failing:
        return TierOutcome()
    findings = tuple(bug_finding(tier, endpoint, group, policy, repro) for endpoint, group in by_endpoint(failing).items())
    endpoints = sorted({r.sample.endpoint for r in failing})
    return TierOutcome(
        findings=findings,
        failures=(f"{names(endpoints)} failed with server errors even when replayed alone (a bug)",),
    )


def capacity_errors(
    tier: TierResult, steady: PhaseMeasurement, over_budget: frozenset[str], policy: VerdictPolicy, repro: str
) -> TierOutcome:
    """Server errors that pass when replayed alone: the target ran out of capacity.

    At the nominal load (warm-up and steady window) they are a risk, or part of an SLO failure
    when the endpoint was over its error budget (``over_budget``). Past it (stress steps) errors
    are the probe doing its job and do not change the verdict; but server errors there that pass
    alone say which resource runs out first (a pool, a lock timeout), so they are named, as a low
    finding and a note.
    """
    n = tier.customers
    start = (tier.warmup or steady).started_at
    nominal = [r for r in tier.replayed_errors if passed_alone(r) and start <= r.sample.at <= steady.ended_at]
    out = TierOutcome()
    for endpoint, group in by_endpoint(nominal).items():
        over = endpoint in over_budget
        out += TierOutcome(findings=(saturation_errors_finding(tier, endpoint, group, over, policy, repro),))
        if not over:
            out += TierOutcome(risks=(
                f"At {n} customers {endpoint} already sheds some requests with server errors at "
                "nominal load (within the error budget, but a sign of saturation).",
            ))  # fmt: skip
    nominal_endpoints = set(by_endpoint(nominal))
    stressed = [
        r for r in tier.replayed_errors
        if passed_alone(r) and r.sample.at > steady.ended_at and r.sample.endpoint not in nominal_endpoints
    ]  # fmt: skip
    for endpoint, group in by_endpoint(stressed).items():
        out += TierOutcome(
            findings=(saturation_errors_finding(tier, endpoint, group, False, policy, repro, stress=True),),
            notes=(
                f"At {n} customers {endpoint} answered server errors once pushed past the tier's load "
                "(they pass when replayed alone): it fails there instead of slowing down.",
            ),
        )
    return out


def passed_alone(r: ReplayedError) -> bool:
    """The replay alone succeeded. A replay refused as unauthenticated (401/403) proves nothing:
    the request could not be sent as its customer, so it is neither a bug nor a capacity error."""
    return not r.still_failing and r.replay_status not in (401, 403)


def by_endpoint(replays: Iterable[ReplayedError]) -> dict[str, list[ReplayedError]]:
    groups: dict[str, list[ReplayedError]] = defaultdict(list)
    for r in replays:
        groups[r.sample.endpoint].append(r)
    return dict(sorted(groups.items()))


def bug_finding(
    tier: TierResult, endpoint: str, group: list[ReplayedError], policy: VerdictPolicy, repro: str
) -> Finding:
    s = group[0].sample
    replay = group[0].replay_status or "no answer"
    return make_finding(
        "property",
        [tier.customers, endpoint, "replay"],
        severity="high",
        title=(
            f"{policy.label(endpoint)} fails with a server error even on its own, with no load: a bug, "
            "not a capacity problem"
        ),
        detail=(
            f"Under load at {tier.customers} customers {s.method} {s.url} answered {s.status or s.reason}"
            f"; replayed alone it answered {replay} again ({len(group)} distinct request(s) like this). "
            "It falsifies the property 'no 5xx on any input', found by the load rather than by the "
            "property checks: more capacity will not fix it. It likely depends on the data the tier "
            "created (pagination past the end, an empty or very long field, a customer with no records of some kind). "
            f"Request body: {s.request_body or '(none)'}. Response excerpt: {s.body_excerpt[:300]}"
        ),
        evidence={
            "customers": tier.customers,
            "method": s.method,
            "url": s.url,
            "status": s.status,
            "replay_status": group[0].replay_status,
            "request_body": s.request_body,
            "body_excerpt": s.body_excerpt[:300],
            "distinct_requests": len(group),
        },
        reproduce=repro,
        tier=tier.customers,
        endpoint=endpoint,
    )


def saturation_errors_finding(
    tier: TierResult,
    endpoint: str,
    group: list[ReplayedError],
    over_budget: bool,
    policy: VerdictPolicy,
    repro: str,
    stress: bool = False,
) -> Finding:
    s = group[0].sample
    where = "when pushed past the load of" if stress else "under load at"
    return make_finding(
        "saturation-errors",
        [tier.customers, endpoint] + (["stress"] if stress else []),
        severity="low" if stress
        else "high" if over_budget and tier.customers <= policy.goal_customers
        else "medium",
        title=(
            f"{policy.label(endpoint)} returns server errors {where} {tier.customers} customers "
            "that succeed when retried alone: it runs out of capacity"
        ),
        detail=(
            f"{len(group)} distinct request(s) that failed under load (e.g. {s.method} {s.url} -> "
            f"{s.status}: {s.body_excerpt[:200]}) passed when replayed with no other load, so the code "
            "is right but a resource runs out under concurrency: a database connection pool too small "
            "for the workers, a pool or lock timeout (SQLite 'database is locked'), a worker timeout. "
            "Check the pool sizes and the timeouts against the concurrency the tier reached."
        ),
        evidence={
            "customers": tier.customers,
            "distinct_requests": len(group),
            "statuses": sorted({r.sample.status for r in group}),
            "replay_statuses": sorted({r.replay_status for r in group}),
            "over_error_budget": over_budget,
            "beyond_nominal_load": stress,
        },
        reproduce=repro,
        tier=tier.customers,
        endpoint=endpoint,
    )
