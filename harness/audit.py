"""One audit, start to finish: preflight, gate, properties, noise floor, tiers, analysis, reports.

The audit calls the stages in order and keeps every record they return. Whatever happens — a
stage fails, the target dies, the user presses Ctrl-C — it still judges what was measured and
writes the reports (marked partial when something did not run). Only the CLI prints and exits:
the audit reports progress through an observer and returns an `AuditOutcome`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from harness import capacity as capacity_model
from harness import history, verdict
from harness.audit_plan import STAGES, AuditOptions, AuditPlan, remote_workers, resolve_plan
from harness.credentials import CREDENTIALS_ENV, CredentialRefresher, RefreshHook
from harness.credentials import HOOK_NAME as CREDENTIALS_HOOK
from harness.database import postgres_server
from harness.environment import read_environment
from harness.errors import AuditInterrupted, ConfigError, TargetError
from harness.files import check_writable
from harness.history.baseline import HistoryContext, with_history
from harness.history.rows import run_metrics
from harness.history.store import HistoryError, HistoryStore
from harness.integrity.check import check_tier
from harness.integrity.counters import CounterReadings, read_counters
from harness.integrity.overlap import probe_overlapping_writes
from harness.load.plan import PERSONA_WEIGHTS_ENV
from harness.openapi.spec import dump_json, load_spec
from harness.pacing import MAX_RPS_ENV, RequestPacer, request_hooks
from harness.pack import Pack, import_pack_module, provision_hook
from harness.progress import TierEvent
from harness.provisioning import CreateCustomer, CustomerStore, provision
from harness.records import (
    AuditRecord,
    BaselineComparison,
    CapacityEstimate,
    EndpointTrend,
    GateResult,
    IntegrityResult,
    MetricSeries,
    NoiseFloor,
    OpenApiChecks,
    OverlapProbeResult,
    Popularity,
    PropertiesResult,
    ResourceSample,
    TargetInfo,
    TierResult,
)
from harness.redaction import Redactor
from harness.report.writer import ReportPaths, write_reports
from harness.suites import (
    OPENAPI_CHECKS,
    OpenApiRun,
    run_openapi_checks,
    run_properties,
    run_regression_gate,
)
from harness.target import ManagedTarget, StartSpec, free_port, wait_healthy
from harness.target_resources import PROCESS_TREE, external_sampler
from harness.tiers import TierContext, measure_margin, requests_served, run_tier


class AuditObserver(Protocol):
    """How the audit tells the outside world what it is doing (the CLI draws it)."""

    def stage(self, name: str, detail: str = "") -> None: ...

    def progress(self, event: TierEvent) -> None: ...

    def note(self, message: str) -> None: ...


class SilentObserver:
    def stage(self, name: str, detail: str = "") -> None:
        pass

    def progress(self, event: TierEvent) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass(frozen=True)
class AuditOutcome:
    record: AuditRecord
    run_dir: Path
    paths: ReportPaths
    interrupted: bool = False


@dataclass
class Collected:
    """What has been measured so far; the audit builds its record from this whatever happens."""

    gate: GateResult | None = None
    properties: PropertiesResult | None = None
    noise_floor: NoiseFloor | None = None
    tiers: list[TierResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    partial: bool = False


@dataclass(frozen=True)
class PackHooks:
    """The pack's provisioning code, imported before anything starts (its errors surface now)."""

    create_customer: CreateCustomer
    auth_headers: Callable[[Mapping[str, Any]], Mapping[str, str]] | None
    refresh_credentials: RefreshHook | None = None


@dataclass(frozen=True)
class _Run:
    """One run's folder and its customers (their credentials kept outside the run folder)."""

    run_id: str
    run_dir: Path
    store: CustomerStore
    # The customer whose credential Schemathesis's requests carry: its own, so that the load's
    # customers hold only the data the load wrote.
    openapi_store: CustomerStore | None = None


@dataclass(frozen=True)
class RunningTarget:
    """The target as it runs: where, and the process when the harness started it."""

    base_url: str
    managed: ManagedTarget | None
    # the target's resources, from its process tree or from what the pack pointed at
    samples: Callable[[float], tuple[ResourceSample, ...]] | None = None
    resources_source: str = ""
    database: str = ""


