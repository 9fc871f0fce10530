"""The SLOs of one steady window: each endpoint's latency from the intended start, and errors.

A percentile is judged only on enough requests for it (see ``VerdictPolicy``), and a miss only
when it is larger than the harness's own noise floor (plus, on a busy machine, what the busy
machine can have added).
"""

from __future__ import annotations

from collections import defaultdict

from harness.records import (
    EndpointMeasurement,
    Finding,
    NoiseFloor,
    PhaseMeasurement,
    SloCheck,
    TierResult,
)
from harness.validity import probe_endpoints
from harness.verdict.outcome import Outcome, make_finding
from harness.verdict.policy import EndpointSlo, VerdictPolicy
from harness.verdict.wording import ms, names, pct

__all__ = [
    "errors_finding", "judge_steady", "latency_finding", "own_answer_errors", "server_errors", "slo_checks",
    "worst_latency",
]

# Failures the machine's state cannot cause: a timeout or a refused connection may be the
# generator's lateness or a starved core, a 4xx may be a credential that aged while the run was
# slow; an answer the target sent is its own whatever the machine did.
_NOT_THE_ANSWER = ("timeout", "connection", "interrupted", "http-4")


def server_errors(e: EndpointMeasurement) -> int:
    return sum(n for reason, n in e.errors_by_reason.items() if reason.startswith("http-5"))


def own_answer_errors(e: EndpointMeasurement) -> int:
    """Failed requests whose failure is the target's own answer: server errors and malformed
    answers (a body that is not JSON, the wrong content type, past the size limit), the part of
    an endpoint's errors a busy machine or a late generator cannot explain."""
    return sum(n for reason, n in e.errors_by_reason.items() if not reason.startswith(_NOT_THE_ANSWER))


def worst_latency(
    steady: PhaseMeasurement, policy: VerdictPolicy
) -> tuple[str, float, float] | None:
    worst: tuple[str, float, float] | None = None
    for e in steady.endpoints:
        if e.requests < policy.min_requests_for_p95:
            continue
        slo = policy.slo_for(e.name).p95_ms
        if worst is None or e.latency.p95_ms / slo > worst[1] / worst[2]:
            worst = (e.name, e.latency.p95_ms, slo)
    return worst


def judge_steady(
    tier: TierResult,
    steady: PhaseMeasurement,
    policy: VerdictPolicy,
    noise_floor: NoiseFloor | None,
    repro: str,
    lateness_ms: float = 0.0,
) -> Outcome:
    """SLOs per endpoint on a valid steady window: latency from the intended start, and errors.

    ``lateness_ms``: what a busy machine may have added to each latency through the generator's
    own lateness; a miss must be larger than it, as it must be larger than the noise floor.
    """
    n = tier.customers
    floor = noise_floor.p99_overhead_ms if noise_floor is not None else 0.0
    margin = floor + lateness_ms
    findings: list[Finding] = []
    failures: list[str] = []
    notes: list[str] = []
    no_p95: list[str] = []
    no_p99: list[str] = []
    for e in sorted(steady.endpoints, key=lambda e: e.name):
        slo = policy.slo_for(e.name)
        checks = _percentile_checks(e, slo, policy)
        if e.requests < policy.min_requests_for_p95:
            no_p95.append(e.name)
        if e.requests < policy.min_requests_for_percentiles:
            no_p99.append(e.name)
        breaches: list[tuple[str, float, float]] = []
        for label, value, limit in checks:
            if value <= limit:
                continue
            if value - limit < margin:
                notes.append(_within_noise(n, e.name, label, value, limit, floor, lateness_ms))
                continue
            breaches.append((label, value, limit))
        if breaches:
            findings.append(latency_finding(tier, steady, e, slo, breaches, floor, policy, repro))
            label, value, limit = breaches[0]
            failures.append(
                f"{e.name} {label} was {ms(value)} ms, over its "
                + (f"{ms(limit)} ms SLO" if label != "p50" else f"p95 SLO of {ms(limit)} ms")
            )
        if e.error_rate > policy.max_error_rate and policy.error_rate_judged(e.errors):
            findings.append(errors_finding(tier, steady, e, policy, repro))
            failures.append(
                f"{e.name} failed {pct(e.error_rate)} of requests, over the {pct(policy.max_error_rate)} budget"
            )
    tier_rate = steady.error_rate
    if (
        tier_rate > policy.max_error_rate
        and policy.error_rate_judged(steady.errors)
        and not any(f.category == "slo-errors" for f in findings)
    ):
        findings.append(errors_finding(tier, steady, None, policy, repro))
        failures.append(
            f"{pct(tier_rate)} of all requests failed, over the {pct(policy.max_error_rate)} budget"
        )
    if no_p95:
        notes.append(
            f"At {n} customers the p95 of {names(no_p95)} was not judged: fewer than "
            f"{policy.min_requests_for_p95} requests each, and a p95 needs at least 10 requests slower than it."
        )
    if no_p99 and len(no_p99) > len(no_p95):
        only = [name for name in no_p99 if name not in no_p95]
        notes.append(
            f"At {n} customers the p99 of {names(only)} was not judged: fewer than "
            f"{policy.min_requests_for_percentiles} requests each, and a p99 needs at least 10 requests slower than it."
        )
    return Outcome(findings=tuple(findings), failures=tuple(failures), notes=tuple(notes))


