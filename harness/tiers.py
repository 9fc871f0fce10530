"""One tier: N customers' data and N customers' peak traffic.

Provision up to N customers, run the load plan (warm-up, steady window, stress steps) in the load
engine's child process, replay the server errors seen under load once with no other load, check
integrity, and return a `TierResult`. The tier's final pass/fail status is the verdict's call;
this stage only says whether the measurement itself is valid.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from harness.config import Profile
from harness.credentials import CredentialRefresher, RefreshCounts, RefreshOnRefusal
from harness.integrity.counters import CounterReadings
from harness.integrity.ledger import LEDGER_DIR_ENV
from harness.load.plan import LoadPlan, PhasePlan, RemoteWorkers
from harness.load.stage import LoadOutcome, run_load
from harness.pacing import RequestPacer, request_hooks
from harness.progress import Provisioning, TierEvent, TierStep
from harness.provisioning import CreateCustomer, CustomerStore, provision
from harness.records import (
    ErrorSample,
    IntegrityResult,
    OverlapProbeResult,
    PhaseMeasurement,
    Popularity,
    ProvisioningResult,
    ReplayedError,
    ResourceSample,
    TierResult,
    TierStatus,
)
from harness.validity import with_other_work

MAX_REPLAYS = 20
# The second provisioning pass, for customers a parallel first pass could not create.
RETRY_PROVISION_CONCURRENCY = 2


@dataclass(frozen=True)
class TierContext:
    """What every tier of one audit shares."""

    base_url: str
    run_dir: Path
    locustfile: Path
    provision_hook: CreateCustomer
    auth_headers: Callable[[Mapping[str, Any]], Mapping[str, str]] | None
    store: CustomerStore
    profile: Profile
    per_customer_rps: float
    provision_concurrency: int
    request_timeout_s: float
    seed: int
    persona_weights: Mapping[str, float]
    workers: int = 0
    remote: RemoteWorkers | None = None  # workers on other hosts, and the master's address
    pack_dir: Path | None = None  # the folder every worker host holds a copy of
    max_rps: float | None = None
    pacer: RequestPacer | None = None  # max_rps for the requests sent outside the load engine
    stress_stop_p99_ms: float | None = None
    target_alive: Callable[[], bool] | None = None
    target_samples: Callable[[float], tuple[ResourceSample, ...]] | None = None
    # (customers, ledger folder, the counters read before the load) -> the tier's integrity
    integrity_check: Callable[[int, Path, CounterReadings | None], IntegrityResult] | None = None
    # the pack's @counter values before the tier's load, for the integrity check to compare
    counters_before: Callable[[int], CounterReadings] | None = None
    # (customers, ledger folder) -> the overlap probe's writes, recorded in that ledger
    overlap_probe: Callable[[int, Path], OverlapProbeResult | None] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    # the pack's refresh_credentials, for the requests sent after the load (replays, checks)
    credentials: CredentialRefresher | None = None


TierProgress = Callable[[TierEvent], None]


def run_tier(
    customers: int,
    ctx: TierContext,
    *,
    cancel: threading.Event,
    on_progress: TierProgress | None = None,
    requests_before: int = 0,
    requests_per_iteration: float | None = None,
) -> TierResult:
    """Measure one tier. `requests_before`: requests the load engine completed in earlier tiers,
    so that the target's resource samples count requests served across the whole audit.
    `requests_per_iteration`: measured at earlier tiers (None: not yet), to keep the arrivals
    under the pack's max_rps, which counts requests."""
    offered = customers * ctx.per_customer_rps
    started = time.time()
    notify: TierProgress = on_progress or (lambda event: None)
    prov = _provision(customers, ctx, cancel, notify)
    if cancel.is_set():
        return _unmeasured(customers, offered, prov, "skipped", "interrupted while provisioning")
    target_gone = ctx.target_alive is not None and not ctx.target_alive()
    if prov.customers == 0 or target_gone:
        reason = (
            f"only {prov.customers} of {customers} customers could be created "
            f"({prov.missing} missing; first failure: {prov.errors[0] if prov.errors else 'unknown'})"
        )
        return _unmeasured(customers, offered, prov, "invalid",
                           ("the target exited while provisioning; " if target_gone else "") + reason)  # fmt: skip
    # Some customers could not be created: the tier goes on with those that exist (the verdict
    # judges the failures, and the integrity checks run on the customers there are).

    # Read after provisioning (which writes too) and before any of the tier's own writes.
    counters = ctx.counters_before(customers) if ctx.counters_before is not None and ctx.integrity_check else None
    cap = max_arrivals(ctx.max_rps, requests_per_iteration)
    plan = _plan(customers, offered, ctx, cap)
    wanted = offered * max([1.0, *ctx.profile.stress_factors])
    outcome = run_load(plan, on_progress=notify, cancel=cancel)
    phases = outcome.phases
    alive = ctx.target_alive() if ctx.target_alive is not None else True
    refreshes_before = ctx.credentials.counts if ctx.credentials is not None else RefreshCounts()
    replays: tuple[ReplayedError, ...] = ()
    if alive and not cancel.is_set():
        notify(TierStep("replay"))
        replays = replay_server_errors(phases, ctx)
    overlap: OverlapProbeResult | None = None
    if alive and not cancel.is_set() and ctx.overlap_probe is not None and ctx.integrity_check is not None:
        notify(TierStep("overlap"))
        overlap = ctx.overlap_probe(customers, ledger_dir(Path(plan.output_dir)))
    integrity: IntegrityResult | None = None
    if alive and not cancel.is_set() and ctx.integrity_check is not None:
        notify(TierStep("integrity"))
        integrity = ctx.integrity_check(customers, ledger_dir(Path(plan.output_dir)), counters)
    samples = count_requests(ctx.target_samples(started) if ctx.target_samples is not None else (),
                             phases, requests_before)  # fmt: skip
    # A crowded phase is still a measurement: the verdict and the capacity model use it only if
    # it met its SLOs anyway (busy-machine noise only adds latency).
    measured = [with_other_work(p, p.target_cpu_pct(samples)) for p in phases]
    steady = next((p for p in measured if p.kind == "steady"), None)
    status, reason = _stage_status(outcome, steady, offered, alive, cancel, ctx.max_rps, requests_per_iteration)
    refreshes = ctx.credentials.counts if ctx.credentials is not None else RefreshCounts()
    return TierResult(
        customers=customers,
        status=status,
        offered_rps=round(offered, 3),
        provisioning=prov,
        warmup=next((p for p in phases if p.kind == "warmup"), None),
        probe=next((p for p in phases if p.kind == "probe"), None),
        steady=steady,
        stress=tuple(p for p in measured if p.kind == "stress"),
        integrity=integrity,
        overlap=overlap,
        replayed_errors=replays,
        resources=samples,
        reason=reason,
        max_rps_arrivals=cap if cap < wanted else None,  # a phase reduced or a stress step left out
        credential_refreshes=refreshes.refreshed - refreshes_before.refreshed,
        credential_refresh_failures=refreshes.failed - refreshes_before.failed,
    )


