"""Small builders for the harness's records, with sensible defaults, for any test to reuse.

Every builder takes keyword arguments for what a test cares about and fills in the rest, so a test
reads as its specification: ``phase(offered_rps=300, service_ms=12)``. Derived numbers stay
consistent (requests = achieved rate x duration, percentiles grow from the mean), nothing is random.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from harness import validity
from harness.records import (
    AreaScore,
    AuditRecord,
    CapacityEstimate,
    CapacityParams,
    CrowdedBy,
    EndpointMeasurement,
    EndpointTrend,
    Environment,
    ErrorSample,
    FalsifiedProperty,
    Finding,
    GateResult,
    GeneratorHealth,
    IntegrityResult,
    IntegrityViolation,
    LatencySummary,
    LeakReplay,
    NoiseFloor,
    PhaseKind,
    PhaseMeasurement,
    PhaseValidity,
    Popularity,
    PropertiesResult,
    ReplayedError,
    ResourceSample,
    Severity,
    SloCheck,
    TargetInfo,
    TestCaseResult,
    TierResult,
    TierStatus,
    UslParameters,
    Verdict,
)

T0 = 1_700_000_000.0  # a fixed "now" so records are deterministic


def latency_summary(
    mean_ms: float = 10.0,
    *,
    count: int = 1000,
    p50_ms: float | None = None,
    p95_ms: float | None = None,
    p99_ms: float | None = None,
    p999_ms: float | None = None,
    max_ms: float | None = None,
) -> LatencySummary:
    """Percentiles default to a right-skewed shape around the mean (p95 = 2x, p99 = 3x mean)."""
    return LatencySummary(
        count=count,
        p50_ms=0.9 * mean_ms if p50_ms is None else p50_ms,
        p95_ms=2.0 * mean_ms if p95_ms is None else p95_ms,
        p99_ms=3.0 * mean_ms if p99_ms is None else p99_ms,
        p999_ms=4.0 * mean_ms if p999_ms is None else p999_ms,
        max_ms=5.0 * mean_ms if max_ms is None else max_ms,
        mean_ms=mean_ms,
    )


@dataclass(frozen=True)
class GeneratorState:
    """A phase's generator readings and the validity they were classified as."""

    health: GeneratorHealth
    validity: PhaseValidity


def generator_health(
    saturated: bool = False,
    *,
    crowded: bool = False,
    crowded_by: Sequence[CrowdedBy] | None = None,
    reasons: Sequence[str] | None = None,
    **readings: object,
) -> GeneratorState:
    """Readings (a saturated generator: high CPU and lag) and their validity: ``saturated`` makes
    it spoiled (``reasons`` its sentences), ``crowded`` an upper bound (``crowded_by`` defaults to
    other work); the bounds follow from the readings as harness.validity derives them."""
    values: dict[str, object] = {
        "cpu_max_pct": 95.0 if saturated else 40.0,
        "cpu_mean_pct": 90.0 if saturated else 30.0,
        "loop_lag_p99_ms": 80.0 if saturated else 2.0,
        "loop_lag_max_ms": 200.0 if saturated else 5.0,
        "rss_max_mb": 120.0,
        "workers": 1,
    }
    values.update(readings)
    health = GeneratorHealth(**values)  # type: ignore[arg-type]
    by: tuple[CrowdedBy, ...] = tuple(crowded_by) if crowded_by is not None else (("other-work",) if crowded else ())
    texts = list(reasons) if reasons is not None else (["cpu above 90 %"] if saturated else [])
    spoiled_by = texts if saturated else []
    crowding = [] if saturated else texts
    return GeneratorState(health, validity.from_parts(health, spoiled_by, crowding, by))


def endpoint(
    name: str = "GET /items",
    *,
    requests: int = 1000,
    errors: int = 0,
    service_ms: float = 10.0,
    service: LatencySummary | None = None,
    latency: LatencySummary | None = None,
    errors_by_reason: dict[str, int] | None = None,
) -> EndpointMeasurement:
    """Intended-start latency defaults to the service time (no queueing in the generator)."""
    service = service or latency_summary(service_ms, count=requests)
    if errors_by_reason is None:
        errors_by_reason = {"http-500": errors} if errors else {}
    return EndpointMeasurement(
        name=name,
        requests=requests,
        errors=errors,
        errors_by_reason=errors_by_reason,
        latency=latency or service,
        service=service,
        latency_hdr="",
        service_hdr="",
    )


