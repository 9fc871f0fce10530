"""A plan's phases, run in order by the engine child, one process or many alike.

Phases run back to back so connections stay warm. Each finished phase is judged and written to
``load-result.json`` at once, so a crash keeps what was measured; an exception ends the run with
its message as the result's error, never a lost result. Stress steps end early: once a step
trips a stop condition or saturates the generator, the steps above it would measure the
generator or a target already past its limit, not the target's capacity. Imports no Locust.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from harness.load.plan import LoadPlan, PhasePlan
from harness.load.result_file import ResultWriter
from harness.load.tally import PhaseTally
from harness.records import PhaseMeasurement

log = logging.getLogger("scaleready.engine")

__all__ = ["run_phases", "stress_ends_after"]


def stress_ends_after(phase: PhaseMeasurement) -> bool:
    """After a stress step: no further steps if it tripped a stop condition or the generator saturated."""
    return bool(phase.aborted) or phase.validity.saturated


def run_phases(
    plan: LoadPlan,
    run_phase: Callable[[int, PhasePlan], PhaseTally],
    *,
    interrupted: Callable[[], bool],
    close: Callable[[], None],
    start: Callable[[], None] = lambda: None,
    failure: str = "load engine failed",
) -> int:
    """Run ``plan``'s phases with ``run_phase(index, phase) -> tally``; the exit code (0 or 1).

    ``start`` runs first and ``close`` last, whatever happens; ``interrupted()`` says whether a
    signal asked to stop (no further phase starts, and the result says so).
    """
    results = ResultWriter(plan)
    error: str | None = None
    try:
        start()
        for index, phase in enumerate(plan.phases):
            if interrupted():
                break
            record = results.add(run_phase(index, phase), interrupted=interrupted())
            if phase.kind == "stress" and stress_ends_after(record):
                break
    except Exception as exc:  # keep what was measured; the parent reports the error
        log.exception(failure)
        error = f"{type(exc).__name__}: {exc}"
    finally:
        close()
    results.write(error, interrupted())
    return 0 if error is None else 1
