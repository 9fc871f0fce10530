"""The pack's pytest suites: the regression gate and the Hypothesis properties.

Both run in a child pytest process (never in ours: Locust monkey-patches with gevent, and a
pack's tests must not share our state), with JUnit XML collected into the run folder. The target
URL, example counts and seed reach the suites through environment variables read by
`harness.pytest_plugin`, so a pack's tests stay plain pytest.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.processes import stop_group
from harness.pytest_plugin import FAILING_EXAMPLE_PROPERTY
from harness.records import (
    BenchmarkResult,
    FalsifiedProperty,
    GateResult,
    OpenApiChecks,
    OpenApiFailure,
    PropertiesResult,
    TestCaseResult,
)

# pytest takes SIGINT as Ctrl-C: it stops and still writes its JUnit XML, so what ran is kept.
STOP_STEPS = ((signal.SIGINT, 3.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0))


@dataclass(frozen=True)
class SuiteRun:
    exit_code: int | None
    duration_s: float
    cases: tuple[TestCaseResult, ...]
    output_tail: str
    timed_out: bool
    interrupted: bool


def run_pytest(
    folder: Path,
    *,
    rootdir: Path,
    junit: Path,
    env: Mapping[str, str],
    timeout_s: float,
    extra_args: tuple[str, ...] = (),
    cancel: threading.Event | None = None,
) -> SuiteRun:
    """Run pytest on `folder` in a child process; always returns what it learnt."""
    junit.parent.mkdir(parents=True, exist_ok=True)
    ini = rootdir / "pytest.ini"
    args = [
        sys.executable, "-m", "pytest", str(folder),
        "-p", "harness.pytest_plugin",
        f"--junitxml={junit}", "-o", "junit_family=xunit2",
        "--rootdir", str(rootdir), "-c", str(ini) if ini.exists() else os.devnull,
        "-p", "no:cacheprovider", "-q", "-rN", "--tb=short", "--color=no",
        *extra_args,
    ]  # fmt: skip
    log_path = junit.with_suffix(".log")
    started = time.monotonic()
    timed_out = interrupted = False
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            args,
            cwd=rootdir,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = started + timeout_s
        while proc.poll() is None:
            if cancel is not None and cancel.is_set():
                interrupted = True
                break
            if time.monotonic() > deadline:
                timed_out = True
                break
            try:
                proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
        if proc.poll() is None:
            stop_group(proc, STOP_STEPS)
    output = log_path.read_text(encoding="utf-8", errors="replace")
    return SuiteRun(
        exit_code=proc.returncode,
        duration_s=time.monotonic() - started,
        cases=parse_junit(junit),
        output_tail="\n".join(output.strip().splitlines()[-40:]),
        timed_out=timed_out,
        interrupted=interrupted,
    )


def parse_junit(path: Path) -> tuple[TestCaseResult, ...]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return ()
    cases = []
    for case in root.iter("testcase"):
        classname = case.get("classname", "")
        name = f"{classname}::{case.get('name', '')}" if classname else case.get("name", "")
        outcome = "passed"
        message = headline = ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = "\n".join(filter(None, [node.get("message", ""), node.text or ""]))
                # pytest puts the exception line first in the message attribute; the
                # traceback's last lines are the assertion's rewriting ("+ where 60 = ...").
                headline = _first_line(node.get("message", "")) or _first_error_line(node.text or "")
                break
        example = next(
            (
                prop.get("value", "")
                for prop in case.iter("property")
                if prop.get("name") == FAILING_EXAMPLE_PROPERTY
            ),
            "",
        )
        cases.append(
            TestCaseResult(
                name=name,
                outcome=outcome,  # type: ignore[arg-type]
                duration_s=float(case.get("time", 0) or 0),
                message=message.strip()[:4000],
                headline=headline,
                example=example.strip()[:4000],
            )
        )
    return tuple(cases)


def _counts(cases: tuple[TestCaseResult, ...]) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for case in cases:
        counts[case.outcome] += 1
    return counts


def _status(run: SuiteRun, counts: dict[str, int]) -> str:
    if run.timed_out or run.interrupted:
        return "error"
    if counts["failed"]:
        return "failed"
    if counts["error"] or run.exit_code not in (0, 5) or counts["passed"] == 0:
        # collection errors, crashes, or nothing ran: no evidence either way
        return "error"
    return "passed"


def run_regression_gate(
    folder: Path,
    *,
    rootdir: Path,
    run_dir: Path,
    env: Mapping[str, str],
    timeout_s: float,
    cancel: threading.Event | None = None,
    extra_args: tuple[str, ...] = (),
) -> GateResult:
    """The regression suite; ``extra_args`` go to pytest (``scaleready check`` runs benchmarks once)."""
    junit = run_dir / "junit-regression.xml"
    bench_json = run_dir / "benchmarks.json"
    run = run_pytest(
        folder,
        rootdir=rootdir,
        junit=junit,
        env=env,
        timeout_s=timeout_s,
        extra_args=(f"--benchmark-json={bench_json}", "--benchmark-disable-gc", *extra_args),
        cancel=cancel,
    )
    counts = _counts(run.cases)
    return GateResult(
        status=_status(run, counts),  # type: ignore[arg-type]
        passed=counts["passed"],
        failed=counts["failed"],
        errors=counts["error"],
        skipped=counts["skipped"],
        duration_s=round(run.duration_s, 2),
        junit=junit.name,
        cases=run.cases,
        benchmarks=parse_benchmarks(bench_json),
        output_tail=_tail_note(run),
    )


def run_properties(
    folder: Path,
    *,
    rootdir: Path,
    run_dir: Path,
    env: Mapping[str, str],
    examples: int,
    timeout_s: float,
    reproduce_prefix: str,
    cancel: threading.Event | None = None,
) -> PropertiesResult:
    junit = run_dir / "junit-properties.xml"
    run = run_pytest(
        folder,
        rootdir=rootdir,
        junit=junit,
        env={**env, "SCALEREADY_HYPOTHESIS_MAX_EXAMPLES": str(examples)},
        timeout_s=timeout_s,
        cancel=cancel,
    )
    counts = _counts(run.cases)
    falsified = tuple(
        FalsifiedProperty(
            name=case.name,
            example=case.example,
            error=_first_error_line(case.message),
            reproduce=f"{reproduce_prefix} -k {shlex.quote(case.name.split('::')[-1])}",
        )
        for case in run.cases
        if case.outcome == "failed"
    )
    return PropertiesResult(
        status=_status(run, counts),  # type: ignore[arg-type]
        passed=counts["passed"],
        failed=counts["failed"],
        duration_s=round(run.duration_s, 2),
        examples_per_property=examples,
        junit=junit.name,
        falsified=falsified,
        output_tail=_tail_note(run),
    )


# The test module that runs Schemathesis's checks (in the child pytest, like a pack's suites).
OPENAPI_SUITE = Path(__file__).resolve().parent / "openapi" / "schemathesis_suite.py"
# Schemathesis's names for what every response must be: not a 5xx, a body that matches the
# documented schema, a documented status code, a documented content type.
OPENAPI_OPERATION_PROPERTY = "scaleready.operation"  # the suite's JUnit property naming a case's operation
OPENAPI_CHECKS = (
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
)


@dataclass(frozen=True)
class OpenApiRun:
    """What the Schemathesis checks run against and how (the audit resolves it from the pack)."""

    document: Path  # the OpenAPI document as a JSON file
    source: str  # as the pack names it
    examples: int  # per operation
    seed: int
    timeout_s: float
    headers: Mapping[str, str]  # a provisioned customer's credential, or none
    max_rps: float | None = None
    note: str = ""


def run_openapi_checks(
    spec: OpenApiRun, *, run_dir: Path, env: Mapping[str, str], cancel: threading.Event | None = None
) -> OpenApiChecks:
    """Schemathesis's checks on every operation, in a child pytest; each failing operation and
    check comes back with its minimal failing request as a curl command."""
    junit = run_dir / "junit-openapi.xml"
    failures_file = run_dir / "openapi-failures.jsonl"
    failures_file.unlink(missing_ok=True)
    suite_env = {
        **env,
        "SCALEREADY_SEED": str(spec.seed),
        "SCALEREADY_HYPOTHESIS_MAX_EXAMPLES": str(spec.examples),
        "SCALEREADY_OPENAPI_DOCUMENT": str(spec.document),
        "SCALEREADY_OPENAPI_FAILURES": str(failures_file),
        "SCALEREADY_OPENAPI_HEADERS": json.dumps(dict(spec.headers)),
        "SCALEREADY_OPENAPI_CHECKS": ",".join(OPENAPI_CHECKS),
    }
    run = run_pytest(OPENAPI_SUITE, rootdir=OPENAPI_SUITE.parent, junit=junit, env=suite_env,
                     timeout_s=spec.timeout_s, cancel=cancel)  # fmt: skip
    failures = _openapi_failures(run.cases, _operations(junit), failures_file)
    passed = sum(1 for case in run.cases if case.outcome == "passed")
    note = spec.note
    if run.timed_out:
        note = " ".join(filter(None, [note, f"Stopped at its time limit ({spec.timeout_s:g} s) after "
                                            f"{len(run.cases)} operations."]))  # fmt: skip
    if failures:
        status = "failed"
    elif run.timed_out or run.interrupted or run.exit_code not in (0, 5) or not run.cases:
        status = "error"
        if not run.cases and not run.timed_out:
            note = " ".join(filter(None, [note, _last_line(run.output_tail)]))
    else:
        status = "passed"
    return OpenApiChecks(
        status=status,  # type: ignore[arg-type]
        source=spec.source,
        operations=len(run.cases),
        passed=passed,
        examples_per_operation=spec.examples,
        seed=spec.seed,
        checks=OPENAPI_CHECKS,
        duration_s=round(run.duration_s, 2),
        junit=junit.name,
        authenticated=bool(spec.headers),
        max_rps=spec.max_rps,
        failures=failures,
        replay=(
            f"SCALEREADY_TARGET_URL=<url of the target> SCALEREADY_SEED={spec.seed} "
            f"SCALEREADY_HYPOTHESIS_MAX_EXAMPLES={spec.examples} SCALEREADY_OPENAPI_DOCUMENT=<{spec.document.name}, "
            "in the run folder> SCALEREADY_OPENAPI_HEADERS='{\"<header>\": \"<a customer\'s credential>\"}' "
            f"python -m pytest {OPENAPI_SUITE} -p harness.pytest_plugin"
        ),
        note=note,
    )


def _operations(junit: Path) -> list[str]:
    """Each JUnit case's operation, in the order ``parse_junit`` reads the cases ("" if none)."""
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return []
    return [
        next((p.get("value", "") for p in case.iter("property") if p.get("name") == OPENAPI_OPERATION_PROPERTY), "")
        for case in root.iter("testcase")
    ]


