"""One tier judged: its status (passed, failed, invalid, skipped), the reason, and what it raised.

Precedence inside a tier, first match wins for the status:

1. the stage skipped it -> ``skipped``;
2. a definite failure on valid evidence -> ``failed``: the target went away under the tier's
   nominal load, an integrity violation, a request that fails even alone (a bug), an SLO
   (latency or errors) miss on a steady window that measured the target, or server errors (5xx)
   and malformed answers over budget even in a spoiled window (they are the target's own answer);
3. anything that makes the measurement unusable -> ``invalid``: a spoiled window (its
   ``validity``, decided in :mod:`harness.validity`), an SLO miss on a busy machine no larger
   than the noise could make it, no steady window, an interrupted load, too few requests to
   judge a percentile at the goal, integrity not checked;
4. otherwise ``passed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.records import (
    EndpointTrend,
    NoiseFloor,
    PhaseMeasurement,
    SloCheck,
    TierResult,
    TierStatus,
)
from harness.verdict.outcome import TierAssessment, TierOutcome, reproduce_command
from harness.verdict.policy import ReproduceContext, VerdictPolicy
from harness.verdict.rules import causes
from harness.verdict.rules.availability import (
    mentions_unavailable,
    unavailable_finding,
    where_unavailable,
)
from harness.verdict.rules.errors import bugs, capacity_errors
from harness.verdict.rules.integrity import integrity_findings
from harness.verdict.rules.provisioning import provisioning_outcome
from harness.verdict.rules.saturation import busy, judge_spoiled_window, unusable_window
from harness.verdict.rules.slo import judge_steady, slo_checks, worst_latency
from harness.verdict.wording import ms, sentence

__all__ = ["TierAssessment", "assess_tier"]


@dataclass(frozen=True)
class _Window:
    """The steady window's judgement, and the facts the other rules and the scores need."""

    outcome: TierOutcome
    judged: bool = False
    worst_error_rate: float | None = None
    worst_latency: tuple[str, float, float] | None = None
    over_error_budget: frozenset[str] = frozenset()
    checks: tuple[SloCheck, ...] | None = None


def assess_tier(
    tier: TierResult,
    policy: VerdictPolicy,
    *,
    noise_floor: NoiseFloor | None,
    reproduce: ReproduceContext,
    trends: Sequence[EndpointTrend] = (),
) -> TierAssessment:
    """Judge one tier (see the module docstring for the precedence). ``trends`` say whether an
    endpoint's own work grew with the data, for the causes of this tier's misses."""
    n = tier.customers
    if tier.status == "skipped":
        return TierAssessment(n, "skipped", tier.reason or "the tier was skipped")
    repro = reproduce_command(reproduce, f"tier:{n}")
    where, nominal = where_unavailable(tier)
    window = _judge_window(tier, policy, noise_floor, reproduce, repro, went_away=where is not None and nominal,
                           went_away_past_load=where is not None and not nominal)  # fmt: skip
    out = (
        _availability(tier, where, nominal, policy, repro)
        + provisioning_outcome(tier, policy, repro)
        + _integrity(tier, policy, repro)
        + bugs(tier, policy, repro)
        + causes.explain(tier, window.outcome, policy, repro, trends)
    )
    if tier.steady is not None:
        out += capacity_errors(tier, tier.steady, window.over_error_budget, policy, repro)
    status, reason = _status(out)
    integrity = tier.integrity
    return TierAssessment(
        customers=n,
        status=status,
        reason=reason,
        findings=out.findings,
        risks=out.risks,
        notes=out.notes,
        judged=window.judged,
        worst_error_rate=window.worst_error_rate,
        worst_latency=window.worst_latency,
        integrity_checked=(
            integrity.checked if integrity is not None and integrity.status in ("passed", "failed") else None
        ),
        slo_checks=window.checks,
    )


def _status(out: TierOutcome) -> tuple[TierStatus, str]:
    if out.failures:
        more = len(out.failures) - 1
        return "failed", sentence(
            out.failures[0] + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")
        )
    if out.invalid:
        return "invalid", sentence(out.invalid[0])
    return "passed", sentence("every endpoint met its SLOs and integrity held")


def _availability(
    tier: TierResult, where: str | None, nominal: bool, policy: VerdictPolicy, repro: str
) -> TierOutcome:
    """Did the target stay up? Connection errors from a spoiled generator may be its own (ports, fds)."""
    if where is None:
        return TierOutcome()
    steady = tier.steady
    spoiled = steady is not None and steady.validity.saturated
    if nominal and spoiled and not mentions_unavailable(tier.reason):
        return TierOutcome(invalid=(f"connection errors dominated {where}, but the generator was saturated",))
    finding = unavailable_finding(tier, where, nominal, tier.customers > policy.goal_customers, repro)
    if nominal:
        return TierOutcome(findings=(finding,), failures=(f"the target stopped answering during {where}",))
    return TierOutcome(findings=(finding,), risks=(
        f"At {tier.customers} customers the target crashed during {where} instead of slowing down under overload.",
    ))  # fmt: skip