def phase(
    kind: PhaseKind = "steady",
    *,
    offered_rps: float = 100.0,
    achieved_rps: float | None = None,
    service_ms: float = 10.0,
    service: LatencySummary | None = None,
    latency: LatencySummary | None = None,
    endpoints: Sequence[EndpointMeasurement] | None = None,
    errors: int = 0,
    saturated: bool = False,
    label: str | None = None,
    duration_s: float = 60.0,
    dropped_iterations: int = 0,
    started_at: float = T0,
    aborted: str | None = None,
    error_samples: Sequence[ErrorSample] = (),
    generator: GeneratorState | None = None,
) -> PhaseMeasurement:
    """One phase; by default a single endpoint carries all requests, achieved = offered."""
    achieved = offered_rps if achieved_rps is None else achieved_rps
    requests = max(int(round(achieved * duration_s)), 1)
    service = service or latency_summary(service_ms, count=requests)
    latency = latency or service
    if endpoints is None:
        endpoints = (endpoint(requests=requests, errors=errors, service=service, latency=latency),)
    scheduled = int(round(offered_rps * duration_s))
    return PhaseMeasurement(
        kind=kind,
        label=label or kind,
        offered_rps=offered_rps,
        achieved_rps=achieved,
        started_at=started_at,
        ended_at=started_at + duration_s,
        iterations_scheduled=scheduled,
        iterations_started=scheduled - dropped_iterations,
        dropped_iterations=dropped_iterations,
        endpoints=tuple(endpoints),
        windows=(),
        generator=(generator or generator_health(saturated)).health,
        validity=(generator or generator_health(saturated)).validity,
        latency=latency,
        service=service,
        error_samples=tuple(error_samples),
        aborted=aborted,
    )


def tier(
    customers: int = 50,
    *,
    steady: PhaseMeasurement | None = None,
    stress: Sequence[PhaseMeasurement] = (),
    status: TierStatus = "passed",
    offered_rps: float | None = None,
    reason: str = "",
    warmup: PhaseMeasurement | None = None,
    integrity: IntegrityResult | None = None,
    replayed_errors: Sequence[ReplayedError] = (),
    resources: Sequence[ResourceSample] = (),
    probe: PhaseMeasurement | None = None,
) -> TierResult:
    """A tier; ``offered_rps`` defaults to the steady phase's offered rate."""
    if offered_rps is None:
        offered_rps = steady.offered_rps if steady is not None else 0.0
    return TierResult(
        customers=customers,
        status=status,
        offered_rps=offered_rps,
        provisioning=None,
        warmup=warmup,
        steady=steady,
        stress=tuple(stress),
        integrity=integrity,
        replayed_errors=tuple(replayed_errors),
        resources=tuple(resources),
        reason=reason,
        probe=probe,
    )


def audit_record(
    tiers: Sequence[TierResult] = (),
    *,
    capacity: CapacityEstimate | None = None,
    trends: Sequence[EndpointTrend] = (),
    findings: Sequence[Finding] = (),
    verdict: Verdict = "INCONCLUSIVE",
    ready_up_to: int | None = None,
    run_id: str = "20240101-000000",
    pack: str = "booking",
    profile: str = "quick",
    gate: GateResult | None = None,
    properties: PropertiesResult | None = None,
    noise_floor: NoiseFloor | None = None,
    scores: Sequence[AreaScore] = (),
    partial: bool = False,
    notes: Sequence[str] = (),
    options: dict[str, object] | None = None,
    target: TargetInfo | None = None,
    environment: Environment | None = None,
    popularity: Popularity | None = None,
) -> AuditRecord:
    return AuditRecord(
        run_id=run_id,
        pack=pack,
        profile=profile,
        started_at=T0,
        finished_at=T0 + 600.0,
        target=target or TargetInfo(base_url="http://127.0.0.1:8000", started_by_harness=True),
        gate=gate,
        properties=properties,
        tiers=tuple(tiers),
        noise_floor=noise_floor,
        capacity=capacity,
        trends=tuple(trends),
        findings=tuple(findings),
        verdict=verdict,
        ready_up_to=ready_up_to,
        scores=tuple(scores),
        partial=partial,
        notes=tuple(notes),
        options=dict(options or {}),
        environment=environment,
        popularity=popularity,
    )


