"""Each persona's tasks once, in this (child) process: ``python -m harness.load.tryout PLAN.json``.

``scaleready check`` runs it twice. With ``--list`` it only imports the locustfile and lists each
user class and its distinct tasks (an import error is the answer, before any target starts).
Without, it instantiates each user class once against the plan's host and calls each distinct
task once, in order, with no pacing and no load: every request is kept (endpoint, status, the
failure reason the load engine would give it, other customers' markers in the answer), and a task
that raises is kept with the line of the locustfile it raised at. ``record_write`` goes to the
plan's ledger, so the invariants can run on what was written.

The answer is ``tryout.json`` in the plan's output folder (not stdout: a locustfile may print),
read by ``harness.load.tryout_stage``. Imports
Locust: the child only, never the harness's parent process.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import gevent
import locust  # noqa: F401  (first: Locust monkey-patches the process with gevent)
from locust.env import Environment
from locust.exception import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopUser
from locust.user.task import TaskSet

from harness.errors import ConfigError
from harness.integrity.ledger import close_shared_ledger
from harness.integrity.markers import MarkerScanner
from harness.load.failures import classify
from harness.load.kit import CUSTOMER_CONTEXT_KEY, CUSTOMERS_ENV, load_customers
from harness.load.locustfile import load_user_classes, prepare_process
from harness.load.plan import LoadPlan
from harness.load.tryout_stage import ANSWER_FILE

# Locust's own ways for a task to end early: not a fault of the task.
_TASK_CONTROL = (RescheduleTask, RescheduleTaskImmediately, InterruptTaskSet, StopUser)


def _where(exc: BaseException, locustfile: Path) -> str:
    """``line N`` of the locustfile's deepest frame in the traceback (else of the last frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if Path(f.filename).resolve() == locustfile]
    chosen = own or list(frames)
    return f"line {chosen[-1].lineno}" if chosen else "an unknown line"


def _describe(exc: BaseException, locustfile: Path) -> str:
    return f"{type(exc).__name__} at {_where(exc, locustfile)}: {exc}"[:400]


def _distinct_tasks(user_class: type) -> list[Any]:
    return list(dict.fromkeys(getattr(user_class, "tasks", [])))


def _classes(plan: LoadPlan) -> tuple[list[type], dict[str, Any] | None]:
    locustfile = Path(plan.locustfile).resolve()
    try:
        return list(load_user_classes(plan)), None
    except ConfigError as exc:
        return [], {"import_error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the pack's code: its error is the answer
        return [], {"import_error": f"{locustfile}: raised {_describe(exc, locustfile)} on import"}


def list_personas(plan: LoadPlan) -> dict[str, Any]:
    classes, error = _classes(plan)
    if error is not None:
        return error
    return {"personas": [{"persona": c.__name__, "tasks": [getattr(t, "__name__", str(t)) for t in _distinct_tasks(c)]}
                         for c in classes]}  # fmt: skip


def try_personas(plan: LoadPlan) -> dict[str, Any]:
    prepare_process(plan)
    classes, error = _classes(plan)
    if error is not None:
        return error
    locustfile = Path(plan.locustfile).resolve()
    customers = load_customers(os.environ[CUSTOMERS_ENV])
    scanner = MarkerScanner.for_customers(customers)
    env = Environment(user_classes=classes, host=plan.host)
    current: list[dict[str, Any]] = []

    def on_request(request_type: str, name: str, response_time: float, response_length: int,
                   response: Any = None, context: Any = None, exception: Any = None, **_: Any) -> None:  # fmt: skip
        reason = classify(exception, response, response_length or 0, plan.max_response_bytes)
        customer = (context or {}).get(CUSTOMER_CONTEXT_KEY)
        foreign: list[str] = []
        if reason is None and customer is not None and response is not None:
            foreign = sorted(map(str, scanner.foreign(getattr(response, "content", None), customer) or ()))
        current.append({"name": name, "method": request_type, "status": getattr(response, "status_code", 0) or 0,
                        "reason": reason, "error": str(exception)[:300] if exception else "", "foreign": foreign})  # fmt: skip

    env.events.request.add_listener(on_request)
    results: list[dict[str, Any]] = []
    for user_class in classes:
        user = user_class(env)
        started = _call(user.on_start, locustfile, plan.request_timeout_s)
        for task in _distinct_tasks(user_class):
            name = getattr(task, "__name__", str(task))
            current = []
            if inspect.isclass(task) and issubclass(task, TaskSet):
                why = "a nested TaskSet: scaleready check calls plain task functions only"
                results.append({"persona": user_class.__name__, "task": name, "requests": [], "error": "",
                                "skipped": why})  # fmt: skip
                continue
            raised = started or _call(functools.partial(task, user), locustfile, plan.request_timeout_s)
            results.append({"persona": user_class.__name__, "task": name, "requests": current, "error": raised,
                            "on_start": bool(started)})  # fmt: skip
        _call(user.on_stop, locustfile, plan.request_timeout_s)
    close_shared_ledger()
    return {"tasks": results}


def _call(function: Any, locustfile: Path, timeout_s: float) -> str:
    """Run one task (or hook) with a deadline; "" when it ended well, else what it raised."""
    try:
        # A task may make several requests, each bounded by the request timeout.
        with gevent.Timeout(4 * timeout_s + 5, TimeoutError(f"did not finish within {4 * timeout_s + 5:g} s")):
            function()
    except _TASK_CONTROL:
        return ""
    except Exception as exc:  # noqa: BLE001 - the pack's code
        return _describe(exc, locustfile)
    return ""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    listing = "--list" in args
    paths = [a for a in args if a != "--list"]
    plan = LoadPlan.read(Path(paths[0]))
    answer = list_personas(plan) if listing else try_personas(plan)
    (Path(plan.output_dir) / ANSWER_FILE).write_text(json.dumps(answer), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
