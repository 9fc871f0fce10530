"""Causes, not symptoms: when several endpoints miss their SLOs in one phase, what they share.

A service past its capacity makes every endpoint slow at once; a report that lists them one by
one tells the team to look everywhere. The tier's findings are read together with the tier's
probe (each endpoint's service time with no other load) and its stress steps, and the shared
cause is named once, with its evidence, the symptoms folded under it (``Finding.caused_by``):

* **one endpoint takes most of the service's busy time**: Little's law, busy time = request
  rate x service time, with the service time the probe measured unloaded, so queueing does not
  inflate it. When one endpoint's share is at least ``HOG_SHARE`` the others waited behind it;
  if its own unloaded time grew with the data, the cause is data volume (an index, a page size),
  otherwise its cost (``throughput``);
* **the service serialises**: throughput stopped following the offered load while it served
  about one request at a time (its peak throughput x the requests' unloaded service time, the
  requests in service at once, stayed under ``SERIAL_PARALLELISM``); with the target's CPU
  under ``WAITING_CPU_PCT`` it was waiting (a blocking call in an event loop, a lock, a single
  worker), at a full core its one process is bound by one CPU;
* **one kind of error**: several endpoints failing with the same reason (503 from a full pool or
  a downstream's slots, timeouts, refused connections) share what returns it.

Pure: reads records and findings, writes findings.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from harness.records import EndpointTrend, Finding, PhaseMeasurement, TierResult, severity_rank
from harness.verdict.outcome import TierOutcome, make_finding
from harness.verdict.policy import VerdictPolicy
from harness.verdict.rules.capacity import WAITING_CPU_PCT
from harness.verdict.rules.slo import probe_service_ms
from harness.verdict.wording import ms, names, pct

__all__ = ["HOG_SHARE", "SERIAL_PARALLELISM", "explain"]

#: One endpoint's share of the service's busy time from which the others are said to wait behind it.
HOG_SHARE = 0.5
#: ... and the least it must keep the service busy (in requests in service at once), so that a
#: small, quiet service is not said to be hogged by its only endpoint.
MIN_HOG_BUSY = 0.3
#: Requests in service at once (peak throughput x unloaded service time) under which a service
#: that stopped scaling is said to serve one request at a time.
SERIAL_PARALLELISM = 1.5
#: A phase completed under this share of its arrivals: throughput stopped following the load.
STOPPED_SCALING = 0.9
#: An unloaded service time this many times the smallest tier's is growth with the data.
GREW = 2.0

_SYMPTOMS = ("slo-latency", "slo-errors")


@dataclass(frozen=True)
class _Busy:
    endpoint: str
    rate: float  # requests per second in the window
    unloaded_ms: float
    busy: float  # requests in service at once it accounts for (rate x unloaded time)


def explain(
    tier: TierResult, window: TierOutcome, policy: VerdictPolicy, repro: str, trends: Sequence[EndpointTrend] = ()
) -> TierOutcome:
    """The window's outcome with its symptoms folded under the causes found (unchanged if none)."""
    steady = tier.steady
    symptoms = [f for f in window.findings if f.category in _SYMPTOMS and f.tier == tier.customers]
    if steady is None or not symptoms:
        return window
    out = window
    errors = [f for f in symptoms if f.category == "slo-errors" and f.endpoint]
    if len(errors) >= 2:
        out = _fold(out, _error_cause(tier, steady, errors, policy, repro), errors)
    slow = [f for f in symptoms if f.category == "slo-latency"]
    if len(slow) >= 2 or (slow and _waited(tier, slow[0])):
        serial = _serial_cause(tier, steady, slow, policy, repro)
        # A service that waited with about one request in service is not short of CPU for its
        # busiest endpoint: the wait is the cause, the busiest endpoint where it happens.
        waiting = serial is not None and serial[0].evidence.get("waiting") is True
        cause = (serial if waiting else None) or _busy_cause(tier, steady, slow, policy, repro, trends) or serial
        if cause is not None:
            out = _fold(out, cause, slow)
    return out