def _provision(customers: int, ctx: TierContext, cancel: threading.Event, notify: TierProgress) -> ProvisioningResult:
    """Create the customers the tier still lacks; a second, gentle pass for those a parallel
    first pass could not create."""
    def progress(done: int, total: int) -> None:
        notify(Provisioning(customers, done, total))

    notify(Provisioning(customers, 0, max(0, customers - len(ctx.store))))
    prov = provision(
        ctx.provision_hook, ctx.store, base_url=ctx.base_url, upto=customers,
        concurrency=ctx.provision_concurrency, seed=ctx.seed, timeout_s=ctx.request_timeout_s,
        cancel=cancel, on_progress=progress, pacer=ctx.pacer,
    )  # fmt: skip
    prov = replace(prov, wanted=customers)
    alive_now = ctx.target_alive() if ctx.target_alive is not None else True
    # Only a target that created some customers gets a second pass: one that creates none would
    # spend a timeout on every customer again.
    if not (0 < prov.customers < customers and alive_now and not cancel.is_set()):
        return prov
    # Provisioning is resumable: a target that refuses part of a parallel sign-up burst (a busy
    # pool, a lock timeout) gets a second, gentle pass for the missing customers. The tier's load
    # then measures that target's behaviour under concurrency as it should.
    again = provision(
        ctx.provision_hook, ctx.store, base_url=ctx.base_url, upto=customers,
        concurrency=RETRY_PROVISION_CONCURRENCY, seed=ctx.seed, timeout_s=ctx.request_timeout_s,
        cancel=cancel, pacer=ctx.pacer, on_progress=progress,
    )  # fmt: skip
    return replace(
        again,
        created=prov.created + again.created,
        failed=prov.failed + again.failed,
        duration_s=round(prov.duration_s + again.duration_s, 3),
        errors=(prov.errors + again.errors)[: max(len(prov.errors), 5)],
        wanted=customers,
        retried=again.created,
    )


