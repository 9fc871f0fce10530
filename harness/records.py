"""Plain, frozen records passed between stages, analysis and reports.

Stages produce these; analysis and reports only read them. They hold no live objects (no
runner, no process, no histogram instance): histograms travel as their HDR base64 encoding so a
record can be written to disk and read back without loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

TierStatus = Literal["passed", "failed", "invalid", "skipped"]
StageStatus = Literal["passed", "failed", "error", "skipped"]
Severity = Literal["critical", "high", "medium", "low", "info"]
Verdict = Literal["READY", "AT RISK", "NOT READY", "INCONCLUSIVE"]
PhaseKind = Literal["probe", "warmup", "steady", "stress"]


PopularityKind = Literal["uniform", "zipf"]


@dataclass(frozen=True)
class Popularity:
    """How the load picks the customer each action acts for (``CustomerUser.customer()``).

    ``uniform``: every customer alike. ``zipf``: the customer of rank k (its provisioning index
    + 1) weighs ``1 / k ** exponent``, so a few large customers carry much of the traffic, as in
    real multi-tenant services; writes on one customer then overlap, which is where lost updates
    and double bookings show. The data-volume probe always picks uniformly (every customer's data).
    """

    distribution: PopularityKind = "uniform"
    exponent: float = 1.0  # zipf only

    def weights(self, customers: int) -> list[float]:
        """Each rank's relative weight (rank 1 first); all 1.0 when uniform."""
        if self.distribution == "uniform":
            return [1.0] * customers
        return [1.0 / (rank**self.exponent) for rank in range(1, customers + 1)]

    def top_share(self, customers: int, top: int = 1) -> float:
        """The share of all actions the ``top`` most popular of ``customers`` get, in [0, 1]."""
        w = self.weights(customers)
        return sum(w[:top]) / sum(w) if w else 0.0

    def describe(self) -> str:
        if self.distribution == "uniform":
            return "uniform"
        return f"Zipf, exponent {self.exponent:g}"

SEVERITY_ORDER: tuple[str, ...] = ("critical", "high", "medium", "low", "info")


def severity_rank(severity: str) -> int:
    """0 for critical ... 4 for info; an unknown severity sorts last."""
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)

# The closed list of finding categories (DESIGN.md). Extend deliberately, never rename.
CATEGORIES: tuple[str, ...] = (
    "regression",
    "property",
    "slo-latency",
    "slo-errors",
    "throughput",
    "data-volume-scaling",
    "contention",
    "coherency",
    "saturation-errors",
    "resource-leak",
    "integrity-lost-write",
    "integrity-duplicate",
    "isolation-leak",
    "baseline-regression",
    "target-unavailable",
    "generator-saturated",
    "provisioning",
)


# --- load measurement -------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of one HDR histogram, in milliseconds."""

    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float


@dataclass(frozen=True)
class ErrorSample:
    """One failed request kept verbatim (credentials redacted) so it can be replayed."""

    endpoint: str  # the Locust request name, e.g. "GET /slots"
    method: str
    url: str  # path and query, never the host's credentials
    status: int  # 0 when there was no HTTP response (timeout, reset)
    reason: str  # "http-500", "timeout", "connection", "invalid-json", ...
    body_excerpt: str
    at: float  # unix time
    request_body: str | None = None
    customer_index: int | None = None  # whose credentials the request used, for the replay


@dataclass(frozen=True)
class EndpointMeasurement:
    """One endpoint during one load phase."""

    name: str
    requests: int
    errors: int
    errors_by_reason: dict[str, int]
    latency: LatencySummary  # from the intended start (coordinated-omission corrected)
    service: LatencySummary  # plain service time (send to last byte)
    latency_hdr: str  # base64 HDR encoding, microseconds
    service_hdr: str
    bytes_total: int = 0  # response bodies, summed over the endpoint's requests
    bytes_max: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def bytes_mean(self) -> float:
        return self.bytes_total / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class WindowMeasurement:
    """All endpoints together in one time window (default 5 s) of a phase."""

    start: float  # unix time
    end: float
    requests: int
    errors: int
    latency_hdr: str
    service_hdr: str