def run_audit(
    options: AuditOptions,
    observer: AuditObserver | None = None,
    cancel: threading.Event | None = None,
    clock: Any = time.time,
) -> AuditOutcome:
    """Run the audit; raises ConfigError/TargetError only before anything was measured."""
    obs = observer or SilentObserver()
    cancel = cancel or threading.Event()
    plan = resolve_plan(options)
    check_writable(options.reports_dir)
    hooks = pack_hooks(plan.pack)

    started_at = clock()
    run_id = history.new_run_id(started_at)
    run_dir = history.create_run_dir(options.reports_dir.resolve(), run_id)
    # Customers' credentials live outside the run folder and are removed with it: reports
    # and logs must never hold them.
    state_dir = Path(tempfile.mkdtemp(prefix="scaleready-state-"))
    run = _Run(run_id, run_dir, CustomerStore(state_dir / "customers.jsonl", run_token=run_id[-4:]),
               CustomerStore(state_dir / "openapi-customers.jsonl", run_token=run_id[-4:] + "oa"))
    collected = Collected()
    target_info = TargetInfo(base_url=plan.target_url or "", started_by_harness=plan.starts_target, command="")
    start_secrets: tuple[str, ...] = ()
    deadline = _Deadline(options.deadline_s, cancel)
    try:
        with running_target(plan, run_dir, obs, cancel) as target:
            target_info = TargetInfo(
                base_url=target.base_url,
                started_by_harness=target.managed is not None,
                command=target.managed.shown_command if target.managed else "",
                resources_source=target.resources_source,
                database=target.database,
            )
            start_secrets = target.managed.secrets if target.managed else ()
            try:
                _run_stages(plan, target, hooks, run, collected, obs, cancel)
            except KeyboardInterrupt:
                cancel.set()
            if target.managed is None and target.samples is not None and not target.samples(0.0):
                collected.notes.append(
                    f"No resources could be read from {target.resources_source}: the leak and "
                    "saturation rules had nothing of the target's to judge."
                )
    except AuditInterrupted:
        # Ctrl-C while the target was starting: nothing was measured, but the run still gets
        # its (partial, INCONCLUSIVE) report, like an interruption at any later stage.
        cancel.set()
        collected.notes.append("The audit was interrupted while the target was starting.")
    except (TargetError, ConfigError):
        # Nothing was measured (exit 3, or 2): leave no credentials folder behind, and no run folder
        # unless it holds the target's log, which the error message points to.
        shutil.rmtree(state_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            run_dir.rmdir()  # only if empty
        raise
    deadline.cancel()
    interrupted = cancel.is_set()
    if deadline.reached:
        collected.notes.append(
            f"The audit reached its deadline (--deadline {_duration(options.deadline_s or 0)}) and stopped "
            "the stage it was in; give it more time or fewer tiers for a full verdict."
        )
    if interrupted:
        collected.partial = True
        collected.notes.append("The audit was interrupted: this report holds what was measured until then.")

    openapi_customers = run.openapi_store.all() if run.openapi_store is not None else []
    redactor = Redactor.for_customers([*run.store.all(), *openapi_customers], also=start_secrets)
    shutil.rmtree(state_dir, ignore_errors=True)
    past = _history(options.reports_dir, plan, run_id, collected)
    record = _judge(plan, run_id, started_at, clock(), target_info, collected, past.baseline)
    record = replace(record, change_points=past.change_points, history=_with_verdict(past.series, record.verdict))
    record = redactor.value(record)
    try:
        paths = write_reports(record, run_dir)
    finally:
        redactor.sweep(run_dir)
        history.record_run(options.reports_dir, record)
        _remember(options.reports_dir, record, obs)
    return AuditOutcome(record=record, run_dir=run_dir, paths=paths, interrupted=interrupted)


def _with_verdict(series: MetricSeries | None, verdict: str) -> MetricSeries | None:
    """The series' last point is this run, whose verdict was not known when it was read."""
    if series is None or not series.points:
        return series
    return replace(series, points=(*series.points[:-1], replace(series.points[-1], verdict=verdict)))


def _history(reports_dir: Path, plan: AuditPlan, run_id: str, collected: Collected) -> HistoryContext:
    """This run against the pack's baseline run, and the change points of the series it ends; an
    unreadable history is a note, not a failure. A partial or flawed run is compared with nothing."""
    if collected.partial or plan.options.flaw not in (None, "none"):
        return HistoryContext()
    capacity, _trends = _analyse(plan, collected)
    try:
        return with_history(reports_dir, pack=plan.pack.name, profile=plan.options.profile_name, run_id=run_id,
                            tiers=collected.tiers, capacity=capacity.predicted_customers if capacity else None)  # fmt: skip
    except HistoryError as exc:
        collected.notes.append(f"Not compared with a baseline: {exc}.")
        return HistoryContext()


def _remember(reports_dir: Path, record: AuditRecord, obs: AuditObserver) -> None:
    """Keep the run in the history database; an unreadable database costs the history, not the run."""
    try:
        with HistoryStore(reports_dir) as store:
            store.add_run(run_metrics(record))
    except HistoryError as exc:
        obs.note(f"history: {exc}")


def pack_hooks(pack: Pack) -> PackHooks:
    create = provision_hook(pack)
    module = import_pack_module(pack, pack.provision_file)
    auth_headers = getattr(module, "auth_headers", None)
    refresh = getattr(module, CREDENTIALS_HOOK, None)
    return PackHooks(create_customer=create, auth_headers=auth_headers,
                     refresh_credentials=refresh if callable(refresh) else None)  # fmt: skip


class _Deadline:
    """Sets ``cancel`` after ``seconds`` (the same path as Ctrl-C: a partial report)."""

    def __init__(self, seconds: float | None, cancel: threading.Event) -> None:
        self.reached = False
        self._cancel = cancel
        self._timer = threading.Timer(seconds, self._fire) if seconds else None
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        self.reached = not self._cancel.is_set()
        self._cancel.set()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


@contextlib.contextmanager
def running_target(
    plan: AuditPlan, run_dir: Path, obs: AuditObserver, cancel: threading.Event | None = None
) -> Iterator[RunningTarget]:
    config = plan.pack.config.target
    if plan.target_url is not None:
        obs.stage("preflight", f"waiting for {Redactor().text(plan.target_url)}")  # no password on a console
        wait_healthy(plan.target_url, config.health_path, config.ready_timeout_s, cancel=cancel)
        if plan.profile.database != "pack":
            obs.note(f"the profile's database = \"{plan.profile.database}\" is for a target the harness starts; "
                     "--target's service keeps its own")  # fmt: skip
        sampler = external_sampler(config, plan.target_url)
        if sampler is None:
            yield RunningTarget(plan.target_url, None)
            return
        obs.stage("preflight", f"reading the target's resources from {sampler.source}")
        if sampler.sample_once() is None and sampler.readings == 0:
            obs.note(f"{sampler.source} gave no reading yet (no process_resident_memory_bytes?); sampling goes on")
        sampler.start()
        try:
            yield RunningTarget(plan.target_url, None, sampler.samples, sampler.source)
        finally:
            sampler.stop()
        return
    assert config.start is not None  # resolve_plan refused a pack with neither
    with contextlib.ExitStack() as stack:
        env = {**config.env, **plan.profile.target_env}
        placeholders: dict[str, str] = {}
        database = ""
        database_pids: tuple[int, ...] = ()
        if plan.profile.database == "postgresql":
            obs.stage("preflight", "starting a throwaway PostgreSQL server for the target")
            server = stack.enter_context(postgres_server(free_port(), run_dir / "postgres.log"))
            env["DATABASE_URL"] = placeholders["database_url"] = server.url
            database_pids = (server.pid,)
            database = f"PostgreSQL {server.version}, started by the harness in a throwaway data directory"
        spec = StartSpec(
            command=config.start,
            cwd=plan.pack.target_cwd,
            health_path=config.health_path,
            ready_timeout_s=config.ready_timeout_s,
            env=env,
            flaw=plan.options.flaw,
            flaw_env=config.flaw_env,
            secrets=tuple(config.secrets),
            placeholders=placeholders,
            cpu_also_of=database_pids,
        )
        managed = ManagedTarget(spec, log_path=run_dir / "target.log")
        obs.stage("preflight", f"starting the target: {managed.shown_command}")
        managed.start(cancel=cancel)
        # Stopped before the database server (the ExitStack unwinds in reverse).
        stack.callback(managed.stop)
        yield RunningTarget(managed.base_url, managed, managed.samples, PROCESS_TREE, database)


def _run_stages(
    plan: AuditPlan,
    target: RunningTarget,
    hooks: PackHooks,
    run: _Run,
    collected: Collected,
    obs: AuditObserver,
    cancel: threading.Event,
) -> None:
    max_rps = plan.pack.config.target.max_rps
    # One pacer for every request this process sends outside the load engine: the stages that
    # use it run one after another, so together they keep the cap.
    pacer = RequestPacer(max_rps) if max_rps is not None else None
    run_suites(plan, target, run.run_dir, collected, obs, cancel, hooks=hooks, openapi_store=run.openapi_store)
    if not plan.runs("tiers") or cancel.is_set():
        return
    _measure_noise_floor(plan, collected, obs, cancel)
    ctx = _tier_context(plan, target, hooks, run, pacer)
    for customers in plan.tiers:
        if cancel.is_set():
            break
        obs.stage("tier", f"{customers} customers at {customers * ctx.per_customer_rps:g} arrivals/s")
        served = sum(requests_served(t) for t in collected.tiers)
        per_iteration = capacity_model.requests_per_iteration(collected.tiers) if collected.tiers else None
        result = run_tier(customers, ctx, cancel=cancel, on_progress=obs.progress, requests_before=served,
                          requests_per_iteration=per_iteration)  # fmt: skip
        result = _at_the_margin(plan, result, ctx, obs, cancel, served)
        managed = target.managed
        if managed is not None and not managed.alive():
            when = _when(managed.exited_at)
            result = replace(result, reason=f"{result.reason} (the process exited with code "
                                            f"{managed.exit_code}{when})")  # fmt: skip
            collected.tiers.append(result)
            collected.notes.append(
                f"The target process exited (code {managed.exit_code}{when}) during the {customers}-customer "
                "tier; later tiers were not run."
            )
            collected.partial = True
            break
        collected.tiers.append(result)
        if result.status == "invalid" and result.steady is None:
            collected.notes.append(f"Tier {customers} could not be measured: {result.reason}")
            break


def _at_the_margin(
    plan: AuditPlan, result: TierResult, ctx: TierContext, obs: AuditObserver, cancel: threading.Event,
    served: int,
) -> TierResult:
    """At the goal's tier, measure the READY threshold again when the verdict would rest on one
    window there (harness.capacity.margin_factors)."""
    config = plan.pack.config
    if result.customers < config.customers.goal or not plan.profile.margin_repeats or result.status != "passed":
        return result
    factors = capacity_model.margin_factors(
        result, goal_customers=config.customers.goal, ready_headroom=config.slo.ready_headroom,
        latency_slo_ms=config.slo.p95_ms, max_error_rate=config.slo.error_rate,
    )[: plan.profile.margin_repeats]  # fmt: skip
    if not factors:
        return result
    obs.stage("tier", f"{result.customers} customers: {len(factors)} more window(s) at x{factors[0]:g}, the READY threshold")
    return measure_margin(result, factors, ctx, cancel=cancel, on_progress=obs.progress, requests_before=served)


def suite_env(plan: AuditPlan, base_url: str) -> dict[str, str]:
    config = plan.pack.config
    env = {
        "SCALEREADY_TARGET_URL": base_url,
        "SCALEREADY_SEED": str(plan.seed),
        "SCALEREADY_REQUEST_TIMEOUT_S": str(config.target.request_timeout_s),
    }
    if config.target.max_rps is not None:
        env[MAX_RPS_ENV] = f"{config.target.max_rps:g}"  # the pytest plugin's `http` client keeps it
    return env


def run_suites(
    plan: AuditPlan, target: RunningTarget, run_dir: Path, collected: Collected, obs: AuditObserver,
    cancel: threading.Event, gate_args: tuple[str, ...] = (), hooks: PackHooks | None = None,
    openapi_store: CustomerStore | None = None,
) -> None:
    """The regression gate and the properties, each a pytest run against the target; ``gate_args``
    go to the gate's pytest. With ``suite.openapi`` and the pack's ``hooks``, the properties also
    run Schemathesis's checks (as a customer provisioned into ``openapi_store`` when the document
    asks for credentials)."""
    pack, profile = plan.pack, plan.profile
    env = suite_env(plan, target.base_url)
    regression_dir = pack.suite_dir("regression")
    if plan.runs("gate") and regression_dir is not None and not cancel.is_set():
        obs.stage("gate", f"pytest {regression_dir.relative_to(pack.root)}")
        collected.gate = run_regression_gate(
            regression_dir, rootdir=pack.root, run_dir=run_dir, env=env,
            timeout_s=profile.stage_timeout_s, cancel=cancel, extra_args=gate_args,
        )  # fmt: skip
        obs.note(f"regression gate: {collected.gate.status} ({collected.gate.passed} passed, "
                 f"{collected.gate.failed} failed)")  # fmt: skip
    properties_dir = pack.suite_dir("properties")
    if plan.runs("properties") and properties_dir is not None and not cancel.is_set():
        obs.stage("properties", f"{profile.hypothesis_examples} examples per property")
        collected.properties = run_properties(
            properties_dir, rootdir=pack.root, run_dir=run_dir, env=env,
            examples=profile.hypothesis_examples, timeout_s=profile.stage_timeout_s,
            reproduce_prefix=_pytest_replay(plan, properties_dir, target.base_url), cancel=cancel,
        )  # fmt: skip
        obs.note(f"properties: {collected.properties.status} ({collected.properties.passed} passed, "
                 f"{collected.properties.failed} falsified)")  # fmt: skip
    if plan.runs("properties") and pack.config.suite.openapi and hooks is not None and not cancel.is_set():
        obs.stage("properties", f"Schemathesis: {profile.schemathesis_examples} examples per operation "
                                f"of {pack.config.suite.openapi}")  # fmt: skip
        checks = openapi_checks(plan, target, run_dir, env, hooks, openapi_store, cancel)
        obs.note(f"schemathesis: {checks.status} ({checks.passed} of {checks.operations} operations passed, "
                 f"{len(checks.failures)} failures)")  # fmt: skip
        collected.properties = with_openapi(collected.properties, checks)


def openapi_checks(
    plan: AuditPlan, target: RunningTarget, run_dir: Path, env: Mapping[str, str], hooks: PackHooks,
    store: CustomerStore | None, cancel: threading.Event,
) -> OpenApiChecks:
    """Schemathesis's checks on every operation of the pack's OpenAPI document."""
    pack, profile = plan.pack, plan.profile
    config = pack.config
    source = config.suite.openapi or ""
    where = str(pack.openapi_file) if pack.openapi_file is not None else (
        target.base_url + source if source.startswith("/") else source)  # fmt: skip
    try:
        spec = load_spec(where, allowed_hosts=config.target.allowed_hosts)
    except ConfigError as exc:
        return OpenApiChecks(status="error", source=source, operations=0, passed=0,
                             examples_per_operation=profile.schemathesis_examples, seed=plan.seed, checks=OPENAPI_CHECKS,
                             duration_s=0.0, junit="", authenticated=False, max_rps=config.target.max_rps,
                             note=f"The OpenAPI document could not be read: {exc}")  # fmt: skip
    document = run_dir / "openapi.json"
    document.write_text(dump_json(spec), encoding="utf-8")
    headers, note = openapi_credential(
        hooks, store, secured=spec.auth is not None or any(op.secured for op in spec.operations),
        base_url=target.base_url, seed=plan.seed, request_timeout_s=config.target.request_timeout_s,
        max_rps=config.target.max_rps, cancel=cancel,
    )
    run = OpenApiRun(document=document, source=source, examples=profile.schemathesis_examples, seed=plan.seed,
                     timeout_s=profile.schemathesis_time_s, headers=headers, max_rps=config.target.max_rps,
                     note=note)  # fmt: skip
    return run_openapi_checks(run, run_dir=run_dir, env=env, cancel=cancel)


def openapi_credential(
    hooks: PackHooks, store: CustomerStore | None, *, secured: bool, base_url: str, seed: int,
    request_timeout_s: float, max_rps: float | None, cancel: threading.Event,
) -> tuple[dict[str, str], str]:
    """The headers of one customer provisioned for Schemathesis when the document asks for
    credentials (``secured``), and a note when its requests go without them."""
    if not secured:
        return {}, ""
    if hooks.auth_headers is None or store is None:
        return {}, ("The document asks for credentials, but provision.py has no auth_headers(customer): "
                    "Schemathesis's requests carried none.")  # fmt: skip
    result = provision(hooks.create_customer, store, base_url=base_url, upto=1, concurrency=1, seed=seed,
                       timeout_s=request_timeout_s, cancel=cancel,
                       pacer=RequestPacer(max_rps) if max_rps is not None else None)  # fmt: skip
    customers = store.all()
    if not customers:
        why = result.errors[0] if result.errors else "no customer was created"
        return {}, f"No customer could be provisioned for Schemathesis ({why}): its requests carried no credential."
    return {str(k): str(v) for k, v in hooks.auth_headers(customers[0]).items()}, ""


def with_openapi(props: PropertiesResult | None, checks: OpenApiChecks) -> PropertiesResult:
    """The properties stage's result with Schemathesis's checks beside the pack's own properties
    (whose status stays theirs: "skipped" when the pack has none)."""
    if props is None:
        props = PropertiesResult(status="skipped", passed=0, failed=0, duration_s=0.0, examples_per_property=0, junit="")
    return replace(props, duration_s=round(props.duration_s + checks.duration_s, 2), openapi=checks)


def _measure_noise_floor(plan: AuditPlan, collected: Collected, obs: AuditObserver, cancel: threading.Event) -> None:
    customers = plan.pack.config.customers
    goal_rate = customers.goal * customers.peak_rps_per_customer
    if plan.profile.noise_floor_s <= 0:
        return
    obs.stage("noise-floor", f"null target at {min(goal_rate, 2000):g} arrivals/s")
    from harness.load.noise_floor import measure_noise_floor

    try:
        collected.noise_floor = measure_noise_floor(
            rps=min(goal_rate, 2000.0), duration_s=plan.profile.noise_floor_s, cancel=cancel
        )
    except RuntimeError as exc:
        collected.notes.append(f"The harness's noise floor could not be measured: {exc}")


def _tier_context(plan: AuditPlan, target: RunningTarget, hooks: PackHooks, run: _Run, pacer: RequestPacer | None) -> TierContext:
    config = plan.pack.config
    managed = target.managed
    env = {PERSONA_WEIGHTS_ENV: ",".join(f"{k}={v:g}" for k, v in config.customers.personas.items())}
    credentials = None
    if hooks.refresh_credentials is not None:
        credentials = CredentialRefresher.for_target(
            hooks.refresh_credentials, target.base_url, config.target.request_timeout_s,
            auth_headers=hooks.auth_headers, event_hooks=request_hooks(pacer),
        )  # fmt: skip
        env[CREDENTIALS_ENV] = str(plan.pack.provision_file)
    return TierContext(
        base_url=target.base_url,
        run_dir=run.run_dir,
        locustfile=plan.pack.locustfile,
        provision_hook=hooks.create_customer,
        auth_headers=hooks.auth_headers,
        store=run.store,
        profile=plan.profile,
        per_customer_rps=config.customers.peak_rps_per_customer,
        provision_concurrency=config.customers.provision_concurrency,
        request_timeout_s=config.target.request_timeout_s,
        seed=plan.seed,
        persona_weights=config.customers.personas,
        workers=plan.options.workers,
        remote=remote_workers(plan.options),
        pack_dir=plan.pack.root,
        max_rps=config.target.max_rps,
        pacer=pacer,
        stress_stop_p99_ms=_stress_stop_p99(plan),
        target_alive=managed.alive if managed else None,
        target_samples=target.samples,
        integrity_check=_integrity_check(plan, target.base_url, run.store, pacer, credentials),
        counters_before=_counters_before(plan, target.base_url, run.store, pacer, credentials),
        overlap_probe=_overlap_probe(plan, target.base_url, run.store, pacer),
        env=env,
        credentials=credentials,
    )


def _when(at: float | None) -> str:
    if at is None:
        return ""
    return " at " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def _integrity_check(
    plan: AuditPlan, base_url: str, store: CustomerStore, pacer: RequestPacer | None,
    credentials: CredentialRefresher | None = None,
) -> Callable[[int, Path, CounterReadings | None], IntegrityResult] | None:
    invariants_file = plan.pack.invariants_file
    if invariants_file is None:
        return None

    def check(customers: int, ledger: Path, counters: CounterReadings | None) -> IntegrityResult:
        return check_tier(
            invariants_file,
            base_url=base_url,
            customers=_customers_up_to(store, customers),
            ledger_dir=ledger,
            sample=plan.profile.integrity_sample,
            request_timeout_s=plan.pack.config.target.request_timeout_s,
            seed=plan.seed + customers,
            pacer=pacer,
            counters_before=counters,
            credentials=credentials,
        )

    return check


def _customers_up_to(store: CustomerStore, customers: int) -> list[dict[str, Any]]:
    """The tier's customers: those provisioned with an index below its customer count."""
    return [c for c in store.all() if int(c["index"]) < customers]


def _overlap_probe(
    plan: AuditPlan, base_url: str, store: CustomerStore, pacer: RequestPacer | None
) -> Callable[[int, Path], OverlapProbeResult | None] | None:
    invariants_file = plan.pack.invariants_file
    if invariants_file is None or plan.profile.overlap_rounds == 0:
        return None

    def probe(customers: int, ledger: Path) -> OverlapProbeResult | None:
        return probe_overlapping_writes(
            invariants_file,
            base_url=base_url,
            customers=_customers_up_to(store, customers),
            ledger_dir=ledger,
            rounds=plan.profile.overlap_rounds,
            concurrency=plan.profile.overlap_concurrency,
            request_timeout_s=plan.pack.config.target.request_timeout_s,
            pacer=pacer,
        )

    return probe


def _counters_before(
    plan: AuditPlan, base_url: str, store: CustomerStore, pacer: RequestPacer | None,
    credentials: CredentialRefresher | None = None,
) -> Callable[[int], CounterReadings] | None:
    invariants_file = plan.pack.invariants_file
    if invariants_file is None:
        return None

    def read(customers: int) -> CounterReadings:
        return read_counters(
            invariants_file,
            base_url=base_url,
            customers=_customers_up_to(store, customers),
            sample=plan.profile.integrity_sample,
            request_timeout_s=plan.pack.config.target.request_timeout_s,
            pacer=pacer,
            credentials=credentials,
        )

    return read


def _stress_stop_p99(plan: AuditPlan) -> float:
    # Stop stress steps once latency is far past every SLO: the knee is behind us.
    slo = plan.pack.config.slo
    return 4 * max([slo.p99_ms, *[s.p99_ms for s in slo.endpoints.values()]])


def _pytest_replay(plan: AuditPlan, folder: Path, base_url: str) -> str:
    target = ("SCALEREADY_TARGET_URL=<url of a running target>" if plan.starts_target
              else f"SCALEREADY_TARGET_URL={base_url}")  # fmt: skip
    return (
        f"{target} SCALEREADY_SEED={plan.seed} python -m pytest {shlex.quote(str(folder))} "
        f"-p harness.pytest_plugin"
    )


def _judge(
    plan: AuditPlan, run_id: str, started_at: float, finished_at: float, target: TargetInfo, collected: Collected,
    comparison: BaselineComparison | None = None,
) -> AuditRecord:
    config = plan.pack.config
    capacity, trends = _analyse(plan, collected)
    missing_tiers = [t for t in plan.tiers if t not in {r.customers for r in collected.tiers}]
    partial = collected.partial or bool(missing_tiers and plan.runs("tiers"))
    partial_reason = _partial_reason(collected, missing_tiers)
    judgement = verdict.judge(
        gate=collected.gate,
        properties=collected.properties,
        tiers=tuple(collected.tiers),
        capacity=capacity,
        trends=trends,
        noise_floor=collected.noise_floor,
        policy=plan.policy,
        reproduce=plan.reproduce(target.base_url),
        partial=partial,
        partial_reason=partial_reason,
        baseline=comparison,
    )
    # The stage said whether it could measure each tier; the verdict says whether it passed.
    tier_records = tuple(
        replace(t, status=judgement.tier_status.get(t.customers, t.status),
                slo_checks=judgement.tier_checks.get(t.customers))
        for t in collected.tiers
    )
    notes = list(collected.notes)
    if missing_tiers and plan.runs("tiers"):
        notes.append(f"Tiers not run: {', '.join(map(str, missing_tiers))}.")
    return AuditRecord(
        run_id=run_id,
        pack=plan.pack.name,
        profile=plan.options.profile_name,
        started_at=started_at,
        finished_at=finished_at,
        target=target,
        gate=collected.gate,
        properties=collected.properties,
        tiers=tier_records,
        noise_floor=collected.noise_floor,
        capacity=capacity,
        trends=trends,
        findings=judgement.findings,
        verdict=judgement.verdict,
        ready_up_to=judgement.ready_up_to,
        scores=judgement.scores,
        partial=partial,
        notes=tuple(notes) + tuple(judgement.reasons),
        environment=read_environment(),
        baseline=comparison,
        popularity=Popularity(plan.profile.popularity, plan.profile.zipf_exponent),
        options={
            "seed": plan.seed,
            "workers": plan.options.workers,
            "remote_workers": plan.options.expect_workers,
            "flaw": plan.options.flaw,
            "tiers": list(plan.tiers),
            "only": list(plan.options.only),
            "profile": plan.profile.model_dump(),
            "per_customer_rps": config.customers.peak_rps_per_customer,
            "goal_customers": config.customers.goal,
            "slo": config.slo.model_dump(),  # the objectives the reports draw and explain
            "python_pid": os.getpid(),
            "label": plan.options.label,
            "commit": plan.options.commit,
            "branch": plan.options.branch,
        },
    )


def _partial_reason(collected: Collected, missing_tiers: Sequence[int]) -> str:
    """Why the audit is partial, in one sentence (the first that applies)."""
    if collected.partial:
        for word, why in (("deadline", "The audit reached its deadline"), ("exited", "The target process exited"),
                          ("interrupted", "The audit was interrupted")):
            if any(word in n for n in collected.notes):
                return why
        return "The audit stopped early"
    if missing_tiers:
        last = collected.tiers[-1] if collected.tiers else None
        after = f" after the {last.customers}-customer tier could not be measured" if last is not None else ""
        return f"Tiers {', '.join(map(str, missing_tiers))} were not run{after}"
    return ""


def _analyse(plan: AuditPlan, collected: Collected) -> tuple[CapacityEstimate | None, tuple[EndpointTrend, ...]]:
    """Capacity and the data-volume trends, from the tiers that measured a steady window."""
    if not any(t.steady is not None for t in collected.tiers):
        return None, ()
    config = plan.pack.config
    capacity = capacity_model.estimate_capacity(
        collected.tiers,
        per_customer_rps=config.customers.peak_rps_per_customer,
        goal_customers=config.customers.goal,
        latency_slo_ms=config.slo.p95_ms,
        max_error_rate=config.slo.error_rate,
    )
    floor = collected.noise_floor
    trends = capacity_model.endpoint_trends(
        collected.tiers,
        slo_p95_ms={k: v.p95_ms for k, v in config.slo.endpoints.items()},
        default_slo_p95_ms=config.slo.p95_ms,
        noise_floor_ms=max(1.0, floor.p99_overhead_ms) if floor else 1.0,
        max_error_rate=config.slo.error_rate,
    )
    return capacity, trends


__all__ = ["STAGES", "AuditObserver", "AuditOptions", "AuditOutcome", "run_audit"]
