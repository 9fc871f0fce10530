"""What a rule concludes: findings, and how each bears on the verdict, one sentence each.

* ``failures``: a definite failure on valid evidence (the verdict is NOT READY);
* ``missing``: evidence the verdict needs is absent or invalid (INCONCLUSIVE, unless a failure);
* ``risks``: everything passes but something will not last (AT RISK);
* ``notes``: what was deliberately not judged and why (suppressed by the noise floor, too few
  requests for a percentile), so a reader can see the harness did not look away silently.

Also how a finding is built: its stable id and the command that reproduces it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from harness.records import CATEGORIES, Finding, Severity, SloCheck, TierStatus
from harness.verdict.policy import ReproduceContext

__all__ = ["Outcome", "TierAssessment", "TierOutcome", "make_finding", "reproduce_command", "slugify"]


@dataclass(frozen=True)
class Outcome:
    """What a rule concluded, sentence by sentence, and the findings behind it."""

    findings: tuple[Finding, ...] = ()
    failures: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    risks: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(
            findings=self.findings + other.findings,
            failures=self.failures + other.failures,
            missing=self.missing + other.missing,
            risks=self.risks + other.risks,
            notes=self.notes + other.notes,
        )


def slugify(text: str) -> str:
    """``"GET /slots/{id}"`` -> ``"get-slots-id"``: stable, readable id parts."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "all"


def make_finding(
    category: str,
    scope: Sequence[object],
    *,
    severity: Severity,
    title: str,
    detail: str,
    evidence: dict[str, object],
    reproduce: str,
    tier: int | None = None,
    endpoint: str | None = None,
) -> Finding:
    """A finding with a stable id ``category:scope...``; the category must be in the closed list."""
    if category not in CATEGORIES:
        raise ValueError(
            f"finding category {category!r} is not in records.CATEGORIES; "
            f"use one of {', '.join(CATEGORIES)} or extend the list deliberately"
        )
    fid = ":".join([category, *(slugify(str(part)) for part in scope)])
    return Finding(
        id=fid,
        category=category,
        severity=severity,
        title=title,
        detail=detail,
        evidence=evidence,
        reproduce=reproduce,
        tier=tier,
        endpoint=endpoint,
    )


def reproduce_command(
    ctx: ReproduceContext, only: str | None, *, workers: int | None = None
) -> str:
    """The exact `scaleready` invocation that reruns one stage (``gate``, ``properties``, ``tier:N``)."""
    parts = ["scaleready", "audit", shlex.quote(ctx.pack), "--profile", shlex.quote(ctx.profile)]
    if only:
        parts += ["--only", only]
    if not ctx.started_by_harness and ctx.target_url:
        parts += ["--target", shlex.quote(ctx.target_url)]
    extra = ctx.extra_args.strip()
    if workers is not None:
        extra = re.sub(r"--workers(=|\s+)\S+", "", extra).strip()
        parts += ["--workers", str(workers)]
    if extra:
        parts.append(" ".join(extra.split()))
    return " ".join(parts)


@dataclass(frozen=True)
class TierOutcome:
    """What one tier rule concluded: like :class:`Outcome`, but a tier's missing evidence makes
    the tier ``invalid`` (the judge frames it for the verdict)."""

    findings: tuple[Finding, ...] = ()
    failures: tuple[str, ...] = ()
    invalid: tuple[str, ...] = ()
    risks: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __add__(self, other: TierOutcome) -> TierOutcome:
        return TierOutcome(
            findings=self.findings + other.findings,
            failures=self.failures + other.failures,
            invalid=self.invalid + other.invalid,
            risks=self.risks + other.risks,
            notes=self.notes + other.notes,
        )


@dataclass(frozen=True)
class TierAssessment:
    """One tier judged: its status, the one-sentence reason, and what it raised."""

    customers: int
    status: TierStatus
    reason: str
    findings: tuple[Finding, ...] = ()
    risks: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # Facts the area scores use, so they do not re-derive the rules.
    judged: bool = False  # latency and errors were judged on a steady window of the target's
    worst_error_rate: float | None = None
    worst_latency: tuple[str, float, float] | None = None  # (endpoint, p95 ms, SLO p95 ms)
    integrity_checked: int | None = None  # operations the integrity check covered; None: not run
    slo_checks: tuple[SloCheck, ...] | None = None  # the percentiles judged; None: window not judged