def _integrity(tier: TierResult, policy: VerdictPolicy, repro: str) -> TierOutcome:
    """Judged whatever the generator's state: a lost write is lost."""
    integrity = tier.integrity
    if integrity is not None and integrity.violations:
        found, text = integrity_findings(tier, integrity, repro)
        return TierOutcome(findings=tuple(found), failures=(text,))
    if integrity is not None and integrity.status == "failed":
        return TierOutcome(invalid=(
            f"the integrity check failed without naming a violation ({integrity.note or 'no note'})",
        ))  # fmt: skip
    if policy.require_integrity and (integrity is None or integrity.status != "passed"):
        state = "did not run" if integrity is None else f"ended with status {integrity.status}"
        return TierOutcome(invalid=(f"the integrity check {state}, so lost or leaked writes cannot be ruled out",))
    return TierOutcome()


def _judge_window(
    tier: TierResult, policy: VerdictPolicy, floor: NoiseFloor | None, reproduce: ReproduceContext, repro: str,
    *, went_away: bool, went_away_past_load: bool,
) -> _Window:
    """The steady window, judged as its validity allows."""
    steady = tier.steady
    if steady is None:
        return _Window(TierOutcome() if went_away else TierOutcome(
            invalid=(tier.reason or "no steady window was measured",)))  # fmt: skip
    v = steady.validity
    # A busy machine only adds latency: an upper-bound window that met its SLOs is judged as
    # measured, one that missed them only where the miss exceeds what the noise can have added.
    upper = _upper_bound(tier, steady, policy, floor, repro) if v.kind == "upper-bound" else None
    crowded_miss = upper is not None and upper[1] is None
    if v.saturated or crowded_miss:
        spoiled = judge_spoiled_window(tier, steady, crowded_miss, policy, reproduce, repro)
        return _Window(
            TierOutcome(findings=spoiled.findings, failures=spoiled.failures,
                        invalid=(unusable_window(steady, crowded_miss),)),
            over_error_budget=spoiled.own_error_endpoints,
        )  # fmt: skip
    if tier.status == "invalid" and not went_away_past_load:
        # The stage says the measurement is unusable (interrupted, the load engine failed, ...).
        return _Window(TierOutcome(invalid=(tier.reason or "the load stage marked the measurement invalid",)))
    if went_away:
        return _Window(TierOutcome())
    judged = upper[1] if upper is not None and upper[1] is not None else judge_steady(tier, steady, policy, floor, repro)
    notes = judged.notes + _busy_note(tier, steady, beyond_noise=upper is not None and upper[0])
    worst = worst_latency(steady, policy)
    invalid: tuple[str, ...] = ()
    if worst is None and tier.customers >= policy.goal_customers:
        # Small tiers carry little traffic by nature (that is what N customers send), so
        # only the goal and beyond must have enough requests for a p95.
        invalid = (
            f"no endpoint had the {policy.min_requests_for_p95} requests needed to judge its p95 "
            "at the goal; lengthen the steady window (a longer profile)",
        )
    return _Window(
        TierOutcome(findings=judged.findings, failures=judged.failures, invalid=invalid, notes=notes),
        judged=True,
        worst_error_rate=steady.error_rate,
        worst_latency=worst,
        over_error_budget=frozenset(f.endpoint or "" for f in judged.findings if f.category == "slo-errors"),
        checks=slo_checks(steady, policy),
    )


def _upper_bound(
    tier: TierResult, steady: PhaseMeasurement, policy: VerdictPolicy, floor: NoiseFloor | None, repro: str
) -> tuple[bool, TierOutcome | None]:
    """An upper-bound window: (whether a miss exceeds the noise, the judgement to use or None for
    a miss that cannot be told from the noise)."""
    outcome = judge_steady(tier, steady, policy, floor, repro)
    as_judged = TierOutcome(findings=outcome.findings, failures=outcome.failures, notes=outcome.notes)
    if not outcome.failures:
        return False, as_judged
    bound = steady.validity.latency_bound_ms
    if bound is None:
        return False, None
    beyond = judge_steady(tier, steady, policy, floor, repro, lateness_ms=bound)
    if not beyond.failures:
        return False, None
    return True, TierOutcome(findings=beyond.findings, failures=beyond.failures, notes=beyond.notes)


def _busy_note(tier: TierResult, steady: PhaseMeasurement, *, beyond_noise: bool) -> tuple[str, ...]:
    n = tier.customers
    if beyond_noise:
        return (
            f"At {n} customers the machine was busy ({busy(steady)}) and the generator "
            f"ran up to {ms(steady.generator.loop_lag_max_ms)} ms late; the SLO misses named are "
            "larger than twice that, the most it could add, so they are the target's.",
        )
    if steady.validity.crowded:
        return (
            f"At {n} customers the machine was busy ({busy(steady)}); every SLO held "
            "anyway, so the latency reported is an upper bound on the target's.",
        )
    return ()
