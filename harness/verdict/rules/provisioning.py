"""Creating customers: a service that cannot sign up the customers of a tier has a defect at that
scale (a lock timeout, a pool too small for a burst, a bug in request context), and says so in
its own answers. The tier goes on with the customers that exist, so this is judged on its own."""

from __future__ import annotations

from harness.records import TierResult
from harness.verdict.outcome import TierOutcome, make_finding
from harness.verdict.policy import VerdictPolicy

__all__ = ["provisioning_outcome"]


def provisioning_outcome(tier: TierResult, policy: VerdictPolicy, repro: str) -> TierOutcome:
    prov = tier.provisioning
    if prov is None or prov.failed == 0:
        return TierOutcome()
    n = tier.customers
    wanted = prov.wanted or n
    first = prov.errors[0] if prov.errors else "no answer recorded"
    examples = "; ".join(prov.errors[:3])
    evidence: dict[str, object] = {
        "customers": n, "wanted": wanted, "present": prov.customers, "missing": prov.missing,
        "failed_attempts": prov.failed, "created_on_retry": prov.retried, "errors": list(prov.errors[:5]),
    }  # fmt: skip
    if prov.missing == 0:
        return TierOutcome(
            findings=(make_finding(
                "provisioning", [n], severity="low",
                title=(f"Creating customers failed {prov.failed} time(s) at {n} customers under a parallel burst, "
                       f"and succeeded when retried two at a time"),
                detail=(f"{prov.failed} creation(s) failed while the harness created customers "
                        f"{'several' if prov.failed > 1 else 'some'} at a time; a second, gentle pass created "
                        f"them all. The service's answers: {examples}. Sign-ups arriving together (a launch, an "
                        "import) will meet the same errors: look for a lock or pool timeout on that path."),
                evidence=evidence, reproduce=repro, tier=n,
            ),),
            notes=(f"At {n} customers {prov.failed} customer creation(s) failed at first and passed when retried.",),
        )  # fmt: skip
    severe = n <= policy.goal_customers
    finding = make_finding(
        "provisioning", [n], severity="high" if severe else "medium",
        title=(f"The service could not create {prov.missing} of the {wanted} customers the {n}-customer tier "
               f"needs: {first}"),
        detail=(f"Of {wanted} customers, {prov.customers} exist; {prov.missing} could not be created, even on a "
                f"second pass two at a time ({prov.failed} failed attempts in all). The service's answers: "
                f"{examples}. The tier was measured with the {prov.customers} customers there are (their data, "
                f"and the {n}-customer tier's traffic spread over them), and its integrity and isolation checks "
                "ran on them. A service that cannot sign up customers at this scale has a defect on that path: "
                "a request-context bug, a lock timeout ('database is locked'), a pool too small for a burst."),
        evidence=evidence, reproduce=repro, tier=n,
    )  # fmt: skip
    text = f"{prov.missing} of {wanted} customers could not be created ({first})"
    if severe:
        return TierOutcome(findings=(finding,), failures=(text,))
    return TierOutcome(findings=(finding,), risks=(f"Beyond the goal, at {n} customers, {text}.",))
