"""junit.xml: the audit as test results, so any CI shows what failed without reading the scorecard.

One ``<testsuite>`` per stage (``regression gate``, ``properties``), one per tier
(``tier 500 customers``) and one (``analysis``) for findings that belong to no tier. In a tier:

- a test case per endpoint per SLO (``GET /slots: latency SLO``, ``... error-rate SLO``), failed by
  the matching ``slo-latency`` / ``slo-errors`` finding;
- a test case per integrity check (a key of ``IntegrityResult.checks``, or a violation kind),
  failed by its violations;
- ``load generator kept up`` (an *error* when it was saturated: the tier measured nothing valid);
- a test case for each other finding of that tier (failed when medium or worse);
- ``tier result``, failed with the tier's reason when the tier failed and nothing else said why.

A failure's ``message`` is the finding's title; its text is the detail, the evidence and the
command that reproduces it. xml.etree escapes markup; characters XML 1.0 cannot hold at all
(NUL, ESC ... which error bodies do contain) are replaced, so the file always parses.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from harness.records import AuditRecord, CapacityParams, Finding, PhaseMeasurement, TierResult
from harness.report.scorecard import flat_capacity_params, ordered_findings
from harness.timestamps import iso_utc

__all__ = ["render_junit"]

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_FAILING = ("critical", "high", "medium")
_INTEGRITY_CATEGORY = {
    "integrity-lost-write": "lost-write",
    "integrity-duplicate": "duplicate",
    "isolation-leak": "isolation-leak",
}


def xml_text(s: object) -> str:
    """``s`` as text XML 1.0 can hold: forbidden control characters become U+FFFD."""
    return _INVALID_XML.sub("\ufffd", str(s))


@dataclass
class _Case:
    name: str
    classname: str
    time: float = 0.0
    outcome: str = "passed"  # passed | failure | error | skipped
    message: str = ""
    type: str = ""
    text: str = ""
    out: str = ""


@dataclass
class _Suite:
    name: str
    time: float = 0.0
    cases: list[_Case] = field(default_factory=list)


def _evidence_value(value: object) -> object:
    """What json cannot write itself: capacity parameters as the scorecard's flat numbers."""
    return flat_capacity_params(value) if isinstance(value, CapacityParams) else str(value)


def _finding_text(f: Finding) -> str:
    parts = [f.detail] if f.detail else []
    if f.evidence:
        parts.append("Evidence: " + json.dumps(f.evidence, default=_evidence_value, sort_keys=True))
    if f.reproduce:
        parts.append(f"Reproduce: {f.reproduce}")
    return "\n\n".join(parts)


def _fail_with(case: _Case, findings: list[Finding]) -> None:
    """Fail ``case`` with its findings (the first, most severe, gives the message)."""
    case.outcome = "failure"
    case.message = findings[0].title
    case.type = findings[0].category
    case.text = "\n\n---\n\n".join(f"{f.title}\n\n{_finding_text(f)}" for f in findings)


def _gate_suite(record: AuditRecord, findings: list[Finding]) -> _Suite:
    gate = record.gate
    suite = _Suite("regression gate", time=gate.duration_s if gate else 0.0)
    own = [f for f in findings if f.category == "regression"]
    if gate is None:
        suite.cases.append(_Case("regression gate", "scaleready.gate", outcome="skipped",
                                 message="the regression gate did not run"))
        return suite
    for c in gate.cases:
        case = _Case(c.name, "scaleready.gate", time=c.duration_s)
        if c.outcome == "failed":
            case.outcome, case.message, case.text = "failure", _first_line(c.message), c.message
        elif c.outcome == "error":
            case.outcome, case.message, case.text = "error", _first_line(c.message), c.message
        elif c.outcome == "skipped":
            case.outcome, case.message = "skipped", _first_line(c.message)
        suite.cases.append(case)
    if not gate.cases or (own and gate.status in ("failed", "error")
                          and not any(c.outcome in ("failed", "error") for c in gate.cases)):
        case = _Case("regression gate", "scaleready.gate", time=gate.duration_s)
        if own:
            _fail_with(case, own)
        elif gate.status in ("failed", "error"):
            case.outcome = "failure" if gate.status == "failed" else "error"
            case.message = f"{gate.failed} failed, {gate.errors} errors"
            case.text = gate.output_tail
        elif gate.status == "skipped":
            case.outcome, case.message = "skipped", "the regression gate was skipped"
        suite.cases.append(case)
    return suite


