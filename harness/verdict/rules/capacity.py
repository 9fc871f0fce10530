"""Capacity: the headroom over the goal decides (below 1.0 fails, below ``ready_headroom`` is AT
RISK); the USL's contention and coherency explain what limits it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.records import CapacityEstimate, CapacityParams, Finding, Severity, TierResult
from harness.verdict.outcome import Outcome, make_finding, reproduce_command
from harness.verdict.policy import ReproduceContext, VerdictPolicy
from harness.verdict.rules.errors import passed_alone
from harness.verdict.wording import about, names, pct

__all__ = ["PeakCpu", "capacity_findings", "target_cpu_at_peak"]

# Below this CPU (100 = one core) at its throughput peak, a target that stopped scaling was
# waiting rather than computing: one core busy is 100, and a saturated single-threaded process
# shows 90-100 between samples.
WAITING_CPU_PCT = 70.0
#: A repeated load with mixed results this close to the READY threshold makes the verdict borderline.
MARGIN_NEAR = 1.3

@dataclass(frozen=True)
class _Estimate:
    """What every capacity finding says about the estimate."""

    capacity: CapacityEstimate
    headroom: float
    predicted: float
    goal: int
    band: str  # " (between A and B)" or ""
    basis: str  # how it was estimated, one sentence
    evidence: dict[str, object]
    repro: str
    shed: str = ""  # why a load past it was not carried, when server errors refused it (shed_errors)

    def finding(self, severity: Severity, title: str, detail: str) -> Finding:
        return make_finding("throughput", ["capacity"], severity=severity, title=title, detail=detail,
                            evidence=self.evidence, reproduce=self.repro)  # fmt: skip


def capacity_findings(
    capacity: CapacityEstimate | None,
    tiers: Sequence[TierResult],
    policy: VerdictPolicy,
    ctx: ReproduceContext,
) -> Outcome:
    """Headroom decides (below 1.0 fails, below ready_headroom is AT RISK); sigma and kappa explain."""
    if (
        capacity is None
        or capacity.method == "none"
        or capacity.confidence == "none"
        or capacity.headroom is None
        or capacity.predicted_customers is None
    ):
        note = f" ({capacity.note})" if capacity is not None and capacity.note else ""
        return Outcome(missing=(f"Capacity could not be estimated{note}, so the headroom over the goal is unknown.",))
    est = _estimate(capacity, tiers, policy, ctx)
    short = _stopped_short(capacity, est.headroom)
    if est.headroom < policy.ready_headroom and capacity.method == "lower-bound" and short is not None:
        # The floor stops where the measurement did, not where the service did: thin headroom
        # (or none) would be the busy machine, or the pack's own cap, reported as the service's.
        title_tail, why, fix = short
        return Outcome(
            findings=(est.finding(
                "info",
                f"The service carried {about(est.predicted)} customers' traffic ({_times(est.headroom, policy)} the goal of "
                f"{est.goal}); " + title_tail,
                f"{est.basis} {why}, so the headroom is unknown rather than thin. {fix}",
            ),),
            missing=(
                f"Headroom was measured only up to {est.headroom:.2f}x the goal (under {policy.ready_headroom:g}x): "
                f"{title_tail}.",
            ),
        )  # fmt: skip
    margin = margin_note(capacity, policy)
    if margin:
        est = dataclasses.replace(est, basis=f"{est.basis} {margin}", evidence={**est.evidence, "borderline": margin})
    return _headroom(est, policy, margin) + _explanation(capacity, tiers, policy, est.repro)


def margin_note(capacity: CapacityEstimate, policy: VerdictPolicy) -> str:
    """Why the headroom is borderline, in one sentence, or "": the load at the threshold held in
    some windows and not others, or the band reaches across the threshold."""
    threshold = policy.ready_headroom * policy.goal_customers
    p = capacity.params
    if p.mixed_customers is not None and p.mixed_held is not None and p.mixed_of is not None and (
        threshold / MARGIN_NEAR <= p.mixed_customers <= threshold * MARGIN_NEAR
    ):
        return (f"Borderline: the load of {about(p.mixed_customers)} customers held in {p.mixed_held} of "
                f"{p.mixed_of} windows, so the service sits at the {policy.ready_headroom:g}x margin.")  # fmt: skip
    if capacity.low is not None and capacity.high is not None and capacity.low < threshold < capacity.high:
        return (f"Borderline: the band ({about(capacity.low)} to {about(capacity.high)} customers) reaches "
                f"across the {policy.ready_headroom:g}x margin ({about(threshold)} customers).")  # fmt: skip
    return ""


#: An endpoint's errors over the budget count once they rest on this many (as the capacity model's).
MIN_SHED_ERRORS = 5


def shed_errors(tiers: Sequence[TierResult], policy: VerdictPolicy) -> tuple[str, dict[str, object]] | None:
    """The lowest load the service answered with server errors over the budget that passed when
    replayed alone, as a sentence and its evidence, or None: a load not carried because a
    bounded resource (a pool, a downstream's slots) refused work, not because it was slow."""
    found = []
    for tier in tiers:
        alone = {r.sample.endpoint for r in tier.replayed_errors if passed_alone(r)}
        for phase in ([tier.steady] if tier.steady is not None else []) + list(tier.stress):
            shed = [e for e in phase.endpoints if e.name in alone and e.errors >= MIN_SHED_ERRORS
                    and e.error_rate > policy.max_error_rate
                    and sum(v for k, v in e.errors_by_reason.items() if k.startswith("http-5")) * 2 > e.errors]
            if shed and not phase.validity.generator_limited:
                found.append((phase.offered_rps, tier.customers, phase, shed))
    if not found:
        return None
    offered, customers, phase, shed = min(found, key=lambda f: (f[0], f[1]))
    reasons = sorted({k for e in shed for k in e.errors_by_reason if k.startswith("http-5")})
    errors, requests = sum(e.errors for e in shed), sum(e.requests for e in shed)
    sentence = (
        f"The lowest load it did not carry on errors ({phase.label} at {customers} customers, {offered:.4g} "
        f"iterations/s offered) failed because {names([e.name for e in shed])} answered {' or '.join(reasons)} to "
        f"{pct(errors / requests)} of their requests, and those requests passed when replayed alone: something "
        "that takes a fixed number of requests at once (a connection pool, a downstream's concurrency limit, a "
        "worker limit) refuses work when full. Size it for the load, or queue in front of it; see the saturation-errors findings."
    )
    evidence: dict[str, object] = {"phase": phase.label, "customers": customers, "offered_ips": offered,
                                   "endpoints": [e.name for e in shed], "reasons": reasons,
                                   "errors": errors, "requests": requests}  # fmt: skip
    return sentence, evidence


def _estimate(
    capacity: CapacityEstimate, tiers: Sequence[TierResult], policy: VerdictPolicy, ctx: ReproduceContext
) -> _Estimate:
    h, goal = capacity.headroom or 0.0, policy.goal_customers
    pred = capacity.predicted_customers or 0.0
    measured = max((t.customers for t in tiers if t.steady is not None), default=goal)
    band = (
        f" (between {about(capacity.low)} and {about(capacity.high)})"
        if capacity.low is not None and capacity.high is not None
        else ""
    )
    evidence: dict[str, object] = {
        "predicted_customers": pred,
        "low": capacity.low,
        "high": capacity.high,
        "headroom": h,
        "goal_customers": goal,
        "ready_headroom": policy.ready_headroom,
        "method": capacity.method,
        "confidence": capacity.confidence,
        "params": capacity.params,
    }
    basis = (
        f"Estimated by {capacity.method} from the measured throughput ({capacity.confidence} confidence)"
        + (f"; {capacity.note}" if capacity.note else "")
        + "."
    )
    shed = shed_errors(tiers, policy) if h < policy.ready_headroom else None
    if shed is not None:
        evidence["shed_errors"] = shed[1]
    return _Estimate(capacity, h, pred, goal, band, basis, evidence, reproduce_command(ctx, f"tier:{measured}"),
                     shed[0] if shed else "")


def _times(headroom: float, policy: VerdictPolicy) -> str:
    """``1.2x``; ``1.47x`` where one decimal would round up to the READY threshold, so that a
    headroom short of it never reads as the threshold itself ("only 1.5x ... less than 1.5x")."""
    short = headroom < policy.ready_headroom and round(headroom, 1) >= policy.ready_headroom
    return f"{headroom:.2f}x" if short else f"{headroom:.1f}x"


def _headroom(est: _Estimate, policy: VerdictPolicy, margin: str = "") -> Outcome:
    """Below the goal fails, under the margin is a risk, above it is information."""
    h, pred, goal = est.headroom, est.predicted, est.goal
    if h < 1.0:
        return Outcome(
            findings=(est.finding(
                "high",
                f"The service can handle about {about(pred)} customers{est.band}, below the goal of {goal}",
                f"{est.basis} At the goal's peak traffic the service would be past its capacity: "
                "latency climbs without bound once arrivals outpace completions. "
                + (est.shed or "See the contention and coherency findings, if any, for what limits it; otherwise "
                   "profile the slowest endpoints at the largest tier."),
            ),),
            failures=(f"Predicted capacity is about {about(pred)} customers, below the goal of {goal} (headroom {h:.2f}x).",),
        )  # fmt: skip
    if h < policy.ready_headroom:
        return Outcome(
            findings=(est.finding(
                "medium",
                f"The service can handle about {about(pred)} customers{est.band}: only {_times(h, policy)} the goal "
                f"of {goal}, less than the {policy.ready_headroom:g}x margin for growth and spikes",
                f"{est.basis} It reaches the goal, but a traffic spike or a few months of growth past "
                "it would exhaust the margin. "
                + (est.shed or "See the contention and coherency findings for what limits it."),
            ),),
            risks=(
                f"Headroom is thin: predicted capacity {about(pred)} customers is {h:.2f}x the goal, "
                f"under {policy.ready_headroom:g}x." + (f" {margin}" if margin else ""),
            ),
        )  # fmt: skip
    return Outcome(findings=(est.finding(
        "info", f"The service can handle about {about(pred)} customers{est.band}, {h:.1f}x the goal of {goal}",
        est.basis,
    ),), notes=(margin,) if margin else ())  # fmt: skip


def _explanation(
    capacity: CapacityEstimate, tiers: Sequence[TierResult], policy: VerdictPolicy, repro: str
) -> Outcome:
    """What limits the capacity, when the USL can say so."""
    thin = (capacity.headroom or 0.0) < policy.ready_headroom
    if capacity.method == "usl":
        return _usl_findings(capacity, tiers, policy, repro)
    if thin and capacity.params.usl is not None:
        # Capacity short of the margin needs an explanation even when the estimate is the measured
        # lower bound (no phase past the knee): the USL coefficients fitted to the same points
        # say whether requests queue for one resource (sigma) or interfere (kappa).
        return _usl_findings(capacity, tiers, policy, repro)
    if _grounded_contention(capacity.params, policy):
        # Ample headroom, and a fit the capacity model would not extrapolate from (its band was
        # too wide), but whose contention rests on a measured phase past the knee and stands
        # clear of its own error: a serialised resource is a fact about the service worth
        # naming (it caps what more processes or hardware can buy), at low severity.
        return _usl_findings(capacity, tiers, policy, repro)
    return Outcome()


def _stopped_short(capacity: CapacityEstimate, headroom: float) -> tuple[str, str, str] | None:
    """Why the measured floor is the measurement's limit rather than the service's, if it is:
    (the end of a title, the reason, the fix)."""
    busy = capacity.params.unmeasured_customers
    if busy is not None:
        return (
            f"the next load, {about(busy)} customers', was measured on a busy machine",
            "Past that load the SLO was missed while other work took the machine's CPU (or the "
            "hypervisor stole it), so the miss is nobody's",
            "Rerun when the machine is quiet.",
        )
    capped = capacity.params.max_rps_customers
    if capped is not None:
        return (
            f"the pack's max_rps kept the load at {about(capped)} customers' traffic",
            "No load past the pack's target.max_rps was offered, and nothing failed below it",
            "Raise max_rps where whoever runs the target allows it, or accept the headroom as unknown.",
        )
    if headroom < 1.0 and capacity.params.ceiling_customers is None:
        # Below the goal with nothing measured failing: the goal's load was simply never
        # offered (an interrupted audit, --only, a tier left out). Not a failure on evidence.
        return (
            "the goal's traffic was never offered at the goal's data volume",
            "No measured phase failed, and none offered the goal's load",
            "Let the audit run every tier up to the goal.",
        )
    return None


def _grounded_contention(params: CapacityParams, policy: VerdictPolicy) -> bool:
    """A fitted sigma over the threshold by two standard errors, with a phase past the knee."""
    usl = params.usl
    if usl is None or usl.sigma_se is None or (params.past_knee_points or 0) < 1:
        return False
    return usl.sigma - 2 * usl.sigma_se > policy.contention_sigma


def _usl_findings(
    capacity: CapacityEstimate, tiers: Sequence[TierResult], policy: VerdictPolicy, repro: str
) -> Outcome:
    """Contention (sigma) and coherency (kappa), judged at the largest in-server concurrency measured.

    The USL penalty at concurrency N is sigma*(N-1) + kappa*N*(N-1); sigma dominates when
    sigma >= kappa*N. These findings explain the capacity; they do not change the verdict on their
    own (the headroom does), so their severity follows the headroom.
    """
    usl = capacity.params.usl
    if usl is None:
        return Outcome()
    sigma, kappa = usl.sigma, usl.kappa
    n_ref = usl.n_max  # the largest concurrency the fit saw
    if n_ref is None:
        n_ref = max(
            [p[2] for p in capacity.points]
            + [t.steady.concurrency for t in tiers if t.steady is not None]
            + [0.0]
        )
    n_star = usl.n_star
    if n_star is None and kappa > 0:
        n_star = math.sqrt(max(0.0, 1 - sigma) / kappa)
    thin = capacity.headroom is not None and capacity.headroom < policy.ready_headroom
    severity: Severity = "medium" if thin else "low"
    evidence: dict[str, object] = {
        "sigma": sigma,
        "kappa": kappa,
        "n_star": n_star,
        "max_measured_concurrency": n_ref,
        "contention_sigma_threshold": policy.contention_sigma,
        "coherency_reach": policy.coherency_reach,
    }
    cpu = target_cpu_at_peak(tiers)
    if cpu is not None:
        evidence["target_cpu_pct_at_peak"] = round(cpu.cpu_pct, 1)
        evidence["peak_phase"] = f"{cpu.label} at {cpu.customers} customers"
    findings: list[Finding] = []
    if sigma > policy.contention_sigma and sigma >= kappa * n_ref:
        findings.append(make_finding(
            "contention", ["usl"], severity=severity,
            title=(
                f"Requests queue for a shared resource: about {sigma * 100:.0f}% of each request's work "
                f"is serialised, which caps throughput at {1 / sigma:.1f}x a single request stream"
            ),
            detail=(
                f"The Universal Scalability Law fit gives a contention coefficient sigma = {sigma:.3f} "
                f"(threshold {policy.contention_sigma:g}), dominant over coherency (kappa = {kappa:.2e}) "
                f"at the {n_ref:.1f} requests in flight measured. Something every request passes through "
                "one at a time: a global lock, a single database connection or a small pool, the SQLite "
                "writer lock, a hot row everyone updates. Look at lock waits and pool sizes."
                + _cpu_reading(cpu)
            ),
            evidence=evidence, reproduce=repro,
        ))  # fmt: skip
    if kappa > 0 and kappa * n_ref > sigma and n_star is not None and n_ref > 0 and n_star <= policy.coherency_reach * n_ref:
        findings.append(make_finding(
            "coherency", ["usl"], severity=severity,
            title=(
                f"Throughput will stop growing and start to fall at about {about(n_star)} requests in flight, "
                f"within {policy.coherency_reach:g}x of the load already measured"
            ),
            detail=(
                f"The Universal Scalability Law fit gives a coherency coefficient kappa = {kappa:.2e}, "
                f"dominant over contention (sigma = {sigma:.3f}) at the {n_ref:.1f} requests in flight "
                f"measured, and peak concurrency N* = {n_star:.1f}. Past N*, adding load lowers "
                "throughput: requests do work that grows with the number of other requests - cache "
                "invalidation between workers, lock convoys, retries that add load, queries that scan "
                "what other requests just wrote. Look for per-request work proportional to concurrency."
            ),
            evidence=evidence, reproduce=repro,
        ))  # fmt: skip
    return Outcome(findings=tuple(findings))


@dataclass(frozen=True)
class PeakCpu:
    """The target's CPU while it completed the most requests per second."""

    cpu_pct: float  # the target's process tree, 100 = one core
    customers: int
    label: str


def target_cpu_at_peak(tiers: Sequence[TierResult]) -> PeakCpu | None:
    """Mean CPU of the target's processes during the steady window or stress step with the
    highest throughput; None when the harness did not sample the target (``--target``).
    """
    best: tuple[float, PeakCpu] | None = None
    for tier in tiers:
        for phase in (tier.steady, *tier.stress):
            if phase is None:
                continue
            cpu = phase.target_cpu_pct(tier.resources)
            if cpu is None:
                continue
            if best is None or phase.achieved_rps > best[0]:
                best = (phase.achieved_rps, PeakCpu(cpu, tier.customers, phase.label))
    return None if best is None else best[1]


def _cpu_reading(cpu: PeakCpu | None) -> str:
    """What the target's CPU at the throughput peak says about the serialised resource."""
    if cpu is None:
        return ""
    where = f"At the highest throughput measured ({cpu.label} at {cpu.customers} customers) the target used"
    if cpu.cpu_pct < WAITING_CPU_PCT:
        return (
            f" {where} only {cpu.cpu_pct:.0f}% CPU (100% = one core): its requests were waiting, not "
            "computing, so the resource is a lock, a pool or I/O that one request holds at a time."
        )
    return (
        f" {where} {cpu.cpu_pct:.0f}% CPU (100% = one core). If that is every core its processes can "
        "use (one Python or Node.js process runs on one core), the serialised resource is that CPU "
        "itself, and more worker processes raise the cap; if not, look for a lock held while computing."
    )