def _fold(out: TierOutcome, cause: tuple[Finding, str] | None, symptoms: Sequence[Finding]) -> TierOutcome:
    """The cause first, its symptoms kept as low findings that name it, one failure sentence."""
    if cause is None:
        return out
    finding, sentence = cause
    folded = {id(f) for f in symptoms}
    worst = min((f.severity for f in symptoms), key=severity_rank)
    finding = dataclasses.replace(finding, severity=worst)
    kept = [dataclasses.replace(f, severity="low", caused_by=finding.id) if id(f) in folded else f
            for f in out.findings]  # fmt: skip
    endpoints = {f.endpoint for f in symptoms}
    failures = [s for s in out.failures if not any(s.startswith(f"{e} ") for e in endpoints if e)]
    return dataclasses.replace(out, findings=(finding, *kept), failures=(sentence, *failures))


def _waited(tier: TierResult, symptom: Finding) -> bool:
    unloaded = probe_service_ms(tier, symptom.endpoint or "")
    service = symptom.evidence.get("service_p95_ms")
    return unloaded is not None and isinstance(service, float | int) and service > 2 * unloaded + 1.0


# --- one endpoint takes the service's time --------------------------------------------------------


def _busy_time(tier: TierResult, steady: PhaseMeasurement) -> list[_Busy]:
    seconds = steady.active_s or max(steady.ended_at - steady.started_at, 1e-9)
    out = []
    for e in steady.endpoints:
        unloaded = probe_service_ms(tier, e.name)
        if unloaded is None or e.requests <= 0:
            continue
        rate = e.requests / seconds
        out.append(_Busy(e.name, rate, unloaded, rate * unloaded / 1000.0))
    return sorted(out, key=lambda b: -b.busy)


def _busy_cause(
    tier: TierResult, steady: PhaseMeasurement, slow: Sequence[Finding], policy: VerdictPolicy, repro: str,
    trends: Sequence[EndpointTrend],
) -> tuple[Finding, str] | None:
    busy = _busy_time(tier, steady)
    total = sum(b.busy for b in busy)
    if not busy or total <= 0:
        return None
    top = busy[0]
    share = top.busy / total
    if share < HOG_SHARE or top.busy < MIN_HOG_BUSY:
        return None
    n = tier.customers
    others = [f.endpoint for f in slow if f.endpoint and f.endpoint != top.endpoint]
    grown = _growth(top.endpoint, trends)
    what = (f"its own time grew with the data ({grown})" if grown
            else "its own time did not grow with the data: it is costly at any size")  # fmt: skip
    sentence = (
        f"{len(slow)} endpoint{'s' * (len(slow) != 1)} missed their SLOs because {top.endpoint} took "
        f"{share:.0%} of the service's busy time ({ms(top.unloaded_ms)} ms unloaded at {top.rate:.1f} requests/s)"
    )
    finding = make_finding(
        "data-volume-scaling" if grown else "throughput", [n, top.endpoint, "busy-time"],
        severity="high",
        title=(
            f"{policy.label(top.endpoint)} takes {share:.0%} of the service's time at {n} customers, and "
            f"{_count(others, 'other endpoint')} waited behind it"
        ),
        detail=(
            f"With no other load (the tier's probe) {top.endpoint} takes {ms(top.unloaded_ms)} ms; at the "
            f"{top.rate:.1f} requests/s of the steady window that keeps {top.busy:.2f} requests in service at "
            f"once, {share:.0%} of all the service's busy time (request rate x unloaded service time, Little's "
            f"law). The other endpoints' misses ({names(others) or 'none'}) are queueing behind it, not their "
            f"own work: fix {top.endpoint} first, then rerun. Here {what}. "
            + ("An index on what it filters by, or a page size on what it returns, is the usual fix."
               if grown else "Cache its result, make it cheaper, or move it off the request path.")
        ),
        evidence={
            "customers": n, "endpoint": top.endpoint, "busy_share": share, "unloaded_service_ms": top.unloaded_ms,
            "rate_rps": top.rate, "busy_requests": top.busy, "grew_with_data": grown or None,
            "symptoms": [f.id for f in slow],
            "busy_time": {b.endpoint: round(b.busy / total, 3) for b in busy[:8]},
        },
        reproduce=repro, tier=n, endpoint=top.endpoint,
    )  # fmt: skip
    return finding, sentence


def _growth(endpoint: str, trends: Sequence[EndpointTrend]) -> str:
    """How the endpoint's unloaded time grew with the data ("23 -> 96 ms from 50 to 5000 customers"), or ""."""
    trend = next((t for t in trends if t.endpoint == endpoint and t.measure == "probe-p50"), None)
    if trend is None or len(trend.points) < 2:
        return ""
    (n0, v0), (n1, v1) = min(trend.points), max(trend.points)
    if v1 < GREW * v0:
        return ""
    return f"{ms(v0)} -> {ms(v1)} ms from {n0} to {n1} customers"