@dataclass(frozen=True)
class GeneratorHealth:
    """What the load generator read of itself and of the machine during a phase.

    Readings only: whether they make the phase the target's own measurement, an upper bound, or
    spoiled is decided once, by :mod:`harness.validity`, into the phase's ``validity``.
    """

    cpu_max_pct: float
    cpu_mean_pct: float
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    rss_max_mb: float
    workers: int = 0
    workers_lost: int = 0
    # Was the generator denied a CPU (harness.load.machine)? None where the OS does not say.
    cpu_wait_pct: float | None = None  # its threads runnable but not running, % of wall time
    steal_pct: float | None = None  # the hypervisor's steal, % of one core
    machine_cpu_pct: float | None = None  # every process on the machine, % of one core
    # machine - generator - target, when the harness sampled the target (harness.tiers)
    other_cpu_pct: float | None = None
    held_by_max_rps: int = 0  # requests the engine held back to keep the pack's max_rps
    paced_requests: int = 0  # requests that passed the engine's max_rps pacer
    paced_wait_s: float = 0.0  # the time the held requests waited, in all
    max_rps: float | None = None  # the cap the pacer kept, summed over the processes
    notes: tuple[str, ...] = ()  # what the engine itself noticed (a lost worker, late responses)


ValidityKind = Literal["own", "upper-bound", "spoiled"]
CrowdedBy = Literal["steal", "other-work", "cpu-wait"]


@dataclass(frozen=True)
class PhaseValidity:
    """Whose latency a phase measured, decided once by :mod:`harness.validity`.

    ``own``: the target's, to within the noise floor. ``upper-bound``: the machine was busy
    (``crowded_by``: the hypervisor's steal, other work, or the generator kept waiting for a CPU);
    that only adds latency, so a phase that met its SLOs anyway shows the target met them, and a
    miss is the target's only where it exceeds ``latency_bound_ms``. ``spoiled``: the generator
    could not keep its own schedule (its CPU, its event loop, dropped arrivals, a lost worker, the
    pack's max_rps holding requests back), so its latency is never judged as the target's; a
    service time over a limit by more than ``service_bound_ms`` still is.
    """

    kind: ValidityKind
    spoiled_by: tuple[str, ...] = ()  # why it is spoiled, one sentence each
    crowding: tuple[str, ...] = ()  # what crowded the machine, one sentence each
    crowded_by: tuple[CrowdedBy, ...] = ()
    # The most the generator and the machine can have added to one intended-start latency, and to
    # one service time; None when nothing bounds it (steal and other work slow the target too).
    latency_bound_ms: float | None = 0.0
    service_bound_ms: float | None = 0.0
    # Spoiled by the generator's own limits (its CPU, its event loop, the pack's max_rps, a lost
    # worker), not only by arrivals it could not start because every user waited on the target.
    generator_limited: bool = False

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.spoiled_by + self.crowding

    @property
    def saturated(self) -> bool:
        return self.kind == "spoiled"

    @property
    def crowded(self) -> bool:
        return bool(self.crowded_by)

    @property
    def clean(self) -> bool:
        """Neither spoiled nor crowded: the latency is the target's to within the noise floor."""
        return self.kind == "own"


