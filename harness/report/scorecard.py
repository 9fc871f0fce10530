"""AuditRecord -> the scorecard: the JSON document CI and tools read (DESIGN.md, "The scorecard JSON").

The scorecard is the stable contract. ``SCHEMA_VERSION`` names it and ``scorecard.schema.json``
beside this module describes it (JSON Schema draft 2020-12). Fields may be added without a version
bump; renaming or removing one needs a new major version.

Every other report (Markdown, HTML, JUnit) is a view of the same dict, so a number reads the same
everywhere: rounding, ordering and the verdict's explanation are decided here, once.

Conventions:
- Times are ISO 8601 UTC with milliseconds (``2026-11-23T10:15:00.000Z``).
- Latencies are milliseconds rounded to 0.01. ``p50_ms`` ... ``max_ms`` are measured from the
  *intended* start of each request (coordinated-omission corrected); ``service_*`` is the plain
  send-to-last-byte time, shown alongside so the two can be compared.
- Rates (req/s) are rounded to 0.01, error rates to 1e-6, capacity in customers to a whole number,
  fitted model parameters to 6 significant digits.
- A missing measurement is ``null``, never 0: a consumer must not read "not measured" as "fast".

Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

from harness.capacity import completed_iterations_per_s, requests_per_iteration
from harness.records import (
    AuditRecord,
    BaselineComparison,
    CapacityEstimate,
    CapacityParams,
    ChangePoint,
    EndpointMeasurement,
    EndpointTrend,
    Environment,
    ErrorSample,
    Finding,
    GateResult,
    IntegrityResult,
    LeakReplay,
    MetricChange,
    MetricSeries,
    NoiseFloor,
    OpenApiChecks,
    OverlapProbeResult,
    PhaseMeasurement,
    Popularity,
    PropertiesResult,
    ResourceSample,
    SloCheck,
    TierResult,
    UslParameters,
    severity_rank,
)
from harness.timestamps import iso_utc

__all__ = [
    "MAX_ERROR_SAMPLES",
    "MAX_VIOLATIONS",
    "SCHEMA_VERSION",
    "build_scorecard",
    "flat_capacity_params",
    "fmt_count",
    "fmt_customers",
    "fmt_duration",
    "fmt_ms",
    "fmt_pct",
    "fmt_rps",
    "fmt_time",
    "ordered_findings",
    "usl_from_params",
]

# 1.1 added the finding category "provisioning"; 1.2 adds (all optional, nothing renamed) the
# baseline comparison, change points, the environment's command and database, the resources'
# source and samples, per tier the percentiles judged and the achieved concurrency, and the
# integrity check's replay of leaks suspected under load and its public declarations
# (integrity.leak_replay, integrity.public), and the properties' Schemathesis checks
# (stages.properties.openapi, null without suite.openapi); and the customer popularity the
# load drew from ("popularity") and per tier the overlap probe ("overlap_probe") and the credentials the
# pack's refresh_credentials renewed ("credential_refreshes").
SCHEMA_VERSION = "1.2"

# Reports stay readable (and small) when a broken target fails thousands of times: the scorecard
# keeps the first few verbatim and always gives the full count alongside.
MAX_VIOLATIONS = 100
MAX_ERROR_SAMPLES = 20
MAX_WHY = 5
# The target's resources are sampled about once a second; a long tier keeps every n-th sample so a
# scorecard stays small while a leak or a saturated core still shows.
MAX_RESOURCE_SAMPLES = 600



# --- small formatting rules -----------------------------------------------------------------


def _num(x: float | None, digits: int = 2) -> float | None:
    """Round to ``digits`` decimals; NaN and infinities (not JSON) become None."""
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    r = round(x, digits)
    return 0.0 if r == 0 else r  # no "-0.0" in reports


def _ms(x: float | None) -> float | None:
    return _num(x, 2)


def _rps(x: float | None) -> float | None:
    return _num(x, 2)


def _rate(x: float | None) -> float | None:
    return _num(x, 6)


def _whole(x: float | None) -> int | None:
    v = _num(x, 0)
    return None if v is None else int(v)


def _sig(x: float, digits: int = 6) -> float | None:
    """Round to significant digits: USL's kappa is ~1e-4, so fixed decimals would erase it."""
    x = float(x)
    if not math.isfinite(x):
        return None
    if x == 0:
        return 0.0
    return float(f"{x:.{digits}g}")


