"""Did the target stay up? A service under too much load should slow down or shed load with 503s,
not disappear: refused and reset connections that dominate a phase, or a process that exited."""

from __future__ import annotations

from harness.records import Finding, PhaseMeasurement, Severity, TierResult
from harness.verdict.outcome import make_finding
from harness.verdict.wording import utc

__all__ = ["connection_errors", "mentions_unavailable", "unavailable_finding", "where_unavailable"]

# Words the tier stage and the load engine use when the target went away (harness/tiers.py, harness/audit.py).
_UNAVAILABLE_WORDS = (
    "stopped answering",
    "exited",
    "unreachable",
    "refused",
    "crashed",
    "not answering",
)

def connection_errors(phase: PhaseMeasurement) -> int:
    n = sum(
        count
        for e in phase.endpoints
        for reason, count in e.errors_by_reason.items()
        if reason.startswith("connection")
    )
    if n == 0 and not any(e.errors_by_reason for e in phase.endpoints):
        n = sum(1 for s in phase.error_samples if s.reason.startswith("connection"))
        return round(phase.errors * n / len(phase.error_samples)) if phase.error_samples else 0
    return n


def mentions_unavailable(text: str | None) -> bool:
    return bool(text) and any(word in text.lower() for word in _UNAVAILABLE_WORDS)  # type: ignore[union-attr]


def _phase_unavailable(phase: PhaseMeasurement) -> bool:
    """The target stopped answering in this phase: connection errors dominate and it aborted (or most requests failed)."""
    if phase.errors == 0 or phase.requests == 0:
        return mentions_unavailable(phase.aborted)
    share = connection_errors(phase) / phase.errors
    return share >= 0.5 and (phase.aborted is not None or phase.errors / phase.requests >= 0.5)


def where_unavailable(tier: TierResult) -> tuple[str | None, bool]:
    """(where the target went away, whether that was under the tier's nominal load)."""
    if mentions_unavailable(tier.reason):
        # The target is known to have gone (its process exited): it went in the first phase
        # that met a refused or reset connection, even if that phase's share of errors is small.
        for phase in (tier.probe, tier.warmup, tier.steady):
            if phase is not None and connection_errors(phase) > 0:
                return f"the {phase.label}", True
        for phase in tier.stress:
            if connection_errors(phase) > 0:
                return f"the {phase.label} stress step", False
    for phase in (tier.probe, tier.warmup, tier.steady):
        if phase is not None and _phase_unavailable(phase):
            return f"the {phase.label}", True
    for phase in tier.stress:
        if _phase_unavailable(phase):
            return f"the {phase.label} stress step", False
    if mentions_unavailable(tier.reason):
        if tier.steady is None:
            where = (
                "provisioning" if tier.warmup is None and "provision" in tier.reason else "the load"
            )
            return where, True
        if tier.steady.aborted is not None:
            return f"the {tier.steady.label}", True
        return "a stress step after the steady window", False
    return None, False


def unavailable_finding(
    tier: TierResult, where: str, nominal: bool, beyond_goal: bool, repro: str
) -> Finding:
    n = tier.customers
    phases = [p for p in (tier.probe, tier.warmup, tier.steady, *tier.stress) if p is not None]
    conn = sum(connection_errors(p) for p in phases)
    first = min(
        (s.at for p in phases for s in p.error_samples if s.reason.startswith("connection")),
        default=None,
    )
    when = f", first refused connection at {utc(first)}" if first is not None else ""
    if nominal:
        title = f"The service stopped answering at {n} customers' load"
        severity: Severity = "high" if beyond_goal else "critical"
    else:
        title = (
            f"The service crashed when pushed past its {n}-customer load instead of slowing down"
        )
        severity = "medium"
    return make_finding(
        "target-unavailable",
        [n],
        severity=severity,
        title=title,
        detail=(
            f"The target stopped answering during {where} of the {n}-customer tier "
            f"({conn} connection errors{when}; stage note: {tier.reason or 'none'}). A service under too much "
            "load should slow down or shed load with 503s, not disappear. Check the target's log and exit "
            "status: an out-of-memory kill (dmesg, container OOM events, the RSS chart), an unhandled "
            "exception in a worker, or a full accept backlog refusing connections."
        ),
        evidence={
            "customers": n,
            "where": where,
            "connection_errors": conn,
            "first_connection_error_at": utc(first) if first is not None else None,
            "tier_reason": tier.reason,
        },
        reproduce=repro,
        tier=n,
    )