@dataclass(frozen=True)
class PhaseMeasurement:
    """One load phase (warm-up, steady window or a stress step) at one offered arrival rate."""

    kind: PhaseKind
    label: str  # "warmup", "steady", "stress x1.5", ...
    offered_rps: float
    achieved_rps: float  # completed requests per second
    started_at: float
    ended_at: float
    iterations_scheduled: int
    iterations_started: int
    dropped_iterations: int
    endpoints: tuple[EndpointMeasurement, ...]
    windows: tuple[WindowMeasurement, ...]
    generator: GeneratorHealth
    validity: PhaseValidity
    latency: LatencySummary  # all endpoints together, from intended start
    service: LatencySummary
    error_samples: tuple[ErrorSample, ...] = ()
    max_users: int = 0
    aborted: str | None = None  # why the phase stopped early, if it did
    iterations_completed: int = 0  # within the active window (not the drain); 0 in older records
    active_s: float = 0.0  # arrivals were offered this long (the drain after it excluded)
    # The pack's refresh_credentials hook, called by the load (its requests are not in endpoints)
    credential_refreshes: int = 0
    credential_refresh_failures: int = 0

    @property
    def requests(self) -> int:
        return sum(e.requests for e in self.endpoints)

    @property
    def errors(self) -> int:
        return sum(e.errors for e in self.endpoints)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def achieved_ips(self) -> float | None:
        """Completed iterations per second (offered load's unit), or None when not counted."""
        if self.iterations_completed <= 0 or self.active_s <= 0:
            return None
        return self.iterations_completed / self.active_s

    @property
    def concurrency(self) -> float:
        """Mean requests in flight inside the target (Little's law: X * R)."""
        return self.achieved_rps * self.service.mean_ms / 1000.0

    def target_cpu_pct(self, samples: Sequence[ResourceSample]) -> float | None:
        """Mean CPU of the target's processes during this phase (100 = one core), from the
        harness's samples; None with fewer than two (the harness did not start the target).

        Each sample is the CPU used since the previous one (about a second), so samples in the
        phase's first second, which cover the time before it, are left out.
        """
        cpu = [s.cpu_pct for s in samples if self.started_at + 1.0 <= s.at <= self.ended_at]
        return sum(cpu) / len(cpu) if len(cpu) >= 2 else None


@dataclass(frozen=True)
class ResourceSample:
    """The target process tree at one instant (when the harness started it)."""

    at: float
    rss_mb: float
    cpu_pct: float
    open_fds: int
    threads: int
    requests_so_far: int = 0


# --- stages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestCaseResult:
    name: str
    outcome: Literal["passed", "failed", "error", "skipped"]
    duration_s: float
    message: str = ""
    # What the test said when it failed: the first line of JUnit's failure message (the
    # assertion's own message when it has one), not the traceback's last line.
    headline: str = ""
    # The shrunk call Hypothesis reported for a failing property (harness.pytest_plugin), else "".
    example: str = ""


@dataclass(frozen=True)
class GateResult:
    """The regression gate: the pack's pytest suite against the target."""

    status: StageStatus
    passed: int
    failed: int
    errors: int
    skipped: int
    duration_s: float
    junit: str  # path of the JUnit XML, relative to the run folder
    cases: tuple[TestCaseResult, ...] = ()
    benchmarks: tuple[BenchmarkResult, ...] = ()
    output_tail: str = ""


@dataclass(frozen=True)
class BenchmarkResult:
    """Single-user latency of one key endpoint (pytest-benchmark)."""

    name: str
    mean_ms: float
    median_ms: float
    min_ms: float
    rounds: int


@dataclass(frozen=True)
class FalsifiedProperty:
    name: str
    example: str  # the minimal failing call Hypothesis reported, e.g. test_x(n=10); "" if none
    error: str
    reproduce: str  # command that replays it


@dataclass(frozen=True)
class OpenApiFailure:
    """One operation that failed one of Schemathesis's checks, with its minimal failing request."""

    operation: str  # "POST /patients"
    checks: tuple[str, ...]  # Schemathesis's check names, e.g. ("not_a_server_error",)
    title: str  # what Schemathesis said, e.g. "Server error"
    status: int | None  # the response's status code
    curl: str  # the request as a curl command (credentials shown as [Filtered])
    message: str = ""  # Schemathesis's explanation (schema path, expected and received)


