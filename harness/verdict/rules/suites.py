"""The regression gate and the properties: a failing test or a falsified property is definite."""

from __future__ import annotations

from harness.records import GateResult, PropertiesResult
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
    """Each falsified property is a definite failure, reported with its minimal example."""
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