# --- stages, integrity, analysis (added for the report tests; reuse freely) ------------------


def gate_result(
    *,
    passed: int = 12,
    failed: Sequence[str] = (),
    cases: Sequence[TestCaseResult] | None = None,
) -> GateResult:
    """A regression gate; ``failed`` names failing tests (the gate then fails)."""
    if cases is None:
        cases = [TestCaseResult(f"test_ok_{i}", "passed", 0.01) for i in range(passed)]
        cases += [TestCaseResult(name, "failed", 0.02, f"AssertionError: {name}") for name in failed]
    return GateResult(
        status="failed" if failed else "passed",
        passed=passed,
        failed=len(failed),
        errors=0,
        skipped=0,
        duration_s=1.5,
        junit="junit-regression.xml",
        cases=tuple(cases),
    )


def falsified_property(name: str = "test_no_5xx_on_any_input", **overrides: str) -> FalsifiedProperty:
    values = {
        "name": name,
        "example": "create_booking(slot_id=-1)",
        "error": "AssertionError: 500 Internal Server Error",
        "reproduce": f"scaleready run --only properties --replay {name}",
    }
    values.update(overrides)
    return FalsifiedProperty(**values)


def properties_result(
    *, passed: int = 6, falsified: Sequence[FalsifiedProperty] = ()
) -> PropertiesResult:
    return PropertiesResult(
        status="failed" if falsified else "passed",
        passed=passed,
        failed=len(falsified),
        duration_s=4.0,
        examples_per_property=100,
        junit="junit-properties.xml",
        falsified=tuple(falsified),
    )


def violation(
    kind: str = "lost-write", *, customer: str = "clinic-7", detail: str = "", check: str = ""
) -> IntegrityViolation:
    return IntegrityViolation(
        kind=kind,  # type: ignore[arg-type]
        customer=customer,
        identifiers=("booking-41",),
        detail=detail or f"{kind} seen after the steady window",
        check=check,
    )


# Suspicions under load that replay did not confirm: what a careless locustfile leaves behind.
LEAK_REPLAY = LeakReplay(
    suspected=3, confirmed=0, not_confirmed=3, unverified=0, requests=24,
    findings=("GET /jobs/{id}/receipt: checked by replay and not confirmed (3 suspicion(s), 3 replayed): "
              "as customer 2, GET /jobs/7/receipt answered 404 (refused)",),
)  # fmt: skip


def integrity_result(
    violations: Sequence[IntegrityViolation] = (),
    *,
    checks: dict[str, int] | None = None,
    checked: int = 500,
    leak_replay: LeakReplay | None = None,
    public: tuple[str, ...] = (),
) -> IntegrityResult:
    return IntegrityResult(
        status="failed" if violations else "passed",
        checked=checked,
        violations=tuple(violations),
        checks={"set-full": checked} if checks is None else checks,
        leak_replay=leak_replay,
        public=public,
    )


def error_sample(
    endpoint: str = "GET /items", *, body: str = "Internal Server Error", status: int = 500
) -> ErrorSample:
    return ErrorSample(
        endpoint=endpoint,
        method=endpoint.split(" ", 1)[0],
        url=endpoint.split(" ", 1)[-1],
        status=status,
        reason=f"http-{status}" if status else "timeout",
        body_excerpt=body,
        at=T0 + 30.0,
    )


def finding(
    category: str = "slo-latency",
    *,
    severity: Severity = "high",
    title: str = "GET /items is too slow at 500 customers",
    detail: str = "p99 840 ms against an SLO of 300 ms.",
    evidence: dict[str, object] | None = None,
    reproduce: str = "scaleready run --only tier:500",
    tier: int | None = None,
    endpoint: str | None = None,
    id: str | None = None,  # noqa: A002 - mirrors the record's field name
) -> Finding:
    return Finding(
        id=id or f"{category}-{tier or 0}-{endpoint or 'all'}",
        category=category,
        severity=severity,
        title=title,
        detail=detail,
        evidence={"p99_ms": 840.0, "slo_p99_ms": 300.0} if evidence is None else evidence,
        reproduce=reproduce,
        tier=tier,
        endpoint=endpoint,
    )