@dataclass(frozen=True)
class OpenApiChecks:
    """Schemathesis's checks on every operation of the pack's OpenAPI document."""

    status: StageStatus
    source: str  # the document as the pack names it ("/openapi.json", a file, a URL)
    operations: int  # operations tested
    passed: int
    examples_per_operation: int
    seed: int  # Hypothesis's seed: the same seed against the same service draws the same requests
    checks: tuple[str, ...]
    duration_s: float
    junit: str
    authenticated: bool  # requests carried a provisioned customer's credential
    max_rps: float | None = None
    failures: tuple[OpenApiFailure, ...] = ()
    replay: str = ""  # the pytest command that reruns these checks alone
    note: str = ""  # why it did not run, or what it ran without


@dataclass(frozen=True)
class PropertiesResult:
    status: StageStatus
    passed: int
    failed: int
    duration_s: float
    examples_per_property: int
    junit: str
    falsified: tuple[FalsifiedProperty, ...] = ()
    output_tail: str = ""
    openapi: OpenApiChecks | None = None


ViolationKind = Literal["lost-write", "duplicate", "resurrected", "isolation-leak", "half-written"]


@dataclass(frozen=True)
class IntegrityViolation:
    kind: ViolationKind
    customer: str
    identifiers: tuple[str, ...]
    detail: str
    first_seen: float | None = None
    check: str = ""  # the checker that found it (a key of IntegrityResult.checks); "" = by kind


@dataclass(frozen=True)
class LeakReplay:
    """How the leaks suspected under load were confirmed (or not) by replaying their requests.

    A suspicion is one (customer, request name) whose responses under load carried another
    customer's marker. Each is ``confirmed`` (a replay as that customer brought foreign data back:
    reported), ``not_confirmed`` (replays as that customer and as the data's owner did not: not a
    leak, most often a request sent with the owner's credentials but credited to another
    customer), or ``unverified`` (it could not be replayed, e.g. a POST: reported, saying so).
    """

    suspected: int
    confirmed: int
    not_confirmed: int
    unverified: int
    requests: int  # replays sent
    findings: tuple[str, ...] = ()  # one sentence per request name replayed: what came back


@dataclass(frozen=True)
class OverlapProbeResult:
    """The overlap probe of one tier: the pack's ``@concurrent_write`` sent ``concurrency`` at once
    for one customer, ``rounds`` times, after the load and before the integrity checks."""

    rounds: int  # rounds run (each on one customer)
    concurrency: int  # attempts sent at once in a round
    customers: tuple[int, ...]  # the customer index of each round
    writes: int  # attempts that recorded a write
    acknowledged: int
    refused: int
    unknown: int
    duration_s: float
    note: str = ""  # why it was cut short or not run


@dataclass(frozen=True)
class IntegrityResult:
    status: Literal["passed", "failed", "skipped", "error"]
    checked: int  # operations or reads checked
    violations: tuple[IntegrityViolation, ...] = ()
    checks: dict[str, int] = field(default_factory=dict)  # checker name -> items checked
    duration_s: float = 0.0
    note: str = ""
    leak_replay: LeakReplay | None = None  # None: nothing was suspected under load
    public: tuple[str, ...] = ()  # one sentence per public declaration: what it left unscanned


@dataclass(frozen=True)
class ReplayedError:
    """A server error seen under load, replayed once with no other load."""

    sample: ErrorSample
    replay_status: int
    still_failing: bool


@dataclass(frozen=True)
class ProvisioningResult:
    customers: int  # total customers present after provisioning
    created: int  # created in this tier
    failed: int
    duration_s: float
    rate_per_s: float
    errors: tuple[str, ...] = ()  # the first failures, one sentence each
    wanted: int = 0  # customers the tier needs (0 in older records)
    retried: int = 0  # customers a second, gentle pass created after the first pass failed them

    @property
    def missing(self) -> int:
        """Customers the tier needed that could not be created, even on the second pass."""
        return max(0, self.wanted - self.customers)


@dataclass(frozen=True)
class SloCheck:
    """What the verdict judged of one endpoint's latency SLO in a tier's steady window.

    A percentile is judged only on enough requests for it (``harness.verdict.policy``); the error
    budget is always checked. Filled by the audit from the judgement, so a report can say what a
    passed tier's pass rests on.
    """

    endpoint: str
    requests: int
    # "p95", "p99", or "p50" (a median against the p95 limit, on too few requests for a p95)
    percentiles: tuple[str, ...]


