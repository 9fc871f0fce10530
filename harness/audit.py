"""One audit, start to finish: preflight, gate, properties, noise floor, tiers, analysis, reports.

The audit calls the stages in order and keeps every record they return. Whatever happens — a
stage fails, the target dies, the user presses Ctrl-C — it still judges what was measured and
writes the reports (marked partial when something did not run). Only the CLI prints and exits:
the audit reports progress through an observer and returns an `AuditOutcome`.
"""

from __future__ import annotations

import contextlib
import os
import random
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from harness import capacity as capacity_model
from harness import history, verdict
from harness.config import Profile
from harness.errors import AuditInterrupted, ConfigError, TargetError
from harness.integrity import check_tier
from harness.load.plan import PERSONA_WEIGHTS_ENV
from harness.pacing import MAX_RPS_ENV, RequestPacer
from harness.pack import Pack, import_pack_module, provision_hook
from harness.provisioning import CustomerStore
from harness.records import AuditRecord, IntegrityResult, NoiseFloor, TargetInfo, TierResult
from harness.redaction import Redactor
from harness.report.writer import ReportPaths, check_writable, write_reports
from harness.suites import run_properties, run_regression_gate
from harness.target import ManagedTarget, StartSpec, check_target_allowed, wait_healthy
from harness.tiers import TierContext, requests_served, run_tier

STAGES = ("gate", "properties", "noise-floor", "tiers")


class AuditObserver(Protocol):
    """How the audit tells the outside world what it is doing (the CLI draws it)."""

    def stage(self, name: str, detail: str = "") -> None: ...

    def progress(self, name: str, data: dict[str, Any]) -> None: ...

    def note(self, message: str) -> None: ...


class SilentObserver:
    def stage(self, name: str, detail: str = "") -> None:
        pass

    def progress(self, name: str, data: dict[str, Any]) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass(frozen=True)
class AuditOptions:
    pack: Pack
    profile_name: str = "standard"
    reports_dir: Path = Path("reports")
    target_url: str | None = None
    workers: int = 0
    flaw: str | None = None
    seed: int | None = None
    only: tuple[str, ...] = ()  # "gate", "properties", "tiers", "tier:5000"; empty = everything
    tiers: tuple[int, ...] | None = None  # overrides the profile's and the pack's tiers
    strict: bool = False
    # Stop where the audit is after this many seconds and write what was measured (a nightly
    # job's time limit, kept by the audit itself rather than by a kill); None: no deadline.
    deadline_s: float | None = None


@dataclass(frozen=True)
class AuditOutcome:
    record: AuditRecord
    run_dir: Path
    paths: ReportPaths
    interrupted: bool = False