def _jsonable(value: object, depth: int = 0) -> Any:
    """Finding evidence and options are free-form: make them JSON without losing meaning."""
    if depth > 8:
        return str(value)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return _sig(value, 6)
    if isinstance(value, CapacityParams):
        return _jsonable(flat_capacity_params(value), depth)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_jsonable(v, depth + 1) for v in items]
    return str(value)


def ordered_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first; the record's own order is kept within a severity (stable sort)."""
    return sorted(findings, key=lambda f: severity_rank(f.severity))


# --- display: how the Markdown and HTML reports print the scorecard's numbers --------------

DASH = "\u2014"  # shown for "not measured"


def fmt_ms(x: float | None) -> str:
    """``0.42 ms``, ``12.3 ms``, ``1,234 ms``; a dash when not measured."""
    if x is None:
        return DASH
    if x < 10:
        return f"{x:.2f} ms"
    if x < 1000:
        return f"{x:.1f} ms"
    return f"{x:,.0f} ms"


def fmt_rps(x: float | None) -> str:
    return DASH if x is None else f"{x:,.1f}"


def fmt_pct(x: float | None) -> str:
    """A 0..1 fraction as a percentage with enough digits to tell 0 from 0.004 %."""
    if x is None:
        return DASH
    pct = x * 100
    if pct == 0:
        return "0%"
    if pct < 0.01:
        return "<0.01%"
    return f"{pct:.2f}%"


def fmt_count(x: float | None) -> str:
    """Requests, errors ...: ``12,345``."""
    return DASH if x is None else f"{x:,.0f}"


def fmt_customers(x: float | None) -> str:
    """Customer counts read as the tiers are written (``5000``), in the verdict and everywhere."""
    return DASH if x is None else f"{x:.0f}"