@dataclass(frozen=True)
class TierResult:
    """Everything measured at one tier: N customers' data and N customers' peak traffic."""

    customers: int
    status: TierStatus
    offered_rps: float
    provisioning: ProvisioningResult | None
    warmup: PhaseMeasurement | None
    steady: PhaseMeasurement | None
    stress: tuple[PhaseMeasurement, ...] = ()
    integrity: IntegrityResult | None = None
    overlap: OverlapProbeResult | None = None  # the overlap probe before the integrity checks
    replayed_errors: tuple[ReplayedError, ...] = ()
    resources: tuple[ResourceSample, ...] = ()
    reason: str = ""  # why invalid / skipped / failed, in one sentence
    # the arrivals/s the pack's max_rps allowed, when it held back a phase or a stress step
    max_rps_arrivals: float | None = None
    # Each endpoint's unloaded service time and response size at this tier's data volume: a
    # short, low-rate phase before the warm-up, so data-volume trends hold when the load collapsed.
    probe: PhaseMeasurement | None = None
    # what the verdict judged per endpoint; None when the steady window was not judged (spoiled,
    # missing) or the record predates it
    slo_checks: tuple[SloCheck, ...] | None = None
    # The pack's refresh_credentials hook, called after the load (integrity checks, replays);
    # the load's own are in each phase
    credential_refreshes: int = 0
    credential_refresh_failures: int = 0

    @property
    def credentials_refreshed(self) -> tuple[int, int]:
        """(refreshes, failed refreshes) over the tier: its phases and its checks."""
        phases = [p for p in (self.probe, self.warmup, self.steady, *self.stress) if p is not None]
        return (self.credential_refreshes + sum(p.credential_refreshes for p in phases),
                self.credential_refresh_failures + sum(p.credential_refresh_failures for p in phases))


@dataclass(frozen=True)
class NoiseFloor:
    """The harness's own latency on this machine against the built-in null target."""

    offered_rps: float
    server_service_ms: float  # the null target's fixed service time
    latency: LatencySummary

    @property
    def p99_overhead_ms(self) -> float:
        return max(0.0, self.latency.p99_ms - self.server_service_ms)


# --- analysis and verdict -------------------------------------------------------------------


@dataclass(frozen=True)
class UslParameters:
    """A fitted Universal Scalability Law, X(N) = λN / (1 + σ(N−1) + κN(N−1)), as numbers.

    ``harness.capacity.UslFit.from_params`` rebuilds the model from them. None where a value is
    not finite (or a record does not carry it).
    """

    sigma: float  # σ, contention: the serialised share of each request's work
    kappa: float  # κ, coherency: crosstalk between requests, which makes throughput fall past a peak
    lam: float  # λ, throughput of one request in flight (req/s); "lambda" in the scorecard
    sigma_se: float | None = None  # standard error of σ; None when the data do not identify it
    kappa_se: float | None = None  # standard error of κ
    lam_se: float | None = None  # standard error of λ
    cov_lam_sigma: float | None = None  # covariance of λ and σ
    cov_lam_kappa: float | None = None  # covariance of λ and κ
    cov_sigma_kappa: float | None = None  # covariance of σ and κ
    n_points: int | None = None  # measured phases the fit used (None: the fit cannot be rebuilt)
    r2: float | None = None  # weighted coefficient of determination of the fit
    n_star: float | None = None  # N*, the concurrency of peak throughput; None when κ = 0 (no peak)
    x_max: float | None = None  # the peak throughput (λ/σ when κ = 0); None when σ = κ = 0
    n_min: float | None = None  # the smallest in-server concurrency measured
    n_max: float | None = None  # the largest in-server concurrency measured