def slo_checks(steady: PhaseMeasurement, policy: VerdictPolicy) -> tuple[SloCheck, ...]:
    """Which percentiles :func:`judge_steady` judges for each endpoint of ``steady``, for reports."""
    return tuple(
        SloCheck(e.name, e.requests, tuple(label for label, _, _ in _percentile_checks(e, policy.slo_for(e.name), policy)))
        for e in sorted(steady.endpoints, key=lambda e: e.name)
    )


def _percentile_checks(
    e: EndpointMeasurement, slo: EndpointSlo, policy: VerdictPolicy
) -> list[tuple[str, float, float]]:
    """(percentile, measured, limit) for each percentile the endpoint's requests can support."""
    checks: list[tuple[str, float, float]] = []
    if e.requests >= policy.min_requests_for_p95:
        checks.append(("p95", e.latency.p95_ms, slo.p95_ms))
    elif e.requests >= policy.min_requests_for_p50:
        # Too few for a p95, but a median above the p95 limit is a gross failure that a
        # handful of requests shows beyond doubt (half of them over a 1-in-20 limit).
        checks.append(("p50", e.latency.p50_ms, slo.p95_ms))
    if e.requests >= policy.min_requests_for_percentiles:
        checks.append(("p99", e.latency.p99_ms, slo.p99_ms))
    return checks


def _within_noise(n: int, name: str, label: str, value: float, limit: float, floor: float, lateness_ms: float) -> str:
    noise = f"the harness's own noise floor ({ms(floor)} ms at p99)"
    if lateness_ms:
        noise += f" plus the busy machine's lateness ({ms(lateness_ms)} ms)"
    return (
        f"At {n} customers {name}'s {label} of {ms(value)} ms is over its {ms(limit)} ms "
        f"SLO by {ms(value - limit)} ms, less than {noise}: not raised."
    )


def latency_finding(
    tier: TierResult,
    steady: PhaseMeasurement,
    e: EndpointMeasurement,
    slo: EndpointSlo,
    breaches: list[tuple[str, float, float]],
    floor: float,
    policy: VerdictPolicy,
    repro: str,
) -> Finding:
    n = tier.customers
    label, value, limit = breaches[0]
    share = {"p50": "half of its requests", "p95": "1 request in 20", "p99": "1 request in 100"}[
        label
    ]
    verb = "take" if label == "p50" else "takes"
    unloaded = probe_service_ms(tier, e.name)
    cause = _why_slow(e, slo, unloaded)
    return make_finding(
        "slo-latency",
        [n, e.name],
        severity="medium" if n > policy.goal_customers else "high",
        title=(
            f"{policy.label(e.name)} is too slow at {n} customers: {share} {verb} longer than "
            f"{ms(value)} ms, over its {ms(limit)} ms limit"
        ),
        detail=(
            f"In the steady window at {steady.offered_rps:.1f} arrivals/s offered ({steady.achieved_rps:.1f} "
            f"achieved), {e.name} served {e.requests} requests with latency measured from each "
            f"request's intended start (coordinated omission corrected): p50 {ms(e.latency.p50_ms)} ms, "
            f"p95 {ms(e.latency.p95_ms)} ms, p99 {ms(e.latency.p99_ms)} ms. Its SLO is p95 <= "
            f"{ms(slo.p95_ms)} ms and p99 <= {ms(slo.p99_ms)} ms. Service time p95 was "
            f"{ms(e.service.p95_ms)} ms. {cause}"
        ),
        evidence={
            "customers": n,
            "requests": e.requests,
            "p50_ms": e.latency.p50_ms,
            "p95_ms": e.latency.p95_ms,
            "p99_ms": e.latency.p99_ms,
            "max_ms": e.latency.max_ms,
            "service_p95_ms": e.service.p95_ms,
            "slo_p95_ms": slo.p95_ms,
            "slo_p99_ms": slo.p99_ms,
            "breached": [b[0] for b in breaches],
            "noise_floor_ms": floor,
            "offered_rps": steady.offered_rps,
            "unloaded_service_p50_ms": unloaded,
        },
        reproduce=repro,
        tier=n,
        endpoint=e.name,
    )


