"""What the audit covered: each tier's status framed for the verdict, a goal tier measured, no
stage left out, and findings other analyses added."""

from __future__ import annotations

from harness.verdict.evidence import Evidence
from harness.verdict.outcome import Outcome
from harness.verdict.policy import ReproduceContext, VerdictPolicy
from harness.verdict.wording import lower_first

__all__ = ["extra_findings", "goal_tier", "partial_audit", "tiers"]


def tiers(evidence: Evidence, policy: VerdictPolicy, ctx: ReproduceContext) -> Outcome:
    """Each tier's findings, and its status as a failure (at or below the goal), a risk (beyond
    it), missing evidence (invalid or skipped at or below the goal) or a note (beyond it)."""
    goal = policy.goal_customers
    out = Outcome()
    first_failed: int | None = None
    for a in evidence.assessments:
        n = a.customers
        out += Outcome(findings=a.findings, risks=a.risks, notes=a.notes)
        why = lower_first(a.reason)
        if a.status == "failed" and n <= goal:
            if first_failed is None:
                first_failed = n
                out += Outcome(failures=(f"The first tier to fail is {n} customers: {why}",))
            else:
                out += Outcome(failures=(f"The {n}-customer tier failed too: {why}",))
        elif a.status == "failed":
            out += Outcome(risks=(f"Beyond the goal, the {n}-customer tier failed: {why}",))
        elif a.status in ("invalid", "skipped") and n <= goal:
            out += Outcome(missing=(f"The {n}-customer tier was {a.status}: {why}",))
        elif a.status in ("invalid", "skipped"):
            out += Outcome(notes=(f"The {n}-customer tier, beyond the goal, was {a.status}: {why}",))
    return out


def goal_tier(evidence: Evidence, policy: VerdictPolicy, ctx: ReproduceContext) -> Outcome:
    """READY needs a tier measured at the goal; otherwise readiness rests on extrapolation alone."""
    ordered = evidence.tiers
    goal = policy.goal_customers
    if not ordered:
        return Outcome(missing=("No load tier ran, so nothing is known about the service under load.",))
    if policy.require_goal_tier and not any(t.customers >= goal for t in ordered):
        return Outcome(missing=(
            f"No tier reached the goal of {goal} customers (largest: {ordered[-1].customers}), "
            "so readiness at the goal would rest on extrapolation alone.",
        ))  # fmt: skip
    return Outcome()


def extra_findings(evidence: Evidence, policy: VerdictPolicy, ctx: ReproduceContext) -> Outcome:
    """A baseline regression makes the verdict AT RISK; any other extra finding counts by
    severity (critical/high fail, medium is a risk, low/info are informational)."""
    out = Outcome(findings=evidence.extra_findings)
    for f in evidence.extra_findings:
        if f.category == "baseline-regression" or f.severity == "medium":
            out += Outcome(risks=(f"{f.title.rstrip('.')}.",))
        elif f.severity in ("critical", "high"):
            out += Outcome(failures=(f"{f.title.rstrip('.')}.",))
    return out


def partial_audit(evidence: Evidence, policy: VerdictPolicy, ctx: ReproduceContext) -> Outcome:
    if not evidence.partial:
        return Outcome()
    why = evidence.partial_reason or "The audit was interrupted or ran only some stages"
    return Outcome(missing=(f"{why.rstrip('.')}, so evidence for a full verdict is missing.",))