def noise_floor(p99_ms: float = 2.5) -> NoiseFloor:
    return NoiseFloor(
        offered_rps=500.0,
        server_service_ms=1.0,
        latency=latency_summary(1.0, p50_ms=1.1, p99_ms=p99_ms, max_ms=9.0),
    )


def capacity_estimate(
    predicted: float | None = 8200.0, *, goal: int = 5000, method: str = "usl"
) -> CapacityEstimate:
    return CapacityEstimate(
        predicted_customers=predicted,
        low=None if predicted is None else predicted * 0.75,
        high=None if predicted is None else predicted * 1.35,
        method=method,
        params=CapacityParams(
            goal_rps=2000.0, latency_slo_ms=300.0,
            usl=UslParameters(sigma=0.0281, kappa=0.000104, lam=995.6, sigma_se=0.004, kappa_se=0.00002,
                              lam_se=12.0, n_points=8, n_min=0.2, n_max=25.0),
        ),  # fmt: skip
        headroom=None if predicted is None else predicted / goal,
        goal_customers=goal,
        confidence="medium",
        points=((20.0, 20.0, 0.2), (200.0, 199.0, 2.1), (2000.0, 1950.0, 25.0)),
    )


def area_scores() -> tuple[AreaScore, ...]:
    return (
        AreaScore("correctness", 100.0, "gate and properties passed"),
        AreaScore("latency", 86.4, "p99 within SLO at every tier"),
        AreaScore("capacity", None, "not measured"),
    )


def full_audit_record(verdict: Verdict = "READY", **overrides: object) -> AuditRecord:
    """A complete, plausible audit of three tiers (50, 500, 5000): every section of a report has
    something to show. ``verdict`` shapes it (NOT READY fails the 5000 tier on an SLO; AT RISK
    adds a medium trend finding; INCONCLUSIVE saturates the generator at 5000); keyword
    arguments replace any of ``audit_record``'s."""
    ep = ("GET /slots", "POST /bookings", "GET /bookings/{id}")

    def steady(offered: float, service_ms: float, *, saturated: bool = False) -> PhaseMeasurement:
        requests = int(offered * 60)
        eps = [
            endpoint(name, requests=requests // 3, errors=1 if name.startswith("POST") else 0,
                     service_ms=service_ms * (1 + i / 2))
            for i, name in enumerate(ep)
        ]
        p = phase(offered_rps=offered, service_ms=service_ms, endpoints=eps, saturated=saturated)
        return PhaseMeasurement(**{**p.__dict__, "error_samples": (error_sample("POST /bookings"),),
                                   "max_users": int(offered / 4) + 1})

    def stress(offered: float, service_ms: float) -> tuple[PhaseMeasurement, ...]:
        return tuple(
            phase("stress", offered_rps=offered * f, achieved_rps=offered * min(f, 1.6),
                  service_ms=service_ms * f * f, label=f"stress x{f}")
            for f in (1.5, 2.0)
        )

    rates = {50: 20.0, 500: 200.0, 5000: 2000.0}
    tiers = []
    findings: list[Finding] = []
    for n, rate in rates.items():
        service_ms = 4.0 + n / 1000
        status: TierStatus = "passed"
        reason = ""
        saturated = False
        if n == 5000 and verdict == "NOT READY":
            status, reason, service_ms = "failed", "GET /slots p99 is 912 ms against a 300 ms SLO", 300.0
            findings.append(finding(tier=n, endpoint="GET /slots",
                                    title="GET /slots is too slow at 5000 customers",
                                    id="slo-latency-5000-get-slots"))
        if n == 5000 and verdict == "INCONCLUSIVE":
            status, reason, saturated = "invalid", "the load generator was saturated (CPU 97 %)", True
            findings.append(finding("generator-saturated", severity="medium", tier=n,
                                    title="The load generator was saturated at 5000 customers",
                                    id="generator-saturated-5000", reproduce="scaleready run --workers 2"))
        t = tier(n, steady=steady(rate, service_ms, saturated=saturated),
                 stress=stress(rate, service_ms), status=status, reason=reason,
                 resources=resource_series([80.0 + n / 500 + i for i in range(6)], start_requests=n * 10))
        checks = None if saturated else tuple(
            SloCheck(e.name, e.requests, ("p95", "p99") if e.requests >= 1000 else ("p95",) if e.requests >= 200 else ("p50",))
            for e in t.steady.endpoints  # type: ignore[union-attr]
        )  # fmt: skip
        tiers.append(TierResult(**{**t.__dict__, "slo_checks": checks,
                                   "integrity": integrity_result(checks={"set-full": 400, "unique-ids": 400},
                                                                 leak_replay=LEAK_REPLAY,
                                                                 public=("GET /feed is declared public: not scanned",))}))
    if verdict == "AT RISK":
        findings.append(finding("data-volume-scaling", severity="medium", endpoint="GET /slots",
                                title="GET /slots slows linearly with data volume",
                                id="data-volume-scaling-get-slots"))
    findings.append(finding("resource-leak", severity="info", title="RSS stayed flat",
                            evidence={"rss_mb": [120.0, 121.5]}, id="resource-leak-info"))
    passed = [t.customers for t in tiers if t.status == "passed"]
    values: dict[str, object] = {
        "capacity": capacity_estimate(),
        "trends": (EndpointTrend("GET /slots", ((50, 4.1), (500, 4.6), (5000, 9.3)), 0.35, 0.2,
                                 0.5, "sub-linear", None, 300.0),),
        "findings": findings,
        "verdict": verdict,
        "ready_up_to": max(passed) if passed else None,
        "run_id": "20261123-101500-ab12",
        "profile": "standard",
        "gate": gate_result(),
        "properties": properties_result(),
        "noise_floor": noise_floor(),
        "scores": area_scores(),
        "options": {"seed": 1234, "workers": 1, "tiers": [50, 500, 5000], "goal_customers": 5000,
                    "slo": {"p95_ms": 200.0, "p99_ms": 300.0, "error_rate": 0.01, "ready_headroom": 1.5,
                            "endpoints": {"GET /slots": {"p95_ms": 250.0, "p99_ms": 400.0}}}},
        "environment": Environment("0.1.0", "3.11.2", "Linux-6.1.0-x86_64-with-glibc2.36",
                                   "AMD EPYC 7B13", 2, (("locust", "2.31.0"), ("numpy", "1.26.4"))),
    }
    values.update(overrides)
    return audit_record(tiers, **values)  # type: ignore[arg-type]