def _openapi_failures(
    cases: tuple[TestCaseResult, ...], operations: list[str], failures_file: Path
) -> tuple[OpenApiFailure, ...]:
    recorded: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
    try:
        lines = failures_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            raw = json.loads(line)
        except ValueError:
            continue  # a line cut short when the run was stopped
        recorded[(str(raw["operation"]), tuple(raw["checks"]))] = raw  # the last one is the minimal one
    failed = {op or c.name for c, op in zip(cases, operations or [""] * len(cases), strict=False)
              if c.outcome in ("failed", "error")}  # fmt: skip
    # One failure per operation and request: a 500 also breaks status_code_conformance when 500
    # is not documented, and that is one finding, not two.
    by_request: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (operation, _checks), raw in recorded.items():
        if operation in failed:
            by_request.setdefault((operation, str(raw["curl"])), []).append(raw)
    found = [
        OpenApiFailure(
            operation=operation,
            checks=tuple(sorted({c for raw in group for c in raw["checks"]})),
            title="; ".join(dict.fromkeys(str(raw["title"]) for raw in group)),
            status=group[-1].get("status"),
            curl=curl,
            message="\n".join(filter(None, (str(raw.get("message", "")) for raw in group)))[:1500],
        )
        for (operation, curl), group in by_request.items()
    ]
    # A failing operation the checks did not explain (a refused connection, a schema Schemathesis
    # cannot generate from) still gets its own failure, with what pytest said.
    explained = {f.operation for f in found}
    for case, operation in zip(cases, operations or [""] * len(cases), strict=False):
        operation = operation or case.name
        if case.outcome in ("failed", "error") and operation not in explained:
            found.append(OpenApiFailure(operation=operation, checks=(), title=case.headline or "the test failed",
                                        status=None, curl="", message=case.message[:1500]))  # fmt: skip
    return tuple(sorted(found, key=lambda f: (f.operation, f.checks)))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _tail_note(run: SuiteRun) -> str:
    if run.timed_out:
        return "the suite was stopped at its time limit\n" + run.output_tail
    if run.interrupted:
        return "the suite was interrupted\n" + run.output_tail
    return run.output_tail


def _first_line(text: str) -> str:
    return next((line.strip()[:300] for line in text.splitlines() if line.strip()), "")


def _first_error_line(message: str) -> str:
    for line in message.splitlines():
        if line.startswith("E ") or "Error" in line:
            return line.removeprefix("E").strip()[:300]
    return message.splitlines()[0][:300] if message else ""


def parse_benchmarks(path: Path) -> tuple[BenchmarkResult, ...]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    results = []
    for bench in data.get("benchmarks", []):
        stats = bench.get("stats", {})
        results.append(
            BenchmarkResult(
                name=bench.get("name", "?"),
                mean_ms=round(stats.get("mean", 0) * 1000, 3),
                median_ms=round(stats.get("median", 0) * 1000, 3),
                min_ms=round(stats.get("min", 0) * 1000, 3),
                rounds=int(stats.get("rounds", 0)),
            )
        )
    return tuple(results)