def fmt_duration(seconds: float | None) -> str:
    """``45 s``, ``5 min 36 s``, ``1 h 20 min``; a dash when not measured."""
    if seconds is None:
        return DASH
    s = int(round(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {(s % 3600) // 60} min"


def fmt_time(iso: str | None) -> str:
    """``2026-11-23T10:15:00.000Z`` -> ``2026-11-23 10:15:00 UTC``."""
    if not iso:
        return DASH
    return iso[:10] + " " + iso[11:19] + " UTC"


# --- sections -------------------------------------------------------------------------------


def _regression(gate: GateResult | None) -> dict[str, Any]:
    if gate is None:
        return {"status": "skipped", "passed": 0, "failed": 0, "errors": 0, "skipped": 0,
                "duration_s": None, "junit": None, "failures": [], "benchmarks": []}
    return {
        "status": gate.status,
        "passed": gate.passed,
        "failed": gate.failed,
        "errors": gate.errors,
        "skipped": gate.skipped,
        "duration_s": _num(gate.duration_s, 2),
        "junit": gate.junit or None,
        "failures": [
            {"name": c.name, "outcome": c.outcome, "message": c.message}
            for c in gate.cases
            if c.outcome in ("failed", "error")
        ],
        "benchmarks": [
            {"name": b.name, "mean_ms": _ms(b.mean_ms), "median_ms": _ms(b.median_ms),
             "min_ms": _ms(b.min_ms), "rounds": b.rounds}
            for b in gate.benchmarks
        ],
    }


def _properties(props: PropertiesResult | None) -> dict[str, Any]:
    if props is None:
        return {"status": "skipped", "passed": 0, "failed": 0, "duration_s": None,
                "examples_per_property": None, "junit": None, "falsified": [], "openapi": None}
    return {
        "status": props.status,
        "passed": props.passed,
        "failed": props.failed,
        "duration_s": _num(props.duration_s, 2),
        "examples_per_property": props.examples_per_property,
        "junit": props.junit or None,
        "falsified": [
            {"name": f.name, "example": f.example, "error": f.error, "reproduce": f.reproduce}
            for f in props.falsified
        ],
        "openapi": _openapi(props.openapi),
    }


def _openapi(checks: OpenApiChecks | None) -> dict[str, Any] | None:
    if checks is None:
        return None
    return {
        "status": checks.status,
        "source": checks.source,
        "operations": checks.operations,
        "passed": checks.passed,
        "examples_per_operation": checks.examples_per_operation,
        "seed": checks.seed,
        "checks": list(checks.checks),
        "duration_s": _num(checks.duration_s, 2),
        "junit": checks.junit or None,
        "authenticated": checks.authenticated,
        "max_rps": checks.max_rps,
        "replay": checks.replay,
        "note": checks.note,
        "failures": [
            {"operation": f.operation, "checks": list(f.checks), "title": f.title, "status": f.status,
             "curl": f.curl, "message": f.message}
            for f in checks.failures
        ],
    }


def _endpoint(e: EndpointMeasurement) -> dict[str, Any]:
    return {
        "name": e.name,
        "requests": e.requests,
        "errors": e.errors,
        "error_rate": _rate(e.error_rate),
        "errors_by_reason": dict(sorted(e.errors_by_reason.items())),
        "p50_ms": _ms(e.latency.p50_ms) if e.latency.count else None,
        "p95_ms": _ms(e.latency.p95_ms) if e.latency.count else None,
        "p99_ms": _ms(e.latency.p99_ms) if e.latency.count else None,
        "p999_ms": _ms(e.latency.p999_ms) if e.latency.count else None,
        "max_ms": _ms(e.latency.max_ms) if e.latency.count else None,
        "service_p50_ms": _ms(e.service.p50_ms) if e.service.count else None,
        "service_p95_ms": _ms(e.service.p95_ms) if e.service.count else None,
        "service_p99_ms": _ms(e.service.p99_ms) if e.service.count else None,
    }


def _stress_step(p: PhaseMeasurement, per_iteration: float) -> dict[str, Any]:
    requests = p.requests
    return {
        "label": p.label,
        "offered_rps": _rps(p.offered_rps),
        "achieved_rps": _rps(p.achieved_rps),
        "completed_ips": _rps(completed_iterations_per_s(p, per_iteration)),
        "concurrency": _num(p.concurrency, 3),
        "start": iso_utc(p.started_at),
        "end": iso_utc(p.ended_at),
        "requests": requests,
        "errors": p.errors,
        "p50_ms": _ms(p.latency.p50_ms) if p.latency.count else None,
        "p95_ms": _ms(p.latency.p95_ms) if p.latency.count else None,
        "p99_ms": _ms(p.latency.p99_ms) if p.latency.count else None,
        "error_rate": _rate(p.error_rate),
        "dropped_iterations": p.dropped_iterations,
        "saturated": p.validity.saturated,
        "crowded": p.validity.crowded,
        "aborted": p.aborted,
    }


def _generator(phase: PhaseMeasurement | None) -> dict[str, Any] | None:
    if phase is None:
        return None
    g, v = phase.generator, phase.validity
    return {
        "cpu_max_pct": _num(g.cpu_max_pct, 1),
        "cpu_mean_pct": _num(g.cpu_mean_pct, 1),
        "loop_lag_p99_ms": _ms(g.loop_lag_p99_ms),
        "loop_lag_max_ms": _ms(g.loop_lag_max_ms),
        "rss_max_mb": _num(g.rss_max_mb, 1),
        "saturated": v.saturated,
        "reasons": list(v.reasons),
        "workers": g.workers,
        "workers_lost": g.workers_lost,
        "cpu_wait_pct": _num(g.cpu_wait_pct, 2),
        "steal_pct": _num(g.steal_pct, 2),
        "machine_cpu_pct": _num(g.machine_cpu_pct, 1),
        "other_cpu_pct": _num(g.other_cpu_pct, 1),
        "crowded": v.crowded,
        "crowded_by": list(v.crowded_by),
        "held_by_max_rps": g.held_by_max_rps,
        "validity": v.kind,
    }


def _integrity(i: IntegrityResult | None) -> dict[str, Any]:
    if i is None:
        return {"status": "skipped", "checked": 0, "violation_count": 0, "violations": [],
                "checks": {}, "note": "", "leak_replay": None, "public": []}
    return {
        "status": i.status,
        "checked": i.checked,
        "violation_count": len(i.violations),
        "violations": [
            {
                "kind": v.kind,
                "check": v.check or v.kind,
                "customer": v.customer,
                "identifiers": list(v.identifiers),
                "detail": v.detail,
                "first_seen": iso_utc(v.first_seen),
            }
            for v in i.violations[:MAX_VIOLATIONS]
        ],
        "checks": dict(sorted(i.checks.items())),
        "note": i.note,
        "leak_replay": _leak_replay(i.leak_replay),
        "public": list(i.public),
    }


def _leak_replay(r: LeakReplay | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "suspected": r.suspected,
        "confirmed": r.confirmed,
        "not_confirmed": r.not_confirmed,
        "unverified": r.unverified,
        "requests": r.requests,
        "findings": list(r.findings),
    }


def _overlap(o: OverlapProbeResult | None) -> dict[str, Any] | None:
    if o is None:
        return None
    return {
        "rounds": o.rounds, "concurrency": o.concurrency, "customers": list(o.customers),
        "writes": o.writes, "acknowledged": o.acknowledged, "refused": o.refused, "unknown": o.unknown,
        "duration_s": _num(o.duration_s, 2), "note": o.note,
    }  # fmt: skip


def _error_sample(s: ErrorSample) -> dict[str, Any]:
    return {
        "endpoint": s.endpoint,
        "method": s.method,
        "url": s.url,
        "status": s.status,
        "reason": s.reason,
        "body_excerpt": s.body_excerpt,
        "at": iso_utc(s.at),
    }


def _resources(samples: tuple[ResourceSample, ...]) -> list[dict[str, Any]]:
    step = max(1, math.ceil(len(samples) / MAX_RESOURCE_SAMPLES))
    kept = list(samples[::step])
    if samples and kept[-1] is not samples[-1]:
        kept.append(samples[-1])  # the end of the tier: where a leak has grown the most
    return [
        {"at": iso_utc(s.at), "rss_mb": _num(s.rss_mb, 1), "cpu_pct": _num(s.cpu_pct, 1),
         "open_fds": s.open_fds, "threads": s.threads, "requests_so_far": s.requests_so_far}
        for s in kept
    ]


def _slo_checks(checks: tuple[SloCheck, ...] | None) -> list[dict[str, Any]] | None:
    if checks is None:
        return None
    return [{"endpoint": c.endpoint, "requests": c.requests, "percentiles": list(c.percentiles)}
            for c in checks]


def _tier(t: TierResult, per_iteration: float) -> dict[str, Any]:
    steady = t.steady
    lat = steady.latency if steady is not None else None
    measured = lat is not None and lat.count > 0
    requests = steady.requests if steady is not None else 0
    errors = steady.errors if steady is not None else 0
    return {
        "customers": t.customers,
        "status": t.status,
        "reason": t.reason,
        "offered_rps": _rps(t.offered_rps),
        "max_rps_arrivals": _rps(t.max_rps_arrivals) if t.max_rps_arrivals is not None else None,
        "achieved_rps": _rps(steady.achieved_rps) if steady is not None else None,
        "completed_ips": (
            _rps(completed_iterations_per_s(steady, per_iteration)) if steady is not None else None
        ),
        "concurrency": _num(steady.concurrency, 3) if steady is not None else None,
        "dropped_iterations": steady.dropped_iterations if steady is not None else 0,
        "max_users": steady.max_users if steady is not None else 0,
        "requests": requests,
        "errors": errors,
        "error_rate": _rate(errors / requests) if requests else None,
        "p50_ms": _ms(lat.p50_ms) if measured and lat else None,
        "p95_ms": _ms(lat.p95_ms) if measured and lat else None,
        "p99_ms": _ms(lat.p99_ms) if measured and lat else None,
        "max_ms": _ms(lat.max_ms) if measured and lat else None,
        "service_p99_ms": (
            _ms(steady.service.p99_ms) if steady is not None and steady.service.count else None
        ),
        "steady_window": (
            {"start": iso_utc(steady.started_at), "end": iso_utc(steady.ended_at)}
            if steady is not None
            else None
        ),
        "aborted": steady.aborted if steady is not None else None,
        "endpoints": [_endpoint(e) for e in steady.endpoints] if steady is not None else [],
        "stress": [_stress_step(p, per_iteration) for p in t.stress],
        "probe": _probe(t.probe),
        "generator": _generator(steady),
        "integrity": _integrity(t.integrity),
        "overlap_probe": _overlap(t.overlap),
        "provisioning": (
            {
                "customers": t.provisioning.customers,
                "created": t.provisioning.created,
                "failed": t.provisioning.failed,
                "duration_s": _num(t.provisioning.duration_s, 2),
                "rate_per_s": _num(t.provisioning.rate_per_s, 2),
            }
            if t.provisioning is not None
            else None
        ),
        "error_samples": (
            [_error_sample(s) for s in steady.error_samples[:MAX_ERROR_SAMPLES]]
            if steady is not None
            else []
        ),
        "replayed_errors": [
            {
                "endpoint": r.sample.endpoint,
                "method": r.sample.method,
                "url": r.sample.url,
                "status": r.sample.status,
                "replay_status": r.replay_status,
                "still_failing": r.still_failing,
            }
            for r in t.replayed_errors
        ],
        "slo_checks": _slo_checks(t.slo_checks),
        "credential_refreshes": _refreshes(t),
        "resources": _resources(t.resources),
    }


def _refreshes(t: TierResult) -> dict[str, int]:
    refreshed, failed = t.credentials_refreshed
    return {"refreshed": refreshed, "failed": failed}


def _probe(p: PhaseMeasurement | None) -> dict[str, Any] | None:
    """Each endpoint's unloaded service time and response size at the tier's data volume."""
    if p is None:
        return None
    return {
        "offered_rps": _rps(p.offered_rps),
        "validity": p.validity.kind,
        "endpoints": [
            {"name": e.name, "requests": e.requests, "errors": e.errors, "service_p50_ms": _ms(e.service.p50_ms),
             "service_p95_ms": _ms(e.service.p95_ms), "bytes_mean": _num(e.bytes_mean, 1)}
            for e in p.endpoints
        ],
    }


def _noise_floor(n: NoiseFloor | None) -> dict[str, Any] | None:
    if n is None:
        return None
    return {
        "offered_rps": _rps(n.offered_rps),
        "server_service_ms": _ms(n.server_service_ms),
        "p50_ms": _ms(n.latency.p50_ms),
        "p99_ms": _ms(n.latency.p99_ms),
        "max_ms": _ms(n.latency.max_ms),
        "p99_overhead_ms": _ms(n.p99_overhead_ms),
    }


def _capacity(c: CapacityEstimate | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "predicted_customers": _whole(c.predicted_customers),
        "low": _whole(c.low),
        "high": _whole(c.high),
        "method": c.method,
        "params": {k: _sig(v) for k, v in sorted(flat_capacity_params(c.params).items())},
        "headroom": _num(c.headroom, 2),
        "goal_customers": c.goal_customers,
        "confidence": c.confidence,
        "note": c.note,
        "points": [
            {"offered_rps": _rps(o), "achieved_rps": _rps(a), "concurrency": _num(n, 3)}
            for (o, a, n) in c.points
        ],
    }


# The scorecard's names for the fields whose Python names differ (``lambda`` is a keyword).
_PARAM_KEYS = {
    "lam": "lambda",
    "lam_se": "lambda_se",
    "cov_lam_sigma": "cov_lambda_sigma",
    "cov_lam_kappa": "cov_lambda_kappa",
}


def flat_capacity_params(params: CapacityParams) -> dict[str, float]:
    """``CapacityParams`` as the scorecard's flat ``capacity.params``: one number per field that
    has a value, the USL fit's fields inlined, in the order the estimate finds them."""
    flat: dict[str, float] = {}
    for name, value in _fields(params):
        if isinstance(value, UslParameters):
            flat.update((_PARAM_KEYS.get(k, k), float(v)) for k, v in _fields(value) if v is not None)
        elif value is not None:
            flat[_PARAM_KEYS.get(name, name)] = float(value)
    return flat


def usl_from_params(params: Mapping[str, Any]) -> UslParameters | None:
    """The USL fit back from a scorecard's ``capacity.params`` (the inverse of the USL part of
    :func:`flat_capacity_params`), so a report drawn from scorecard.json alone can draw the
    curve; None when the estimate carries no fit."""
    names = {v: k for k, v in _PARAM_KEYS.items()}
    values = {names.get(k, k): v for k, v in params.items()}
    if not all(isinstance(values.get(k), int | float) for k in ("sigma", "kappa", "lam")):
        return None
    known = {f.name for f in fields(UslParameters)}
    kwargs: dict[str, Any] = {k: float(v) for k, v in values.items() if k in known and v is not None}
    if "n_points" in kwargs:
        kwargs["n_points"] = int(kwargs["n_points"])
    return UslParameters(**kwargs)


def _fields(record: CapacityParams | UslParameters) -> list[tuple[str, Any]]:
    return [(f.name, getattr(record, f.name)) for f in fields(record)]


def _trend(t: EndpointTrend) -> dict[str, Any]:
    return {
        "endpoint": t.endpoint,
        "points": [
            {"customers": n, "service_ms": _ms(ms), "service_p95_ms": _ms(ms) if t.measure == "steady-p95" else None}
            for (n, ms) in t.points
        ],
        "measure": t.measure,
        "note": t.note,
        "size_points": [{"customers": n, "bytes_mean": _num(b, 1)} for (n, b) in t.size_points],
        "size_slope": _num(t.size_slope, 3),
        "size_class": t.size_class,
        "slope": _num(t.slope, 3),
        "slope_low": _num(t.slope_low, 3),
        "slope_high": _num(t.slope_high, 3),
        "growth_class": t.growth_class,
        "breaks_at_customers": _whole(t.breaks_at_customers),
        "slo_p95_ms": _ms(t.slo_p95_ms),
        "fixed_ms": _ms(t.fixed_ms),
    }


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id,
        "category": f.category,
        "severity": f.severity,
        "title": f.title,
        "detail": f.detail,
        "evidence": _jsonable(f.evidence),
        "reproduce": f.reproduce,
        "tier": f.tier,
        "endpoint": f.endpoint,
        "caused_by": f.caused_by,
    }


# --- the verdict, explained -----------------------------------------------------------------


def _fmt_int(n: float) -> str:
    return f"{n:.0f}"


def _first_tier(record: AuditRecord, status: str) -> TierResult | None:
    return next((t for t in record.tiers if t.status == status), None)


def _tier_reason(record: AuditRecord, tier: TierResult) -> str:
    if tier.reason:
        return tier.reason
    own = ordered_findings(f for f in record.findings if f.tier == tier.customers)
    return own[0].title if own else ""


def _headline(record: AuditRecord) -> str:
    """One plain-text sentence after the verdict: what it means and, if it failed, where and why."""
    v = record.verdict
    findings = ordered_findings(record.findings)
    top = findings[0].title if findings else ""
    up_to = (
        f"ready up to {_fmt_int(record.ready_up_to)} customers"
        if record.ready_up_to
        else "not ready for any measured tier"
    )
    if v == "READY":
        return up_to
    if v == "AT RISK":
        return f"{up_to}, but {_lower_first(top)}" if top else up_to
    if v == "NOT READY":
        failed = _first_tier(record, "failed")
        if failed is not None:
            why = _tier_reason(record, failed)
            head = f"fails at {_fmt_int(failed.customers)} customers"
            return f"{head}: {_lower_first(why)}" if why else head
        if record.gate is not None and record.gate.status in ("failed", "error"):
            return (f"the regression gate failed: {record.gate.failed + record.gate.errors} "
                    f"test(s) did not pass")
        if record.properties is not None and record.properties.status in ("failed", "error"):
            n = len(record.properties.falsified) or record.properties.failed
            return f"{n} propert{'y was' if n == 1 else 'ies were'} falsified"
        checks = record.properties.openapi if record.properties is not None else None
        if checks is not None and checks.failures:
            n = len({f.operation for f in checks.failures})
            return f"{n} operation{'' if n == 1 else 's'} failed Schemathesis's checks"
        return _lower_first(top) if top else "a check failed"
    # INCONCLUSIVE
    bad = _first_tier(record, "invalid") or _first_tier(record, "skipped")
    if bad is not None:
        why = _tier_reason(record, bad)
        head = f"the {_fmt_int(bad.customers)}-customer tier was {bad.status}"
        return f"{head}: {_lower_first(why)}" if why else head
    if record.partial:
        return "the audit was interrupted before every stage ran"
    return _lower_first(top) if top else "some evidence needed for a verdict is missing"


def _lower_first(s: str) -> str:
    s = " ".join(s.split()).rstrip(".")
    if len(s) > 1 and s[0].isupper() and not s[1].isupper():
        return s[0].lower() + s[1:]
    return s


def _why(record: AuditRecord) -> list[dict[str, Any]]:
    """The findings that decide the verdict, or the evidence behind a READY."""
    findings = ordered_findings(record.findings)
    v = record.verdict
    if v == "NOT READY":
        deciding = [f for f in findings if f.severity in ("critical", "high")] or findings
    elif v == "AT RISK":
        deciding = [f for f in findings if f.severity in ("critical", "high", "medium")] or findings
    elif v == "INCONCLUSIVE":
        deciding = [
            f for f in findings
            if f.category in ("generator-saturated", "target-unavailable")
            or f.severity in ("critical", "high")
        ]
    else:
        deciding = []
    why: list[dict[str, Any]] = [{"finding": f.id, "text": f.title} for f in deciding[:MAX_WHY]]
    if v == "INCONCLUSIVE":
        for t in record.tiers:
            if t.status in ("invalid", "skipped") and t.reason and len(why) < MAX_WHY:
                why.append({"finding": None,
                            "text": f"{_fmt_int(t.customers)} customers: {t.reason}"})
        if record.partial and len(why) < MAX_WHY:
            why.append({"finding": None, "text": "The audit was interrupted; some stages did not run."})
    if v == "READY":
        why.extend(_ready_evidence(record))
    return why


def _ready_evidence(record: AuditRecord) -> list[dict[str, Any]]:
    out: list[str] = []
    if record.gate is not None:
        out.append(f"Regression gate passed ({record.gate.passed} tests).")
    if record.properties is not None:
        out.append(f"Properties held ({record.properties.passed} checked).")
    passed = [t for t in record.tiers if t.status == "passed"]
    if passed:
        tiers = ", ".join(_fmt_int(t.customers) for t in passed)
        out.append(f"Every tier met its SLOs with valid measurements ({tiers} customers).")
    if any(t.integrity is not None and t.integrity.status == "passed" for t in record.tiers):
        out.append("No acknowledged write was lost and no cross-tenant read succeeded.")
    c = record.capacity
    if c is not None and c.predicted_customers is not None and c.headroom is not None:
        out.append(
            f"Predicted capacity {_fmt_int(c.predicted_customers)} customers: "
            f"{c.headroom:.1f}x the {_fmt_int(c.goal_customers)}-customer goal."
        )
    return [{"finding": None, "text": s} for s in out]


# --- the whole scorecard --------------------------------------------------------------------


def _environment(env: Environment | None) -> dict[str, Any] | None:
    if env is None:
        return None
    return {
        "harness_version": env.harness_version,
        "python": env.python,
        "platform": env.platform,
        "cpu_model": env.cpu_model,
        "cores": env.cores,
        "libraries": dict(env.libraries),
    }


def _change(c: MetricChange) -> dict[str, Any]:
    return {
        "tier": c.tier, "endpoint": c.endpoint, "metric": c.metric, "kind": c.kind,
        "before_ms": _sig(c.before, 4), "after_ms": _sig(c.after, 4), "change": _sig(c.change, 4),
        "interval": [_sig(c.low, 4), _sig(c.high, 4)], "p_value": _sig(c.p_value, 3),
        "threshold": _sig(c.threshold, 3), "noise": None if c.noise is None else _sig(c.noise, 3),
        "noise_runs": c.noise_runs, "requests": [c.requests_before, c.requests_after],
    }  # fmt: skip


def _baseline(b: BaselineComparison | None) -> dict[str, Any] | None:
    if b is None:
        return None
    return {
        "baseline_run_id": b.baseline_run_id,
        "baseline_commit": b.baseline_commit,
        "baseline_finished_at": iso_utc(b.baseline_finished_at),
        "pinned": b.pinned,
        "compared": len(b.changes),
        "regressions": [_change(c) for c in b.regressions],
        "improvements": [_change(c) for c in b.improvements],
        "unchanged": [_change(c) for c in b.changes if c.kind == "unchanged"],
        "note": b.note,
    }


def _change_point(c: ChangePoint) -> dict[str, Any]:
    return {
        "tier": c.tier, "endpoint": c.endpoint, "metric": c.metric, "run_id": c.run_id,
        "previous_run_id": c.previous_run_id, "index": c.index, "before": _sig(c.before, 4),
        "after": _sig(c.after, 4), "shift": _sig(c.shift, 4), "p_value": _sig(c.p_value, 3),
        "commit_before": c.commit_before, "commit_after": c.commit_after,
    }  # fmt: skip


def _history(s: MetricSeries | None, changes: tuple[ChangePoint, ...]) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "metric": s.metric, "tier": s.tier, "endpoint": s.endpoint, "unit": "ms",
        "points": [{"run_id": p.run_id, "finished_at": iso_utc(p.finished_at), "value": _sig(p.value, 4),
                    "verdict": p.verdict, "commit": p.commit} for p in s.points],
        "changes": [_change_point(c) for c in changes
                    if (c.tier, c.endpoint, c.metric) == (s.tier, s.endpoint, s.metric)],
    }  # fmt: skip


def _popularity(p: Popularity | None, tiers: tuple[TierResult, ...]) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "distribution": p.distribution,
        "exponent": p.exponent if p.distribution == "zipf" else None,
        "description": p.describe(),
        "busiest_customer_share": [{"customers": t.customers, "share": _num(p.top_share(t.customers), 4)}
                                   for t in tiers],
    }  # fmt: skip