@dataclass(frozen=True)
class CapacityParams:
    """The numbers behind a capacity estimate, as ``harness.capacity.estimate_capacity`` found them.

    Rates are arrivals or completed iterations per second, the offered load's unit; a ``_customers``
    field is the rate before it divided by one customer's peak rate. None where the estimate did
    not get that far (no fit, no band), the thing was not there (no knee, no ceiling) or the value
    is not finite. Bounds are taken at the goal's data volume (or the largest measured).
    """

    per_customer_rps: float | None = None  # one customer's peak arrival rate
    goal_rps: float | None = None  # the goal tier's arrival rate: goal customers x per_customer_rps
    latency_slo_ms: float | None = None  # the latency SLO, at the SLO percentile
    valid_points: int | None = None  # phases that measured the target (the points estimated from)
    past_knee_points: int | None = None  # of those, the ones whose goodput fell under 90 % of offered
    lower_bound_rps: float | None = None  # the floor: the highest load carried within the SLO
    lower_bound_customers: float | None = None
    ceiling_rps: float | None = None  # the lowest load above the floor measured failing
    ceiling_customers: float | None = None
    unmeasured_rps: float | None = None  # the lowest load above the floor missed on a busy machine
    unmeasured_customers: float | None = None
    max_rps_arrivals: float | None = None  # the pack's max_rps, where the load stopped unfailed
    max_rps_customers: float | None = None
    knee_offered_rps: float | None = None  # where latency turns up (Kneedle), offered
    knee_customers: float | None = None
    usl: UslParameters | None = None  # the USL fit, trusted or not (``method`` says which)
    fit_tier: int | None = None  # the tier the fit used alone, 0 when it used every tier
    contention_penalty: float | None = None  # σ(N−1) at N* (or the largest N measured)
    coherency_penalty: float | None = None  # κN(N−1) at the same N
    slo_to_mean_ratio: float | None = None  # service p_slo / mean, scaling the fitted mean latency
    n_slo: float | None = None  # the concurrency where the fitted latency reaches the SLO
    x_capacity: float | None = None  # the USL's capacity within the SLO
    x_capacity_low: float | None = None  # the low end of its band
    x_capacity_high: float | None = None  # the high end of its band
    relative_band_width: float | None = None  # (high − low) / capacity; −1 when infinite
    # A load measured more than once with mixed results (the highest such): it counts as carried
    # only when most of its measurements held. None when no repeated load disagreed.
    mixed_rps: float | None = None
    mixed_customers: float | None = None
    mixed_held: int | None = None  # measurements of it that held
    mixed_of: int | None = None  # measurements of it


@dataclass(frozen=True)
class CapacityEstimate:
    """Predicted capacity in customers, with its band, and how it was obtained."""

    predicted_customers: float | None
    low: float | None
    high: float | None
    method: str  # "usl", "knee", "lower-bound", "none"
    params: CapacityParams  # the numbers behind it: the measured bounds, the USL fit, the band
    headroom: float | None  # predicted / goal
    goal_customers: int
    confidence: Literal["high", "medium", "low", "none"]
    points: tuple[tuple[float, float, float], ...] = ()  # (offered_rps, achieved_rps, concurrency)
    note: str = ""


GrowthClass = Literal["flat", "sub-linear", "linear", "super-linear", "unknown"]


@dataclass(frozen=True)
class EndpointTrend:
    """How one endpoint's service time (and response size) grows with the customers' data volume.

    ``measure`` says what the points are: ``probe-p50``, the median service time of the tier's
    unloaded probe (every tier counts, even one whose load collapsed), or ``steady-p95``, the
    steady window's service p95 (records without probes). A class is named only from three data
    volumes or more, and only when the slope's confidence interval lies within that class;
    otherwise it is ``unknown`` and ``note`` says why.
    """

    endpoint: str
    points: tuple[tuple[int, float], ...]  # (customers, ms) as ``measure`` says
    slope: float | None  # log-log slope: 0 flat, 1 linear
    slope_low: float | None
    slope_high: float | None
    growth_class: GrowthClass
    breaks_at_customers: float | None  # where the fitted curve crosses the endpoint's p95 SLO
    slo_p95_ms: float | None = None
    fixed_ms: float = 0.0  # what every request pays whatever the data, left out of the fit
    measure: Literal["probe-p50", "steady-p95"] = "steady-p95"
    note: str = ""  # why no class was named, when none was
    # The mean response size at each tier (customers, bytes), from the probes, and its fit.
    size_points: tuple[tuple[int, float], ...] = ()
    size_slope: float | None = None
    size_slope_low: float | None = None
    size_class: GrowthClass = "unknown"


