"""When the load generator or the machine spoiled a window: say so, say what it means for the
numbers and how to fix it, and judge what can still be judged (the target's own failed answers and
service time beyond what the generator can have added)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from harness.records import Finding, PhaseMeasurement, TierResult
from harness.verdict.outcome import make_finding, reproduce_command
from harness.verdict.policy import ReproduceContext, VerdictPolicy
from harness.verdict.rules.slo import errors_finding, latency_finding, own_answer_errors
from harness.verdict.wording import ms, pct

__all__ = ["SpoiledWindow", "busy", "judge_spoiled_window", "saturated_finding", "unusable_window"]


def unusable_window(steady: PhaseMeasurement, crowded_miss: bool) -> str:
    """Why a steady window the generator or the machine spoiled cannot judge the target."""
    if crowded_miss:
        return ("the tier missed its SLOs while the machine was busy with other work, so the miss "
                "cannot be told from the noise")
    if steady.validity.crowded:
        return ("other work on this machine took the CPU and the load generator fell behind, so the "
                "latency measured is not the target's")
    return "the load generator was saturated, so the latency measured is the generator's, not the target's"


def busy(phase: PhaseMeasurement) -> str:
    """What kept the machine busy, in a few words."""
    g = phase.generator
    parts = []
    if g.other_cpu_pct is not None and g.other_cpu_pct > 0:
        parts.append(f"other work used {g.other_cpu_pct:.0f}% of a core")
    if g.steal_pct:
        parts.append(f"the hypervisor stole {g.steal_pct:.0f}%")
    if "cpu-wait" in phase.validity.crowded_by and g.cpu_wait_pct is not None:
        parts.append(f"the generator waited for a CPU {g.cpu_wait_pct:.0f}% of the time")
    return ", ".join(parts) or "other work"


def saturated_finding(
    tier: TierResult, steady: PhaseMeasurement, ctx: ReproduceContext, target_slower: bool = False
) -> Finding:
    """``target_slower``: the target's service time exceeded the limit by more than the
    generator's lag could add, so the tier failed on the target's account all the same."""
    g, v = steady.generator, steady.validity
    suggested = max(2, g.workers * 2)
    judged = (
        "so the tier is marked invalid and its latency is not judged (server errors, malformed answers and integrity still are)"
    )
    if target_slower:
        # Users waiting on a slow target fill the pool (iterations dropped) and a target that takes
        # every core keeps the generator waiting: the overload may well be the target's doing.
        title = (
            f"The load generator fell behind at {tier.customers} customers, but the service's own slowness "
            "there is larger than anything the generator could add"
        )
        fix = "Fix the service's slowness first (the slo-latency finding of this tier), then rerun."
        judged = (
            "so the tier's latency is judged only where the median service time exceeds the limit by more "
            "than the generator's worst lag"
        )
    elif g.held_by_max_rps and v.saturated:
        title = (
            f"The pack's max_rps held back {g.held_by_max_rps} requests at {tier.customers} customers, so that "
            "tier's latency includes the harness's own wait"
        )
        fix = (
            "Lower this tier's load below max_rps (fewer customers, or leave the tier out), or raise "
            "max_rps if whoever runs the target allows it."
        )
    elif v.crowded:
        title = (
            f"The machine was busy during the {tier.customers}-customer tier ({busy(steady)}) and the load "
            "generator fell behind, so that tier's latency says nothing about the service"
            if v.saturated
            else f"The {tier.customers}-customer tier missed its SLOs while the machine was busy "
            f"({busy(steady)}), so the miss cannot be told from the noise"
        )
        fix = (
            "Rerun the audit when nothing else runs on this machine (another load test, a build, a "
            "profiler), or run the generator on a machine of its own (scaleready worker)."
        )
    else:
        title = (
            f"The load generator itself was overloaded at {tier.customers} customers, so that tier's "
            "latency says nothing about the service"
        )
        fix = (
            f"Fix: spread the load over more processes (--workers {suggested}) or run the generator on "
            "another machine than the target (Locust distributed mode)."
        )
    return make_finding(
        "generator-saturated",
        [tier.customers],
        severity="low" if target_slower else "medium",
        title=title,
        detail=(
            f"During the steady window the generator reached {g.cpu_max_pct:.0f}% CPU, its event loop lagged "
            f"{ms(g.loop_lag_p99_ms)} ms at p99, and {steady.dropped_iterations} of "
            f"{steady.iterations_scheduled} iterations could not start"
            + (f" ({'; '.join(v.reasons)})" if v.reasons else "")
            + ". A generator that cannot run on time sends late and times late: the latency it records "
            f"includes its own waiting, {judged}. {fix}"
        ),
        evidence={
            "customers": tier.customers,
            "cpu_max_pct": g.cpu_max_pct,
            "loop_lag_p99_ms": g.loop_lag_p99_ms,
            "dropped_iterations": steady.dropped_iterations,
            "iterations_scheduled": steady.iterations_scheduled,
            "workers": g.workers,
            "reasons": list(v.reasons),
            "other_cpu_pct": g.other_cpu_pct,
        },
        reproduce=reproduce_command(
            ctx, f"tier:{tier.customers}", workers=None if v.crowded or g.held_by_max_rps else suggested
        ),
        tier=tier.customers,
    )


@dataclass(frozen=True)
class SpoiledWindow:
    """What can still be judged in a steady window whose latency is not the target's."""

    findings: tuple[Finding, ...]
    failures: tuple[str, ...]
    own_error_endpoints: frozenset[str]