def build_scorecard(record: AuditRecord) -> dict[str, Any]:
    """The scorecard dict for ``record``; ``json.dumps`` of it is ``scorecard.json``."""
    per_iteration = requests_per_iteration(record.tiers)
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": record.run_id,
        "pack": record.pack,
        "profile": record.profile,
        "started_at": iso_utc(record.started_at),
        "finished_at": iso_utc(record.finished_at),
        "duration_s": _num(record.finished_at - record.started_at, 1),
        "verdict": record.verdict,
        "ready_up_to": record.ready_up_to,
        "partial": record.partial,
        "summary": {"headline": _headline(record), "why": _why(record)},
        "target": {
            "base_url": record.target.base_url,
            "started_by_harness": record.target.started_by_harness,
            "command": record.target.command,
            "resources_source": record.target.resources_source,
            "database": record.target.database,
        },
        "stages": {
            "regression": _regression(record.gate),
            "properties": _properties(record.properties),
        },
        "tiers": [_tier(t, per_iteration) for t in record.tiers],
        "noise_floor": _noise_floor(record.noise_floor),
        "capacity": _capacity(record.capacity),
        "trends": [_trend(t) for t in record.trends],
        "scores": [
            {"area": s.area, "score": _num(s.score, 1), "explanation": s.explanation}
            for s in record.scores
        ],
        "findings": [_finding(f) for f in ordered_findings(record.findings)],
        "notes": list(record.notes),
        "options": _jsonable(dict(record.options)),
        "environment": _environment(record.environment),
        "baseline": _baseline(record.baseline),
        "change_points": [_change_point(c) for c in record.change_points],
        "history": _history(record.history, record.change_points),
        "popularity": _popularity(record.popularity, record.tiers),
    }