@dataclass(frozen=True)
class Finding:
    id: str
    category: str  # one of CATEGORIES
    severity: Severity
    title: str  # one sentence a manager can read
    detail: str  # a paragraph an engineer can act on
    evidence: dict[str, object]
    reproduce: str  # the scaleready invocation that reruns the stage or tier
    tier: int | None = None
    endpoint: str | None = None
    # The id of the finding that explains this one (a symptom folded under its cause), if any.
    caused_by: str | None = None


@dataclass(frozen=True)
class AreaScore:
    area: Literal["correctness", "robustness", "latency", "capacity", "integrity"]
    score: float | None  # 0..100, None when not measured
    explanation: str


@dataclass(frozen=True)
class TargetInfo:
    base_url: str
    started_by_harness: bool
    command: str = ""
    # where the target's resources were read: its process tree, a Prometheus endpoint, a PID,
    # a cgroup; "" when nothing was (a --target without target.stats_*)
    resources_source: str = ""
    # the database server the harness started for the target ("PostgreSQL 15.18 ..."), or ""
    database: str = ""


@dataclass(frozen=True)
class Environment:
    """Where an audit ran (harness.environment)."""

    harness_version: str
    python: str
    platform: str  # the operating system and kernel
    cpu_model: str
    cores: int
    libraries: tuple[tuple[str, str], ...] = ()  # (name, version) of the libraries that matter


@dataclass(frozen=True)
class AuditRecord:
    """One whole audit: everything the reports are built from."""

    run_id: str
    pack: str
    profile: str
    started_at: float
    finished_at: float
    target: TargetInfo
    gate: GateResult | None
    properties: PropertiesResult | None
    tiers: tuple[TierResult, ...]
    noise_floor: NoiseFloor | None
    capacity: CapacityEstimate | None
    trends: tuple[EndpointTrend, ...]
    findings: tuple[Finding, ...]
    verdict: Verdict
    ready_up_to: int | None  # the largest tier that passed, in customers
    scores: tuple[AreaScore, ...] = ()
    partial: bool = False  # interrupted or aborted: some stages did not run
    notes: tuple[str, ...] = ()
    options: dict[str, object] = field(default_factory=dict)  # seed, workers, flaw ...
    environment: Environment | None = None
    # This run against its pack's baseline (harness.comparison); None when there was none.
    baseline: BaselineComparison | None = None
    # The latest change points of the pack's nightly series, this run included.
    change_points: tuple[ChangePoint, ...] = ()
    # One metric over that series, for the report's chart (the largest tier's p95).
    history: MetricSeries | None = None
    popularity: Popularity | None = None  # how the load picked customers (the profile's)


# --- history and comparison -------------------------------------------------------------------

#: Where a metric was measured: (tier's customers, endpoint, metric). Tier 0 is the whole run
#: (capacity, headroom); endpoint "*" is every endpoint of the tier together.
MetricKey = tuple[int, str, str]
#: A sample as (value, count) pairs in increasing value: an HDR histogram's non-empty buckets, or
#: per-window values with count 1.
Buckets = tuple[tuple[float, int], ...]