@dataclass
class _Collected:
    """What has been measured so far; the audit builds its record from this whatever happens."""

    gate: Any = None
    properties: Any = None
    noise_floor: NoiseFloor | None = None
    tiers: list[TierResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    partial: bool = False


def run_audit(
    options: AuditOptions,
    observer: AuditObserver | None = None,
    cancel: threading.Event | None = None,
    clock: Any = time.time,
) -> AuditOutcome:
    """Run the audit; raises ConfigError/TargetError only before anything was measured."""
    obs = observer or SilentObserver()
    cancel = cancel or threading.Event()
    pack = options.pack
    profile = pack.config.profile(options.profile_name)
    tiers = _tiers(options, profile)
    _check_flaw(options)
    url = options.target_url or pack.config.target.base_url
    if url is not None:  # refused before anything is created or sent
        check_target_allowed(url, pack.config.target.allowed_hosts, str(pack.scenario_file))
    check_writable(options.reports_dir)
    hook = provision_hook(pack)  # import errors in the pack surface now, before any load
    auth_headers = getattr(import_pack_module(pack, pack.provision_file), "auth_headers", None)
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(1, 2**31)

    started_at = clock()
    run_id = history.new_run_id(started_at)
    run_dir = history.create_run_dir(options.reports_dir.resolve(), run_id)
    # Customers' credentials live outside the run folder and are removed with it: reports
    # and logs must never hold them.
    state_dir = Path(tempfile.mkdtemp(prefix="scaleready-state-"))
    store = CustomerStore(state_dir / "customers.jsonl", run_token=run_id[-4:])
    collected = _Collected()
    target_info: TargetInfo
    interrupted = False

    target_info = TargetInfo(base_url=options.target_url or options.pack.config.target.base_url or "",
                             started_by_harness=options.target_url is None, command="")  # fmt: skip
    deadline = _Deadline(options.deadline_s, cancel)
    try:
        with _target(options, run_dir, obs, cancel) as (base_url, managed):
            target_info = TargetInfo(
                base_url=base_url,
                started_by_harness=managed is not None,
                command=managed.command if managed else "",
            )
            try:
                _run_stages(options, profile, tiers, seed, base_url, managed, hook, auth_headers,
                            run_dir, store, collected, obs, cancel)  # fmt: skip
            except KeyboardInterrupt:
                cancel.set()
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

    redactor = Redactor.for_customers(store.all())
    shutil.rmtree(state_dir, ignore_errors=True)
    record = _judge(options, profile, tiers, seed, run_id, started_at, clock(), target_info, collected)
    record = redactor.value(record)
    try:
        paths = write_reports(record, run_dir)
    finally:
        redactor.sweep(run_dir)
        history.record_run(options.reports_dir, record)
    return AuditOutcome(record=record, run_dir=run_dir, paths=paths, interrupted=interrupted)


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


def _tiers(options: AuditOptions, profile: Profile) -> tuple[int, ...]:
    tiers = options.tiers or tuple(profile.tiers or options.pack.config.tiers)
    wanted = [int(o.split(":", 1)[1]) for o in options.only if o.startswith("tier:")]
    if wanted:
        unknown = [t for t in wanted if t not in tiers]
        if unknown:
            raise ConfigError(
                f"--only tier:{unknown[0]}: no such tier; the tiers are {', '.join(map(str, tiers))}"
            )
        # A tier's data includes the smaller tiers' customers, so provisioning still grows to N.
        return tuple(t for t in tiers if t in wanted)
    return tiers


def _check_flaw(options: AuditOptions) -> None:
    flaws = options.pack.config.target.flaws
    if options.flaw is None:
        return
    if options.target_url is not None:
        raise ConfigError(
            f"--flaw {options.flaw}: flaws apply to a target the harness starts; drop --target"
        )
    if options.flaw not in flaws:
        from harness.config import suggest

        raise ConfigError(
            f"--flaw {options.flaw}: the pack '{options.pack.name}' has no such flaw"
            f"{suggest(options.flaw, flaws)}; known flaws: {', '.join(flaws) or 'none'}"
        )


@contextlib.contextmanager
def _target(
    options: AuditOptions, run_dir: Path, obs: AuditObserver, cancel: threading.Event | None = None
) -> Iterator[tuple[str, ManagedTarget | None]]:
    config = options.pack.config.target
    url = options.target_url or config.base_url
    if url is not None:
        where = f"{options.pack.scenario_file}"
        check_target_allowed(url, config.allowed_hosts, where)
        obs.stage("preflight", f"waiting for {Redactor().text(url)}")  # no password on a console
        wait_healthy(url, config.health_path, config.ready_timeout_s, cancel=cancel)
        yield url.rstrip("/"), None
        return
    if config.start is None:
        raise ConfigError(
            f"{options.pack.scenario_file}: target.start is not set and no --target URL was given; "
            "set one of them"
        )
    spec = StartSpec(
        command=config.start,
        cwd=options.pack.target_cwd,
        health_path=config.health_path,
        ready_timeout_s=config.ready_timeout_s,
        env=config.env,
        flaw=options.flaw,
        flaw_env=config.flaw_env,
    )
    managed = ManagedTarget(spec, log_path=run_dir / "target.log")
    obs.stage("preflight", f"starting the target: {managed.command}")
    managed.start(cancel=cancel)
    try:
        yield managed.base_url, managed
    finally:
        managed.stop()


def _wanted(options: AuditOptions, stage: str) -> bool:
    if not options.only:
        return True
    if stage == "tiers":
        return any(o == "tiers" or o.startswith("tier:") for o in options.only)
    if stage == "noise-floor":
        return _wanted(options, "tiers")
    return stage in options.only


def _run_stages(
    options: AuditOptions,
    profile: Profile,
    tiers: tuple[int, ...],
    seed: int,
    base_url: str,
    managed: ManagedTarget | None,
    hook: Any,
    auth_headers: Any,
    run_dir: Path,
    store: CustomerStore,
    collected: _Collected,
    obs: AuditObserver,
    cancel: threading.Event,
) -> None:
    pack = options.pack
    config = pack.config
    suite_env = {
        "SCALEREADY_TARGET_URL": base_url,
        "SCALEREADY_SEED": str(seed),
        "SCALEREADY_REQUEST_TIMEOUT_S": str(config.target.request_timeout_s),
    }
    max_rps = config.target.max_rps
    if max_rps is not None:
        suite_env[MAX_RPS_ENV] = f"{max_rps:g}"  # the pytest plugin's `http` client keeps it
    # One pacer for every request this process sends outside the load engine: the stages that
    # use it run one after another, so together they keep the cap.
    pacer = RequestPacer(max_rps) if max_rps is not None else None
    regression_dir = pack.suite_dir("regression")
    if _wanted(options, "gate") and regression_dir is not None and not cancel.is_set():
        obs.stage("gate", f"pytest {regression_dir.relative_to(pack.root)}")
        collected.gate = run_regression_gate(
            regression_dir, rootdir=pack.root, run_dir=run_dir, env=suite_env,
            timeout_s=profile.stage_timeout_s, cancel=cancel,
        )  # fmt: skip
        obs.note(f"regression gate: {collected.gate.status} ({collected.gate.passed} passed, "
                 f"{collected.gate.failed} failed)")  # fmt: skip
    properties_dir = pack.suite_dir("properties")
    if _wanted(options, "properties") and properties_dir is not None and not cancel.is_set():
        obs.stage("properties", f"{profile.hypothesis_examples} examples per property")
        collected.properties = run_properties(
            properties_dir, rootdir=pack.root, run_dir=run_dir, env=suite_env,
            examples=profile.hypothesis_examples, timeout_s=profile.stage_timeout_s,
            reproduce_prefix=_pytest_replay(pack, properties_dir, base_url, managed, seed),
            cancel=cancel,
        )  # fmt: skip
        obs.note(f"properties: {collected.properties.status} ({collected.properties.passed} passed, "
                 f"{collected.properties.failed} falsified)")  # fmt: skip

    if not _wanted(options, "tiers") or cancel.is_set():
        return
    goal_rate = config.customers.goal * config.customers.peak_rps_per_customer
    if profile.noise_floor_s > 0:
        obs.stage("noise-floor", f"null target at {min(goal_rate, 2000):g} arrivals/s")
        from harness.load.noise_floor import measure_noise_floor

        try:
            collected.noise_floor = measure_noise_floor(
                rps=min(goal_rate, 2000.0), duration_s=profile.noise_floor_s, cancel=cancel
            )
        except RuntimeError as exc:
            collected.notes.append(f"The harness's noise floor could not be measured: {exc}")

    ctx = TierContext(
        base_url=base_url,
        run_dir=run_dir,
        locustfile=pack.locustfile,
        provision_hook=hook,
        auth_headers=auth_headers,
        store=store,
        profile=profile,
        per_customer_rps=config.customers.peak_rps_per_customer,
        provision_concurrency=config.customers.provision_concurrency,
        request_timeout_s=config.target.request_timeout_s,
        seed=seed,
        persona_weights=config.customers.personas,
        workers=options.workers,
        max_rps=config.target.max_rps,
        pacer=pacer,
        stress_stop_p99_ms=_stress_stop_p99(config),
        target_alive=managed.alive if managed else None,
        target_samples=managed.samples if managed else None,
        integrity_check=_integrity_check(pack, base_url, store, profile, config.target.request_timeout_s, seed,
                                         pacer),  # fmt: skip
        env={PERSONA_WEIGHTS_ENV: ",".join(f"{k}={v:g}" for k, v in config.customers.personas.items())},
    )
    for customers in tiers:
        if cancel.is_set():
            break
        obs.stage("tier", f"{customers} customers at {customers * ctx.per_customer_rps:g} arrivals/s")
        served = sum(requests_served(t) for t in collected.tiers)
        per_iteration = capacity_model.requests_per_iteration(collected.tiers) if collected.tiers else None
        result = run_tier(customers, ctx, cancel=cancel, on_progress=obs.progress, requests_before=served,
                          requests_per_iteration=per_iteration)  # fmt: skip
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


def _when(at: float | None) -> str:
    if at is None:
        return ""
    return " at " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def _integrity_check(
    pack: Pack, base_url: str, store: CustomerStore, profile: Profile, timeout_s: float, seed: int,
    pacer: RequestPacer | None = None,
) -> Callable[[int, Path], IntegrityResult] | None:
    invariants_file = pack.invariants_file
    if invariants_file is None:
        return None

    def check(customers: int, ledger: Path) -> IntegrityResult:
        return check_tier(
            invariants_file,
            base_url=base_url,
            customers=[c for c in store.all() if int(c["index"]) < customers],
            ledger_dir=ledger,
            sample=profile.integrity_sample,
            request_timeout_s=timeout_s,
            seed=seed + customers,
            pacer=pacer,
        )

    return check


def _stress_stop_p99(config: Any) -> float:
    # Stop stress steps once latency is far past every SLO: the knee is behind us.
    worst = max([config.slo.p99_ms, *[s.p99_ms for s in config.slo.endpoints.values()]])
    return 4 * worst


def _pytest_replay(pack: Pack, folder: Path, base_url: str, managed: ManagedTarget | None, seed: int) -> str:
    target = "SCALEREADY_TARGET_URL=<url of a running target>" if managed else f"SCALEREADY_TARGET_URL={base_url}"
    return (
        f"{target} SCALEREADY_SEED={seed} python -m pytest {shlex.quote(str(folder))} "
        f"-p harness.pytest_plugin"
    )


def _judge(
    options: AuditOptions,
    profile: Profile,
    tiers: tuple[int, ...],
    seed: int,
    run_id: str,
    started_at: float,
    finished_at: float,
    target: TargetInfo,
    collected: _Collected,
) -> AuditRecord:
    config = options.pack.config
    policy = verdict_policy(options)
    measured = [t for t in collected.tiers if t.steady is not None]
    capacity = None
    trends: tuple = ()
    if measured:
        capacity = capacity_model.estimate_capacity(
            collected.tiers,
            per_customer_rps=config.customers.peak_rps_per_customer,
            goal_customers=config.customers.goal,
            latency_slo_ms=config.slo.p95_ms,
            max_error_rate=config.slo.error_rate,
        )
        trends = capacity_model.endpoint_trends(
            collected.tiers,
            slo_p95_ms={k: v.p95_ms for k, v in config.slo.endpoints.items()},
            default_slo_p95_ms=config.slo.p95_ms,
            noise_floor_ms=max(1.0, collected.noise_floor.p99_overhead_ms) if collected.noise_floor else 1.0,
            max_error_rate=config.slo.error_rate,
        )
    missing_tiers = [t for t in tiers if t not in {r.customers for r in collected.tiers}]
    partial = collected.partial or bool(missing_tiers and _wanted(options, "tiers"))
    judgement = verdict.judge(
        gate=collected.gate,
        properties=collected.properties,
        tiers=tuple(collected.tiers),
        capacity=capacity,
        trends=trends,
        noise_floor=collected.noise_floor,
        policy=policy,
        reproduce=verdict.ReproduceContext(
            pack=_pack_arg(options.pack),
            profile=options.profile_name,
            target_url=None if target.started_by_harness else target.base_url,
            started_by_harness=target.started_by_harness,
            extra_args=_extra_args(options, seed),
        ),
        partial=partial,
    )
    tier_records = tuple(
        replace(t, status=judgement.tier_status.get(t.customers, t.status)) for t in collected.tiers
    )
    notes = list(collected.notes)
    if missing_tiers and _wanted(options, "tiers"):
        notes.append(f"Tiers not run: {', '.join(map(str, missing_tiers))}.")
    return AuditRecord(
        run_id=run_id,
        pack=options.pack.name,
        profile=options.profile_name,
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
        options={
            "seed": seed,
            "workers": options.workers,
            "flaw": options.flaw,
            "tiers": list(tiers),
            "only": list(options.only),
            "profile": profile.model_dump(),
            "per_customer_rps": config.customers.peak_rps_per_customer,
            "goal_customers": config.customers.goal,
            "python_pid": os.getpid(),
        },
    )


def verdict_policy(options: AuditOptions) -> verdict.VerdictPolicy:
    slo = options.pack.config.slo
    return verdict.VerdictPolicy(
        default_slo=verdict.EndpointSlo(p95_ms=slo.p95_ms, p99_ms=slo.p99_ms),
        endpoint_slos={k: verdict.EndpointSlo(p95_ms=v.p95_ms, p99_ms=v.p99_ms) for k, v in slo.endpoints.items()},
        max_error_rate=slo.error_rate,
        goal_customers=options.pack.config.customers.goal,
        ready_headroom=slo.ready_headroom,
    )


def _pack_arg(pack: Pack) -> str:
    try:
        return str(pack.root.relative_to(Path.cwd()))
    except ValueError:
        return str(pack.root)


def _extra_args(options: AuditOptions, seed: int) -> str:
    parts = [f"--seed {seed}"]
    if options.flaw:
        parts.append(f"--flaw {options.flaw}")
    if options.workers:
        parts.append(f"--workers {options.workers}")
    return " ".join(parts)


__all__ = ["AuditObserver", "AuditOptions", "AuditOutcome", "STAGES", "run_audit", "TargetError"]