def _stage_status(
    outcome: LoadOutcome, steady: PhaseMeasurement | None, offered: float, alive: bool, cancel: threading.Event,
    max_rps: float | None, requests_per_iteration: float | None,
) -> tuple[TierStatus, str]:
    """Whether the stage could measure the tier (whether it passed is the verdict's call)."""
    if cancel.is_set() or outcome.interrupted:
        return "invalid", "interrupted during the load"
    if not alive:
        return "invalid", "the target stopped answering: its process exited during the load"
    if outcome.error:
        return "invalid", f"the load engine failed: {outcome.error}"
    if steady is None:
        return "invalid", "no steady window was measured"
    if steady.offered_rps < 0.999 * offered:
        return "invalid", (
            f"the pack's max_rps ({max_rps or 0:g} requests/s) held this tier to {steady.offered_rps:.4g} of "
            f"its {offered:.4g} arrivals/s (an action makes about {requests_per_iteration or 1:.2g} requests), "
            "so the tier was not measured at its own load; raise max_rps or leave the tier out"
        )
    return "passed", ""


def measure_margin(
    result: TierResult,
    factors: Sequence[float],
    ctx: TierContext,
    *,
    cancel: threading.Event,
    on_progress: TierProgress | None = None,
    requests_before: int = 0,
) -> TierResult:
    """The tier with its stress steps at ``factors`` (multiples of its load) measured once more,
    after a short warm-up in a fresh load process: the load at the READY threshold, repeated so
    that most measurements decide (harness.capacity.margin_factors)."""
    if not factors or result.steady is None or cancel.is_set():
        return result
    started = time.time()
    warmup = PhasePlan("warmup", "margin warmup", result.offered_rps, min(ctx.profile.warmup_s, 3.0))
    steps = tuple(PhasePlan("stress", f"stress x{f:g} (again)", result.offered_rps * f, ctx.profile.stress_step_s)
                  for f in factors)  # fmt: skip
    out = ctx.run_dir / "load" / f"tier-{result.customers}-margin"
    out.mkdir(parents=True, exist_ok=True)
    plan = replace(_plan(result.customers, result.offered_rps, ctx, float("inf")), phases=(warmup, *steps),
                   output_dir=str(out), stress_stop_throughput_ratio=None, stress_stop_error_rate=None,
                   stress_stop_p99_ms=None,
                   env={**ctx.env, LEDGER_DIR_ENV: str(ledger_dir(out))})  # fmt: skip
    outcome = run_load(plan, on_progress=on_progress or (lambda event: None), cancel=cancel)
    samples = count_requests(ctx.target_samples(started) if ctx.target_samples is not None else (),
                             outcome.phases, requests_before + requests_served(result))  # fmt: skip
    again = tuple(with_other_work(p, p.target_cpu_pct(samples)) for p in outcome.phases if p.kind == "stress")
    stress = tuple(sorted((*result.stress, *again), key=lambda p: (p.offered_rps, p.started_at)))
    return replace(result, stress=stress, resources=(*result.resources, *samples))


def _unmeasured(
    customers: int, offered: float, prov: ProvisioningResult, status: str, reason: str
) -> TierResult:
    return TierResult(
        customers=customers,
        status=status,  # type: ignore[arg-type]
        offered_rps=round(offered, 3),
        provisioning=prov,
        warmup=None,
        steady=None,
        reason=reason,
    )


def max_arrivals(max_rps: float | None, requests_per_iteration: float | None) -> float:
    """The arrival rate (iterations/s) that keeps requests under ``max_rps``; inf without a cap.

    Before any tier has measured how many requests an iteration makes, one is assumed: the
    engine still holds back any request past the cap, and says so (``GeneratorHealth``).
    """
    if max_rps is None:
        return float("inf")
    return max_rps / max(1.0, requests_per_iteration or 1.0)