# --- the service serialises ------------------------------------------------------------------------


def _served(tier: TierResult, phase: PhaseMeasurement) -> list[_Busy]:
    """Each endpoint's requests the service answered in a phase, per second, and the requests in
    service at once they account for (rate x unloaded time). A request the client gave up on (a
    timeout, a refused connection) was not answered in the phase, so it counts for neither."""
    seconds = phase.active_s or max(phase.ended_at - phase.started_at, 1e-9)
    out = []
    for e in phase.endpoints:
        unloaded = probe_service_ms(tier, e.name)
        served = e.requests - sum(e.errors_by_reason.get(r, 0) for r in _NOT_SERVED)
        if unloaded is None or served <= 0:
            continue
        rate = served / seconds
        out.append(_Busy(e.name, rate, unloaded, rate * unloaded / 1000.0))
    return sorted(out, key=lambda b: -b.busy)


_NOT_SERVED = ("timeout", "connection")


def _serial_cause(
    tier: TierResult, steady: PhaseMeasurement, slow: Sequence[Finding], policy: VerdictPolicy, repro: str
) -> tuple[Finding, str] | None:
    # A generator short of its own resources may have capped the throughput itself; one whose
    # users all waited on the target (arrivals dropped) measured the target's limit.
    phases = [p for p in (steady, *tier.stress) if not p.validity.generator_limited]
    stopped = [p for p in phases if p.achieved_ips is not None and p.achieved_ips < STOPPED_SCALING * p.offered_rps]
    served = {id(p): _served(tier, p) for p in phases}
    if not stopped or not served.get(id(steady)):
        return None
    peak = max(phases, key=lambda p: sum(b.rate for b in served[id(p)]))
    busy = served[id(peak)] or served[id(steady)]
    peak_rps = sum(b.rate for b in busy)
    # Requests in service at once: the most any phase kept, by Little's law on what it answered.
    parallel = max(sum(b.busy for b in served[id(p)]) for p in phases)
    if parallel <= 0 or parallel >= SERIAL_PARALLELISM or peak_rps <= 0:
        return None
    mean_unloaded_s = sum(b.busy for b in busy) / peak_rps
    cpu = peak.target_cpu_pct(tier.resources)
    n = tier.customers
    if cpu is not None and cpu < WAITING_CPU_PCT:
        why = (f"while its processes used only {cpu:.0f}% of a CPU (100% = one core): requests waited rather "
               "than computed. A blocking call in an asynchronous handler (a synchronous database driver or "
               "HTTP client on the event loop), a lock held across slow work, or a single worker does this")
    elif cpu is not None:
        why = (f"with its processes at {cpu:.0f}% of a CPU: one process bound by one core (an interpreter "
               "lock, a single worker); more worker processes, or less work per request, raise the cap")
    else:
        why = ("(the target's CPU was not sampled: with --target the harness cannot see it): a blocking call "
               "in an asynchronous handler, a lock, a single worker, or one busy core")  # fmt: skip
    where = _where(busy)
    sentence = (
        f"{len(slow)} endpoints missed their SLOs because the service serves about one request at a time: "
        f"throughput stopped at {peak_rps:.1f} requests/s"
    )
    finding = make_finding(
        "contention", [n, "serialised"], severity="high",
        title=(
            f"The service handles about one request at a time: at {n} customers its throughput stopped at "
            f"{peak_rps:.1f} requests/s and {_count([f.endpoint for f in slow], 'endpoint')} queued"
        ),
        detail=(
            f"Its requests take {ms(mean_unloaded_s * 1000)} ms on average with no other load (the tier's probe), "
            f"and it answered at most {peak_rps:.1f} requests/s ({peak.label}): {parallel:.2f} requests in "
            f"service at once, where a service that scales would have many. Throughput stopped following the "
            f"offered load ({_stops(stopped)}) {why}. {where}Every endpoint waits in that one queue, so each "
            f"looks slow: {names([f.endpoint or '' for f in slow])}."
        ),
        evidence={"customers": n, "peak_rps": peak_rps, "peak_phase": peak.label,
                  "mean_unloaded_service_ms": mean_unloaded_s * 1000, "requests_in_service": parallel,
                  "target_cpu_pct": cpu, "waiting": cpu is not None and cpu < WAITING_CPU_PCT,
                  "busy_time": {b.endpoint: round(b.busy / (sum(x.busy for x in busy) or 1), 3) for b in busy[:8]},
                  "symptoms": [f.id for f in slow]},
        reproduce=repro, tier=n,
    )  # fmt: skip
    return finding, sentence