def _properties_suite(record: AuditRecord) -> _Suite:
    props = record.properties
    suite = _Suite("properties", time=props.duration_s if props else 0.0)
    if props is None or props.status == "skipped":
        suite.cases.append(_Case("properties", "scaleready.properties", outcome="skipped",
                                 message="the properties stage did not run"))
        return suite
    for fp in props.falsified:
        case = _Case(fp.name, "scaleready.properties", outcome="failure", type="property")
        case.message = _first_line(fp.error) or "falsified"
        case.text = (f"{fp.error}\n\nMinimal falsifying example:\n{fp.example}\n\n"
                     f"Reproduce: {fp.reproduce}")
        suite.cases.append(case)
    if props.passed:
        suite.cases.append(_Case(f"{props.passed} other properties held",
                                 "scaleready.properties"))
    if props.status == "error" and not props.falsified:
        suite.cases.append(_Case("properties", "scaleready.properties", outcome="error",
                                 message="the properties stage failed to run",
                                 text=props.output_tail))
    return suite


def _slo_finding(category: str, endpoint: str) -> Callable[[Finding], bool]:
    return lambda f: f.category == category and f.endpoint == endpoint


def _integrity_finding(kinds: Collection[str]) -> Callable[[Finding], bool]:
    return lambda f: _INTEGRITY_CATEGORY.get(f.category) in kinds


class _Findings:
    """A tier's findings, each reported in one test case: the first case that takes it."""

    def __init__(self, findings: list[Finding]) -> None:
        self.own = findings
        self.used: set[int] = set()

    def take(self, pred: Callable[[Finding], bool]) -> list[Finding]:
        got = [f for f in self.own if id(f) not in self.used and pred(f)]
        self.used.update(id(f) for f in got)
        return got

    def rest(self) -> list[Finding]:
        return self.take(lambda f: True)


def _tier_suite(tier: TierResult, findings: list[Finding]) -> _Suite:
    n = tier.customers
    cls = f"scaleready.tier{n}"
    phases = [p for p in (tier.warmup, tier.steady, *tier.stress) if p is not None]
    suite = _Suite(f"tier {n} customers",
                   time=sum(max(0.0, p.ended_at - p.started_at) for p in phases))  # fmt: skip
    if tier.status == "skipped":
        suite.cases.append(_Case("tier result", cls, outcome="skipped", message=tier.reason or "tier skipped"))
        return suite
    own = _Findings([f for f in findings if f.tier == n])
    invalid = tier.status == "invalid"
    steady = tier.steady
    for name in [e.name for e in steady.endpoints] if steady is not None else []:
        for label, category in (("latency SLO", "slo-latency"), ("error-rate SLO", "slo-errors")):
            case = _Case(f"{name}: {label}", cls)
            hits = own.take(_slo_finding(category, name))
            if hits:
                _fail_with(case, hits)
            elif invalid:
                case.outcome = "skipped"
                case.message = "not measured validly: " + (tier.reason or "tier invalid")
            suite.cases.append(case)
    suite.cases += _integrity_cases(tier, own, cls)
    if steady is not None:
        suite.cases.append(_generator_case(steady, own, cls))
    for f in own.rest():
        label = f.category + (f": {f.endpoint}" if f.endpoint else "")
        case = _Case(f"{label} ({f.id})", cls)
        if f.severity in _FAILING:
            _fail_with(case, [f])
        else:
            case.out = f"{f.severity}: {f.title}\n\n{_finding_text(f)}"
        suite.cases.append(case)
    result = _Case("tier result", cls)
    if tier.status == "failed" and not any(c.outcome == "failure" for c in suite.cases):
        result.outcome, result.message = "failure", tier.reason or "tier failed"
    elif invalid:
        result.outcome, result.message = "error", tier.reason or "measurement invalid"
    suite.cases.append(result)
    return suite