def _plan(customers: int, offered: float, ctx: TierContext, cap: float) -> LoadPlan:
    """The tier's load plan, every phase's arrivals at most ``cap`` (``max_arrivals``)."""
    profile = ctx.profile
    phases = []
    if profile.probe_iterations > 0:
        # Unloaded: a few iterations a second, each endpoint's own service time at this data volume.
        rate = min(profile.probe_rate, cap)
        phases.append(PhasePlan("probe", "probe", rate, profile.probe_iterations / rate))
    if profile.warmup_s > 0:
        phases.append(PhasePlan("warmup", "warmup", min(offered, cap), profile.warmup_s))
    phases.append(PhasePlan("steady", "steady", min(offered, cap), profile.steady_s))
    for factor in profile.stress_factors:
        rate = offered * factor
        if rate > cap:
            break  # the pack's max_rps is a promise to whoever runs the target
        phases.append(PhasePlan("stress", f"stress x{factor:g}", rate, profile.stress_step_s))
    out = ctx.run_dir / "load" / f"tier-{customers}"
    out.mkdir(parents=True, exist_ok=True)
    return LoadPlan(
        locustfile=str(ctx.locustfile),
        host=ctx.base_url,
        output_dir=str(out),
        phases=tuple(phases),
        customers_file=str(ctx.store.path),
        arrivals=profile.arrivals,
        popularity=Popularity(profile.popularity, profile.zipf_exponent),
        seed=ctx.seed + customers,
        window_s=profile.window_s,
        max_users=profile.max_users,
        request_timeout_s=ctx.request_timeout_s,
        max_rps=ctx.max_rps,
        stress_stop_p99_ms=ctx.stress_stop_p99_ms,
        workers=ctx.workers,
        pack_dir=str(ctx.pack_dir or ""),
        env={**ctx.env, LEDGER_DIR_ENV: str(ledger_dir(out))},
        **(ctx.remote.plan_fields() if ctx.remote is not None else {}),
    )


def requests_served(tier: TierResult) -> int:
    """Requests the load engine completed during a tier (every phase, errors included)."""
    phases = [p for p in (tier.probe, tier.warmup, tier.steady, *tier.stress) if p is not None]
    return sum(w.requests for p in phases for w in p.windows)


def count_requests(
    samples: Sequence[ResourceSample], phases: Sequence[PhaseMeasurement], before: int = 0
) -> tuple[ResourceSample, ...]:
    """Each resource sample with the requests served up to its instant (`requests_so_far`).

    The count comes from the load engine's time windows: every window completed before the
    sample, plus the elapsed share of the window it falls in (requests spread evenly over a
    window). A leak is memory growing with requests served, so the samples must say how many
    requests they follow; `before` carries the count over from earlier tiers. Samples taken
    while no load ran (provisioning, integrity checks) keep the count reached at that time.
    """
    windows = sorted((w for p in phases for w in p.windows), key=lambda w: w.start)
    if not windows:
        return tuple(samples)
    out = []
    for sample in samples:
        served = 0.0
        for w in windows:
            if w.end <= sample.at:
                served += w.requests
            elif w.start < sample.at:
                served += w.requests * (sample.at - w.start) / (w.end - w.start)
        out.append(replace(sample, requests_so_far=before + int(served)))
    return tuple(out)


def ledger_dir(load_dir: Path) -> Path:
    """Where the load engine's processes write a tier's operation ledgers."""
    return Path(load_dir) / "ledger"


def replay_server_errors(
    phases: Sequence[PhaseMeasurement], ctx: TierContext
) -> tuple[ReplayedError, ...]:
    """Replay each distinct server error once, alone: still failing is a bug, passing is capacity."""
    seen: set[tuple[str, str, str | None]] = set()
    samples: list[ErrorSample] = []
    for phase in phases:
        for sample in phase.error_samples:
            key = (sample.method, sample.url, sample.request_body)
            if sample.status >= 500 and key not in seen:
                seen.add(key)
                samples.append(sample)
    customers = {int(c["index"]): c for c in ctx.store.all()}
    replays = []
    hooks = request_hooks(ctx.pacer)
    transport = None
    if ctx.credentials is not None:
        transport = RefreshOnRefusal(httpx.HTTPTransport(), customers.values(), ctx.credentials,
                                     on_send=hooks.get("request", []))  # fmt: skip
    with httpx.Client(base_url=ctx.base_url, timeout=ctx.request_timeout_s, event_hooks=hooks,
                      transport=transport) as client:  # fmt: skip
        for sample in samples[:MAX_REPLAYS]:
            headers: dict[str, str] = {}
            index = getattr(sample, "customer_index", None)
            if ctx.auth_headers is not None and index is not None and index in customers:
                if ctx.credentials is not None:
                    ctx.credentials.keep_fresh(customers[index])
                headers = dict(ctx.auth_headers(customers[index]))
            if sample.request_body is not None:
                headers.setdefault("Content-Type", "application/json")
            try:
                response = client.request(
                    sample.method, sample.url, content=sample.request_body, headers=headers
                )
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            replays.append(
                ReplayedError(sample=sample, replay_status=status, still_failing=status >= 500 or status == 0)
            )
    return tuple(replays)