def _where(busy: Sequence[_Busy]) -> str:
    """The endpoints that hold most of the one queue's time: where to look for what it waits on."""
    total = sum(b.busy for b in busy)
    if total <= 0:
        return ""
    top, share = [], 0.0
    for b in busy:
        top.append(b.endpoint)
        share += b.busy / total
        if share >= 0.8 or len(top) == 3:
            break
    if len(top) == len(busy) and len(busy) > 1:
        return ""
    return f"{names(top)} {'take' if len(top) > 1 else 'takes'} {share:.0%} of that time: look there first. "


def _stops(phases: Sequence[PhaseMeasurement]) -> str:
    return "; ".join(f"{p.label}: {p.achieved_ips or 0:.1f} of {p.offered_rps:.1f} iterations/s" for p in phases[:3])


# --- one kind of error ------------------------------------------------------------------------------


def _error_cause(
    tier: TierResult, steady: PhaseMeasurement, errors: Sequence[Finding], policy: VerdictPolicy, repro: str
) -> tuple[Finding, str] | None:
    reasons: Counter[str] = Counter()
    for e in steady.endpoints:
        if any(f.endpoint == e.name for f in errors):
            reasons.update(e.errors_by_reason)
    if not reasons:
        return None
    reason, count = reasons.most_common(1)[0]
    total = sum(reasons.values())
    if count < 0.8 * total:
        return None
    n = tier.customers
    meaning, category, fix = _ERRORS.get(_kind(reason), _ERRORS["other"])
    endpoints = [f.endpoint or "" for f in errors]
    passed_alone = [r for r in tier.replayed_errors if not r.still_failing and r.sample.reason == reason]
    sentence = f"{len(errors)} endpoints failed with {reason} ({pct(count / total)} of their errors): {meaning}"
    finding = make_finding(
        category, [n, "errors", reason], severity="high",
        title=f"{len(errors)} endpoints fail with the same error at {n} customers: {reason}, {meaning}",
        detail=(
            f"{count} of the {total} failed requests of {names(endpoints)} in the steady window were {reason}. "
            f"One kind of error across endpoints is one shared cause: {meaning}. "
            + (f"{len(passed_alone)} of them passed when replayed alone, so it is capacity, not a bug. "
               if passed_alone else "")
            + fix
        ),
        evidence={"customers": n, "reason": reason, "errors": count, "all_errors": total,
                  "endpoints": endpoints, "passed_when_replayed_alone": len(passed_alone),
                  "symptoms": [f.id for f in errors]},
        reproduce=repro, tier=n,
    )  # fmt: skip
    return finding, sentence


def _kind(reason: str) -> str:
    if reason in ("http-503", "http-429", "http-502", "http-504"):
        return "overloaded"
    if reason.startswith("http-5"):
        return "server-error"
    if reason in ("timeout", "connection"):
        return reason
    return "other"


_ERRORS: dict[str, tuple[str, str, str]] = {
    "overloaded": ("the service (or something behind it) refuses work when full", "saturation-errors",
                   "Find the bounded resource that answers it: a connection pool, a downstream's concurrency "
                   "limit, a rate limiter. Size it for the load, queue in front of it, or fail fast and retry."),
    "server-error": ("a shared dependency failing under load", "saturation-errors",
                     "Look at the target's log for the exception these requests share (a pool timeout, a "
                     "'database is locked', a worker crash)."),
    "timeout": ("requests waited past the timeout in one queue", "throughput",
                "A queue every endpoint waits in (workers, a pool, a lock) is full; see the tier's other "
                "findings for what fills it."),
    "connection": ("the server refused or reset connections", "throughput",
                   "Its accept backlog or worker limit is full, or it restarted; check its log and limits."),
    "other": ("one failure shared across endpoints", "slo-errors",
              "Read one failed request's response (the error samples of this tier) to see what they share."),
}


def _count(items: Sequence[object], noun: str) -> str:
    k = len([i for i in items if i])
    return f"{k} {noun}{'s' * (k != 1)}"