def judge_spoiled_window(
    tier: TierResult, steady: PhaseMeasurement, crowded_miss: bool, policy: VerdictPolicy,
    reproduce: ReproduceContext, repro: str,
) -> SpoiledWindow:
    """A spoiled window (or a miss on a busy machine): its latency says nothing, but server
    errors and malformed answers are the target's own, and a median service time over the p95
    limit by more than the generator can have added (``validity.service_bound_ms``) is the
    target's own slowness."""
    findings: list[Finding] = []
    failures: list[str] = []
    errors: set[str] = set()
    for e in steady.endpoints:
        own = own_answer_errors(e)
        if e.requests and own / e.requests > policy.max_error_rate and policy.error_rate_judged(own):
            findings.append(errors_finding(tier, steady, e, policy, repro, own_answers_only=True))
            failures.append(
                f"{e.name} answered {pct(own / e.requests)} of requests with server errors or malformed "
                f"answers, over the {pct(policy.max_error_rate)} budget"
            )
            errors.add(e.name)
    slower = _slower_than_the_generator(tier, steady, policy, repro)
    findings += [f for f, _ in slower]
    failures += [text for _, text in slower]
    # The generator's finding comes first: it says why the rest is all that was judged.
    first = saturated_finding(tier, steady, reproduce, target_slower=bool(slower))
    return SpoiledWindow((first, *findings), tuple(failures), frozenset(errors))


def _slower_than_the_generator(
    tier: TierResult, steady: PhaseMeasurement, policy: VerdictPolicy, repro: str
) -> list[tuple[Finding, str]]:
    bound = steady.validity.service_bound_ms
    if bound is None:  # steal or other work slowed the target too: nothing bounds the noise
        return []
    out = []
    for e in sorted(steady.endpoints, key=lambda e: e.name):
        slo = policy.slo_for(e.name)
        if e.requests < policy.min_requests_for_p50 or e.service.p50_ms - bound <= slo.p95_ms:
            continue
        finding = latency_finding(tier, steady, e, slo, [("p50", e.service.p50_ms, slo.p95_ms)], 0.0, policy, repro)
        finding = dataclasses.replace(
            finding,
            detail=finding.detail
            + f" The load generator was saturated, but its event loop never lagged more than "
            f"{ms(bound)} ms, and the median service time ({ms(e.service.p50_ms)} ms) exceeds "
            "the limit by more than that: this slowness is the target's.",
            evidence={**finding.evidence, "generator_loop_lag_max_ms": bound},
        )
        out.append((finding,
            f"{e.name} median service time was {ms(e.service.p50_ms)} ms with a saturated generator "
            f"lagging at most {ms(bound)} ms, over its p95 SLO of {ms(slo.p95_ms)} ms"))  # fmt: skip
    return out