# --- verdict inputs (added for the verdict tests; reuse freely) ---------------------------------


def replayed_error(
    endpoint: str = "GET /items",
    *,
    still_failing: bool,
    status: int = 500,
    at: float = T0 + 30.0,
) -> ReplayedError:
    """A server error seen under load at ``at`` and replayed alone (still failing = a bug)."""
    sample = error_sample(endpoint, status=status)
    sample = ErrorSample(**{**sample.__dict__, "at": at})
    return ReplayedError(
        sample=sample, replay_status=status if still_failing else 200, still_failing=still_failing
    )


def resource_series(
    rss_mb: Sequence[float], *, requests_step: int = 5000, start_requests: int = 0
) -> tuple[ResourceSample, ...]:
    """The target's RSS sampled every ``requests_step`` requests served."""
    return tuple(
        ResourceSample(
            at=T0 + i,
            rss_mb=mb,
            cpu_pct=50.0,
            open_fds=40,
            threads=8,
            requests_so_far=start_requests + i * requests_step,
        )
        for i, mb in enumerate(rss_mb)
    )


def endpoint_trend(
    endpoint: str = "GET /items",
    *,
    growth_class: str = "flat",
    points: Sequence[tuple[int, float]] = ((50, 10.0), (500, 10.5), (5000, 11.0)),
    breaks_at: float | None = None,
    slope: float | None = 0.02,
    slo_p95_ms: float | None = 100.0,
) -> EndpointTrend:
    return EndpointTrend(
        endpoint=endpoint,
        points=tuple(points),
        slope=slope,
        slope_low=None if slope is None else slope - 0.1,
        slope_high=None if slope is None else slope + 0.1,
        growth_class=growth_class,  # type: ignore[arg-type]
        breaks_at_customers=breaks_at,
        slo_p95_ms=slo_p95_ms,
    )


def with_generator(p: PhaseMeasurement, state: GeneratorState) -> PhaseMeasurement:
    """``p`` measured with another generator state."""
    return replace(p, generator=state.health, validity=state.validity)
