"""Integrity under load: a lost, duplicated or leaked write is a definite failure, judged whatever
the generator's state (a lost write is lost).

Violations of kind ``resurrected`` (an acknowledged delete undone) and ``half-written`` (part of
an acknowledged write missing) are lost writes and are reported as ``integrity-lost-write``; the
evidence keeps the original kind.
"""

from __future__ import annotations

from collections import defaultdict

from harness.records import Finding, IntegrityResult, IntegrityViolation, TierResult
from harness.verdict.outcome import make_finding

__all__ = ["integrity_findings"]

# Integrity violation kind -> finding category (see the module docstring for the mapping).
_INTEGRITY_CATEGORY = {
    "lost-write": "integrity-lost-write",
    "resurrected": "integrity-lost-write",
    "half-written": "integrity-lost-write",
    "duplicate": "integrity-duplicate",
    "isolation-leak": "isolation-leak",
}


def integrity_findings(
    tier: TierResult, integrity: IntegrityResult, repro: str
) -> tuple[list[Finding], str]:
    n = tier.customers
    by_category: dict[str, list[IntegrityViolation]] = defaultdict(list)
    for v in integrity.violations:
        by_category[_INTEGRITY_CATEGORY.get(v.kind, "integrity-lost-write")].append(v)
    texts = {
        "integrity-lost-write": (
            "Saved data went missing at {n} customers: {k} acknowledged write(s) could not be read back",
            "Every write the service acknowledged must be readable afterwards. Lost writes under "
            "concurrency usually come from a read-modify-write without a transaction or row lock (last "
            "writer wins), an acknowledgement sent before the commit, or a cache that serves stale data "
            "after a write. Look at the handlers that write these records and their transaction scope.",
        ),
        "integrity-duplicate": (
            "Duplicates were created at {n} customers: {k} record(s) exist twice (for example one reservation made twice)",
            "A check-then-insert race: two concurrent requests both see 'free' and both insert. Add a "
            "unique constraint on the natural key (what may be taken once, by whom) and handle the conflict, or take a "
            "row lock (SELECT ... FOR UPDATE) around the check.",
        ),
        "isolation-leak": (
            "Customers could see each other's data at {n} customers: {k} cross-tenant read(s) succeeded",
            "A request authenticated as one customer read another customer's records (OWASP API1, broken "
            "object-level authorisation). Under load this usually means a query missing its tenant filter, "
            "a cache key without the tenant id, or request context (the current tenant) shared between "
            "concurrent requests through a global or thread-local. Treat it as a security incident.",
        ),
    }
    findings = []
    for category, violations in by_category.items():
        title, cause = texts[category]
        customers = sorted({v.customer for v in violations})
        identifiers = [i for v in violations for i in v.identifiers][:10]
        examples = "; ".join(f"{v.kind} for {v.customer}: {v.detail}" for v in violations[:3])
        findings.append(
            make_finding(
                category,
                [n],
                severity="critical",
                title=title.format(n=n, k=len(violations)),
                detail=f"{cause} Examples: {examples}. {integrity.checked} operations were checked.",
                evidence={
                    "customers": n,
                    "violations": len(violations),
                    "kinds": sorted({v.kind for v in violations}),
                    "affected_customers": customers[:10],
                    "identifiers": identifiers,
                    "checked": integrity.checked,
                },
                reproduce=repro,
                tier=n,
            )
        )
    kinds = sorted({v.kind for v in integrity.violations})
    return (
        findings,
        f"integrity failed with {len(integrity.violations)} violation(s) ({', '.join(kinds)})",
    )