@dataclass(frozen=True)
class RunSummary:
    """One audit as the history database keeps it (harness.history.store)."""

    run_id: str
    pack: str
    profile: str
    finished_at: float  # unix time
    verdict: str
    started_at: float | None = None
    partial: bool = False
    ready_up_to: int | None = None
    capacity: float | None = None  # predicted customers
    capacity_low: float | None = None
    capacity_high: float | None = None
    headroom: float | None = None
    commit: str | None = None  # of the target, from --commit or the CI's GITHUB_SHA
    branch: str | None = None  # from GITHUB_REF_NAME
    label: str | None = None  # --label: a name the team gives the run ("after the index")
    flaw: str | None = None  # the demo's --flaw, for the harness's own tests
    harness_version: str | None = None
    cores: int | None = None
    cpu_model: str | None = None
    steal_pct: float | None = None  # the largest steal of a steady window, % of one core
    source: str = "audit"  # "audit", or "history.jsonl" for a run imported from the old history


@dataclass(frozen=True)
class RunMetrics:
    """A run with its metrics and the samples behind them: what two runs are compared on."""

    run: RunSummary
    values: dict[MetricKey, float] = field(default_factory=dict)
    # (tier, endpoint, kind) -> sample; kind "service" or "latency" (every request of the steady
    # window), "windows" (endpoint "*": each window's p95 latency)
    samples: dict[MetricKey, Buckets] = field(default_factory=dict)


ChangeKind = Literal["regression", "improvement", "unchanged"]


@dataclass(frozen=True)
class MetricChange:
    """One metric of one endpoint at one tier, in a run against its baseline.

    A regression is a change that is both significant (``p_value`` under the policy's alpha and a
    bootstrap interval that excludes no change) and larger than ``threshold``: the larger of the
    minimum effect (10 %) and the ``noise`` the history measured for this metric between runs.
    """

    tier: int
    endpoint: str
    metric: str  # "service_p50" (the median service time) or "p95" (from the intended start)
    before: float  # ms, in the baseline
    after: float  # ms, in this run
    change: float  # after / before - 1
    low: float  # 95 % bootstrap interval of the relative change
    high: float
    p_value: float  # Mann-Whitney U, two-sided, on the requests of the two steady windows
    threshold: float  # the smallest relative change called a regression here
    noise: float | None  # run-to-run noise of this metric (relative, ~2 sigma); None: too few runs
    requests_before: int
    requests_after: int
    kind: ChangeKind = "unchanged"
    noise_runs: int = 0  # the runs the noise was measured over


@dataclass(frozen=True)
class BaselineComparison:
    """A run compared with a baseline run of the same pack and profile."""

    baseline_run_id: str
    run_id: str
    pinned: bool  # the baseline was pinned (`scaleready baseline pin`), not the last READY run
    changes: tuple[MetricChange, ...] = ()  # every metric compared, regressions first
    baseline_commit: str | None = None
    baseline_finished_at: float | None = None
    note: str = ""  # why less was compared than asked (no common tier, too few requests)

    @property
    def regressions(self) -> tuple[MetricChange, ...]:
        return tuple(c for c in self.changes if c.kind == "regression")

    @property
    def improvements(self) -> tuple[MetricChange, ...]:
        return tuple(c for c in self.changes if c.kind == "improvement")


@dataclass(frozen=True)
class ChangePoint:
    """Where a metric's distribution changed across a pack's runs (E-divisive means, Otava)."""

    tier: int
    endpoint: str
    metric: str
    run_id: str  # the first run after the change
    index: int  # its position in the series (0 = the oldest run looked at)
    before: float  # the mean of the runs before the change (back to the previous change)
    after: float  # ... and after it
    shift: float  # after / before - 1
    p_value: float
    previous_run_id: str | None = None  # the last run before the change
    commit_before: str | None = None  # the commit range the change came in
    commit_after: str | None = None


@dataclass(frozen=True)
class SeriesPoint:
    run_id: str
    finished_at: float | None
    value: float
    verdict: str
    commit: str | None = None


@dataclass(frozen=True)
class MetricSeries:
    """One metric across a pack's runs, oldest first (harness.history)."""

    tier: int
    endpoint: str
    metric: str
    points: tuple[SeriesPoint, ...]
