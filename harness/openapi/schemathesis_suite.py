"""Schemathesis's checks on every operation of an OpenAPI document, as one pytest test module.

The properties stage runs this file in a child pytest process (``harness.suites.run_openapi_checks``),
like a pack's own properties: Schemathesis and Hypothesis stay out of the harness's process, and
the run keeps its JUnit report and its time limit. It is never imported by the harness itself.
What it needs comes from the environment the audit gives the child:

``SCALEREADY_OPENAPI_DOCUMENT``  the document, a JSON file the audit wrote (already validated)
``SCALEREADY_TARGET_URL``        where the requests go (the pytest plugin's variable)
``SCALEREADY_OPENAPI_HEADERS``   optional: a JSON object of headers every request carries (a
                                 provisioned customer's credential)
``SCALEREADY_OPENAPI_FAILURES``  optional: a JSON-lines file each failure is appended to
``SCALEREADY_OPENAPI_CHECKS``    optional: Schemathesis's check names, comma-separated
``SCALEREADY_HYPOTHESIS_MAX_EXAMPLES``, ``SCALEREADY_SEED``, ``SCALEREADY_MAX_RPS``,
``SCALEREADY_REQUEST_TIMEOUT_S``  the plugin's: examples per operation, the seed, the pack's cap

Only the examples and fuzzing phases run: their requests are bounded by the examples per
operation. The coverage phase is left out because its count is not (on the booking demo it sent
552 requests at 3 examples per operation, 151 of them creating a customer).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import schemathesis
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import Failure, FailureGroup

from harness import pacing
from harness.pytest_plugin import (
    ENV_TARGET_URL,
    max_examples_from_env,
    request_timeout_s,
    seed_from_env,
)

ENV_DOCUMENT = "SCALEREADY_OPENAPI_DOCUMENT"
ENV_HEADERS = "SCALEREADY_OPENAPI_HEADERS"
ENV_FAILURES = "SCALEREADY_OPENAPI_FAILURES"
ENV_CHECKS = "SCALEREADY_OPENAPI_CHECKS"
DEFAULT_CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"
PHASES = ["examples", "fuzzing"]
OPERATION_PROPERTY = "scaleready.operation"

load_all_checks()
_CHECK_NAMES = (os.environ.get(ENV_CHECKS) or DEFAULT_CHECKS).split(",")
_CHECKS = CHECKS.get_by_names(_CHECK_NAMES)
_HEADERS: dict[str, str] = json.loads(os.environ.get(ENV_HEADERS) or "{}")
_PACER = pacing.pacer_from_env()
_TIMEOUT_S = request_timeout_s()


def _schema() -> Any:
    document = json.loads(Path(os.environ[ENV_DOCUMENT]).read_text(encoding="utf-8"))
    loaded = schemathesis.openapi.from_dict(document)
    loaded.config.update(base_url=os.environ[ENV_TARGET_URL].rstrip("/"), request_timeout=_TIMEOUT_S)
    loaded.config.phases.update(phases=PHASES)
    seed = seed_from_env()
    if isinstance(seed, int):
        # Schemathesis seeds each operation's test itself (from a random run seed unless told),
        # over Hypothesis's global seed: the audit's seed has to be its.
        loaded.config.seed = seed
    examples = max_examples_from_env()
    if examples is not None:
        loaded.config.generation.update(max_examples=examples)
    return loaded


schema = _schema()


@schema.parametrize()
def test_operation(case: Any, request: Any) -> None:
    # The JUnit report names each case "test_operation" only: the operation goes beside it.
    if not request.node.user_properties:
        request.node.user_properties.append((OPERATION_PROPERTY, case.operation.label))
    if _PACER is not None:
        _PACER.wait()
    response = case.call(headers=_HEADERS or None)
    try:
        case.validate_response(response, checks=_CHECKS, headers=_HEADERS or None)
    except FailureGroup as group:
        _record(case, response.status_code, group)
        raise


def _record(case: Any, status: int, group: FailureGroup) -> None:
    """Append this failure; while Hypothesis shrinks, the last line per operation and check is
    the minimal request (it replays that one last)."""
    path = os.environ.get(ENV_FAILURES)
    if not path:
        return
    # One line per check: Schemathesis may report several problems of one response (a wrong type
    # and a missing property), in no fixed order; sorted, a rerun writes the same line.
    by_check: dict[tuple[str, ...], list[Failure]] = {}
    for failure in group.exceptions:
        # A kind of failure names every check that can report it; keep those that ran.
        checks = tuple(sorted(c for c in failure.checks if c in _CHECK_NAMES) or sorted(failure.checks))
        by_check.setdefault(checks, []).append(failure)
    curl = case.as_curl_command(headers=_HEADERS or None)
    with open(path, "a", encoding="utf-8") as out:
        for checks, failures in sorted(by_check.items()):
            failures.sort(key=lambda f: (f.title, f.message))
            line = {
                "operation": case.operation.label,
                "checks": list(checks),
                "title": "; ".join(dict.fromkeys(f.title for f in failures)),
                "status": status,
                "message": "\n\n".join(f.message for f in failures if f.message)[:1500],
                "curl": curl,
            }
            out.write(json.dumps(line) + "\n")