def probe_service_ms(tier: TierResult, endpoint: str) -> float | None:
    """The endpoint's median service time in the tier's unloaded probe, when it was measured."""
    e = probe_endpoints(tier.probe).get(endpoint)
    return None if e is None else float(e.service.p50_ms)


def waited(e: EndpointMeasurement, unloaded_ms: float | None) -> bool:
    """Under load the endpoint took far longer than its own work alone: it waited for something."""
    return unloaded_ms is not None and e.service.p50_ms > 2 * unloaded_ms + 1.0


def _why_slow(e: EndpointMeasurement, slo: EndpointSlo, unloaded_ms: float | None) -> str:
    if waited(e, unloaded_ms):
        return (
            f"With no other load (the tier's probe) it takes {ms(unloaded_ms or 0.0)} ms, so its own work is not "
            "what is slow: under load it waited inside the service, for a worker, a connection, a lock, or "
            "behind other requests. See the cause finding of this tier, if any, for what they queued behind."
        )
    if e.latency.p95_ms > 2 * max(e.service.p95_ms, 0.001):
        return (
            "Latency from the intended start is far above the service time (send to last byte): requests "
            "waited before being served. Look for a queue in front of the handler: too few server workers, "
            "an exhausted database connection pool, or a lock they all wait on."
        )
    if unloaded_ms is not None and unloaded_ms < 0.5 * slo.p95_ms:
        return (
            f"With no other load it takes {ms(unloaded_ms)} ms, well within its SLO, so its own work is fast "
            "enough: what it waited for is shared with the rest of the service under this load."
        )
    return (
        "The service time itself is high, so the handler is slow: look at its queries (a missing "
        "index, an N+1 query pattern, a query that grows with the customers' data) with the database's "
        "slow-query log or EXPLAIN, and at anything it does per row."
    )


def errors_finding(
    tier: TierResult,
    steady: PhaseMeasurement,
    e: EndpointMeasurement | None,
    policy: VerdictPolicy,
    repro: str,
    *,
    own_answers_only: bool = False,
) -> Finding:
    n = tier.customers
    if e is None:
        requests, errors = steady.requests, steady.errors
        reasons: dict[str, int] = defaultdict(int)
        for m in steady.endpoints:
            for k, v in m.errors_by_reason.items():
                reasons[k] += v
        by_reason = dict(reasons)
        who = "Requests fail"
    else:
        requests = e.requests
        errors = own_answer_errors(e) if own_answers_only else e.errors
        by_reason = dict(e.errors_by_reason)
        who = f"{policy.label(e.name)} fails"
    rate = errors / requests if requests else 0.0
    top = max(by_reason.items(), key=lambda kv: kv[1])[0] if by_reason else "unknown"
    meaning = {
        "http-5": "server errors: see whether they pass when replayed alone (a saturation-errors "
        "finding means capacity: a connection pool, worker timeouts, 'database is locked'; a "
        "property finding means a bug)",
        "timeout": "timeouts: responses slower than the request timeout, usually a queue or a lock "
        "behind the handler",
        "connection": "refused or reset connections: the server's accept backlog or worker limit is "
        "full, or it restarted",
    }
    explain = next((v for k, v in meaning.items() if top.startswith(k)), f"errors of kind {top!r}")
    sample = next((s for s in steady.error_samples if e is None or s.endpoint == e.name), None)
    return make_finding(
        "slo-errors",
        [n, e.name if e is not None else "all"],
        severity="medium" if n > policy.goal_customers else "high",
        title=(
            f"{who} too often at {n} customers: {pct(rate)} "
            f"{'got server errors or malformed answers' if own_answers_only else 'failed'}, over the {pct(policy.max_error_rate)} budget"
        ),
        detail=(
            f"In the steady window at {steady.offered_rps:.1f} req/s, {errors} of {requests} requests "
            f"{'were answered with a server error or a malformed answer' if own_answers_only else 'failed'} (by reason: "
            f"{', '.join(f'{k} {v}' for k, v in sorted(by_reason.items())) or 'none recorded'}). "
            f"Most are {explain}."
            + (
                f" Example: {sample.method} {sample.url} -> {sample.status or sample.reason}: "
                f"{sample.body_excerpt[:200]}"
                if sample is not None
                else ""
            )
            + (
                " The generator was saturated or the machine busy during this tier, so only the "
                "target's own failed answers were counted, not timeouts or refused connections."
                if own_answers_only
                else ""
            )
        ),
        evidence={
            "customers": n,
            "requests": requests,
            "errors": errors,
            "error_rate": rate,
            "max_error_rate": policy.max_error_rate,
            "errors_by_reason": by_reason,
        },
        reproduce=repro,
        tier=n,
        endpoint=e.name if e is not None else None,
    )
