"""The regression gate and the properties: a failing test or a falsified property is definite."""

from __future__ import annotations

from harness.records import GateResult, OpenApiChecks, PropertiesResult
from harness.verdict.outcome import Outcome, make_finding, reproduce_command
from harness.verdict.policy import ReproduceContext
from harness.verdict.wording import last_line, names

__all__ = ["gate_findings", "properties_findings"]


def _not_run(stage: GateResult | PropertiesResult | None, what: str, unverified: str) -> Outcome | None:
    """Missing evidence when a suite stage did not run, or could not; None when it ran."""
    if stage is None or stage.status == "skipped":
        return Outcome(missing=(f"{what} did not run, so {unverified} is unverified.",))
    if stage.status == "error":
        tail = last_line(stage.output_tail)
        return Outcome(missing=(f"{what} could not run{': ' + tail if tail else ''}.",))
    return None


def gate_findings(gate: GateResult | None, ctx: ReproduceContext) -> Outcome:
    """A failing regression test is a definite failure; a gate that did not run is missing evidence."""
    not_run = _not_run(gate, "The regression gate", "functional correctness")
    if not_run is not None or gate is None:
        return not_run or Outcome()
    failing = [c for c in gate.cases if c.outcome in ("failed", "error")]
    count = max(gate.failed + gate.errors, len(failing))
    if gate.status != "failed" and count == 0:
        return Outcome()
    failing_names = [c.name for c in failing]
    lines = [f"- {c.name}: {c.headline or last_line(c.message) or c.outcome}" for c in failing[:10]]
    detail = (
        f"{count} test(s) of the pack's regression suite failed against the target "
        f"({gate.passed} passed, {gate.skipped} skipped). A functional regression makes every load "
        f"number moot: fix these first. "
        + ("Failing tests:\n" + "\n".join(lines) + "\n" if lines else "")
        + f"The JUnit report is {gate.junit}."
        + (f"\nLast output:\n{gate.output_tail[-1500:]}" if not lines and gate.output_tail else "")
    )
    finding = make_finding(
        "regression",
        ["gate"],
        severity="high",
        title=(
            f"The regression tests fail: {count} test(s) no longer pass"
            + (f" ({names(failing_names, 3)})" if failing_names else "")
        ),
        detail=detail,
        evidence={
            "passed": gate.passed,
            "failed": gate.failed,
            "errors": gate.errors,
            "skipped": gate.skipped,
            "failing": failing_names,
            "junit": gate.junit,
        },
        reproduce=reproduce_command(ctx, "gate"),
    )
    return Outcome(
        findings=(finding,),
        failures=(
            f"The regression gate failed: {count} test(s) did not pass"
            + (f" ({names(failing_names, 3)})." if failing_names else "."),
        ),
    )


def properties_findings(props: PropertiesResult | None, ctx: ReproduceContext) -> Outcome:
    """Each falsified property, and each operation failing one of Schemathesis's checks, is a
    definite failure, reported with its minimal example."""
    openapi = props.openapi if props is not None else None
    if openapi is None:
        return _pack_properties(props, ctx)
    schema_driven = openapi_findings(openapi, ctx)
    if props is not None and props.status == "skipped" and openapi.status != "error":
        return schema_driven  # the pack has no properties of its own; Schemathesis's are the evidence
    return _pack_properties(props, ctx) + schema_driven


def openapi_findings(checks: OpenApiChecks, ctx: ReproduceContext) -> Outcome:
    """One `property` finding per operation and failed check, with the request as curl."""
    if checks.status == "error" and not checks.failures:
        why = checks.note or "see its JUnit report"
        return Outcome(missing=(f"Schemathesis's checks of {checks.source} could not run: {why}",))
    findings = tuple(
        make_finding(
            "property",
            ["openapi", f.operation, *f.checks],
            severity="high",
            title=f"{f.operation} fails Schemathesis's {' and '.join(f.checks) or 'checks'}: {f.title}",
            detail=(
                f"Schemathesis generated requests for {f.operation} from the OpenAPI document "
                f"({checks.source}) and the response broke {' and '.join(f.checks) or 'a check'}"
                + (f" (status {f.status})" if f.status is not None else "")
                + f". The minimal failing request:\n{f.curl or '(none recorded)'}\n{f.message}\n"
                f"Seed {checks.seed}: the same seed draws the same requests again."
                + ("\n[Filtered] stands for a customer's credential." if "[Filtered]" in f.curl else "")
            ),
            evidence={
                "operation": f.operation,
                "checks": list(f.checks),
                "status": f.status,
                "curl": f.curl,
                "seed": checks.seed,
                "replay": checks.replay,
            },
            reproduce=reproduce_command(ctx, "properties"),
            endpoint=f.operation,
        )
        for f in checks.failures
    )
    if not findings:
        return Outcome()
    operations = sorted({f.operation for f in checks.failures})
    return Outcome(
        findings=findings,
        failures=(
            f"{len(operations)} operation(s) failed Schemathesis's checks of the OpenAPI document: {names(operations)}.",
        ),
    )


def _pack_properties(props: PropertiesResult | None, ctx: ReproduceContext) -> Outcome:
    not_run = _not_run(props, "The property checks", "robustness to odd input")
    if not_run is not None or props is None:
        return not_run or Outcome()
    if props.falsified:
        findings = tuple(
            make_finding(
                "property",
                [fp.name],
                severity="high",
                title=f"The service breaks a rule it should always keep: {fp.name}",
                detail=(
                    f"Hypothesis falsified the property {fp.name} and shrank the input to this "
                    f"minimal example:\n{fp.example}\nError: {fp.error}\n"
                    f"Replay exactly this example with: {fp.reproduce}\n"
                    "Such failures are bugs, not load: they reproduce with a single request."
                ),
                evidence={
                    "property": fp.name,
                    "example": fp.example,
                    "error": fp.error,
                    "replay": fp.reproduce,
                },
                reproduce=reproduce_command(ctx, "properties"),
            )
            for fp in props.falsified
        )
        falsified = [fp.name for fp in props.falsified]
        return Outcome(
            findings=findings,
            failures=(
                f"{len(falsified)} propert{'y was' if len(falsified) == 1 else 'ies were'} falsified: {names(falsified)}.",
            ),
        )
    if props.status == "failed" or props.failed:
        finding = make_finding(
            "property",
            ["properties"],
            severity="high",
            title=f"{props.failed or 'Some'} property check(s) failed",
            detail=(
                "The properties stage failed without reporting a minimal example; read its "
                f"JUnit report ({props.junit}).\n{props.output_tail[-1500:]}"
            ),
            evidence={"passed": props.passed, "failed": props.failed, "junit": props.junit},
            reproduce=reproduce_command(ctx, "properties"),
        )
        return Outcome(findings=(finding,), failures=("The property checks failed.",))
    return Outcome()