def _integrity_cases(tier: TierResult, own: _Findings, cls: str) -> list[_Case]:
    integrity = tier.integrity
    if integrity is None or integrity.status == "skipped":
        return []
    cases = []
    names = list(integrity.checks)
    for v in integrity.violations:
        if (v.check or v.kind) not in names:
            names.append(v.check or v.kind)
    for check in names:
        case = _Case(f"integrity: {check}", cls)
        bad = [v for v in integrity.violations if (v.check or v.kind) == check]
        if bad:
            kinds = {v.kind for v in bad}
            hits = own.take(_integrity_finding(kinds))
            case.outcome = "failure"
            case.type = hits[0].category if hits else bad[0].kind
            case.message = hits[0].title if hits else f"{len(bad)} {bad[0].kind} violation(s)"
            lines = [f"{v.kind} customer={v.customer} ids={','.join(v.identifiers)}: {v.detail}"
                     for v in bad[:50]]  # fmt: skip
            if len(bad) > 50:
                lines.append(f"... and {len(bad) - 50} more")
            case.text = "\n".join(lines)
            if hits:
                case.text = _finding_text(hits[0]) + "\n\n" + case.text
        cases.append(case)
    if integrity.status == "error":
        cases.append(_Case("integrity", cls, outcome="error",
                           message=integrity.note or "the integrity check failed to run"))  # fmt: skip
    return cases


def _generator_case(steady: PhaseMeasurement, own: _Findings, cls: str) -> _Case:
    case = _Case("load generator kept up", cls)
    hits = own.take(lambda f: f.category == "generator-saturated")
    if steady.validity.saturated or hits:
        case.outcome = "error"
        case.type = "generator-saturated"
        reasons = "; ".join(steady.validity.reasons)
        case.message = hits[0].title if hits else f"load generator saturated: {reasons}"
        case.text = _finding_text(hits[0]) if hits else reasons
    return case


def _analysis_suite(findings: list[Finding]) -> _Suite | None:
    rest = [f for f in findings if f.tier is None and f.category not in ("regression", "property")]
    if not rest:
        return None
    suite = _Suite("analysis")
    for f in rest:
        label = f.category + (f": {f.endpoint}" if f.endpoint else "")
        case = _Case(f"{label} ({f.id})", "scaleready.analysis")
        if f.severity in _FAILING:
            _fail_with(case, [f])
        else:
            case.out = f"{f.severity}: {f.title}\n\n{_finding_text(f)}"
        suite.cases.append(case)
    return suite


def _first_line(s: str) -> str:
    return s.strip().splitlines()[0] if s.strip() else ""


def _count(suite: _Suite, outcome: str) -> int:
    return sum(1 for c in suite.cases if c.outcome == outcome)


def _suite_attrs(suite: _Suite) -> dict[str, str]:
    return {
        "tests": str(len(suite.cases)),
        "failures": str(_count(suite, "failure")),
        "errors": str(_count(suite, "error")),
        "skipped": str(_count(suite, "skipped")),
        "time": f"{suite.time:.3f}",
    }


def render_junit(record: AuditRecord) -> str:
    """The text of junit.xml for ``record`` (UTF-8, with an XML declaration)."""
    findings = ordered_findings(record.findings)
    suites = [_gate_suite(record, findings), _properties_suite(record)]
    suites += [_tier_suite(t, findings) for t in record.tiers]
    analysis = _analysis_suite(findings)
    if analysis is not None:
        suites.append(analysis)

    root = ET.Element("testsuites", {
        "name": xml_text(f"scaleready {record.pack} {record.run_id}: {record.verdict}"),
        "tests": str(sum(len(s.cases) for s in suites)),
        "failures": str(sum(_count(s, "failure") for s in suites)),
        "errors": str(sum(_count(s, "error") for s in suites)),
        "skipped": str(sum(_count(s, "skipped") for s in suites)),
        "time": f"{max(0.0, record.finished_at - record.started_at):.3f}",
    })
    timestamp = (iso_utc(record.started_at) or "")[:19]
    for suite in suites:
        el = ET.SubElement(root, "testsuite", {
            "name": xml_text(suite.name), **_suite_attrs(suite), "timestamp": timestamp,
        })
        for c in suite.cases:
            tc = ET.SubElement(el, "testcase", {
                "classname": xml_text(c.classname), "name": xml_text(c.name),
                "time": f"{c.time:.3f}",
            })
            if c.outcome in ("failure", "error"):
                child = ET.SubElement(tc, c.outcome, {"message": xml_text(c.message)})
                if c.type:
                    child.set("type", xml_text(c.type))
                child.text = xml_text(c.text) if c.text else None
            elif c.outcome == "skipped":
                ET.SubElement(tc, "skipped", {"message": xml_text(c.message)})
            if c.out:
                ET.SubElement(tc, "system-out").text = xml_text(c.out)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
