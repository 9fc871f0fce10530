"""The parent side of the load stage: run the engine child, follow it, and return records.

``run_load`` starts ``python -m harness.load.engine PLAN.json`` in its own process group (so the
child and its Locust workers can be signalled together), passes each progress line to
``on_progress`` as a :class:`~harness.load.progress.LoadProgress`, enforces an overall deadline, and on ``cancel`` sends SIGINT, waits, then
SIGTERM and SIGKILL, so no process is left behind. Whatever happens, it returns the phases the
child completed: a crash becomes ``LoadOutcome.error``, never an exception that loses data.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.load.plan import LoadPlan
from harness.load.progress import LoadProgress
from harness.load.result_file import RESULT_FILE, read_result
from harness.processes import signal_group, stop_group
from harness.records import PhaseMeasurement

PLAN_FILE = "load-plan.json"
LOG_FILE = "load-engine.log"
STARTUP_ALLOWANCE_S = 30.0  # importing Locust, starting workers, spawning users
INTERRUPT_GRACE_S = 10.0  # after SIGINT the child writes results; it normally needs ~2 s
STOP_STEPS = ((signal.SIGINT, INTERRUPT_GRACE_S), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0))

ProgressCallback = Callable[[LoadProgress], None]

__all__ = ["LoadOutcome", "ProgressCallback", "run_load"]


@dataclass(frozen=True)
class LoadOutcome:
    """What the load stage measured: completed phases, and why it stopped early if it did."""

    phases: tuple[PhaseMeasurement, ...]
    error: str | None
    interrupted: bool
    output_dir: Path

    def phase(self, label: str) -> PhaseMeasurement | None:
        return next((p for p in self.phases if p.label == label), None)


def _deadline_s(plan: LoadPlan) -> float:
    drains = len(plan.phases) * (plan.request_timeout_s + 2.0)
    return plan.total_duration_s + drains + STARTUP_ALLOWANCE_S + (plan.worker_connect_timeout_s if plan.generators else 0)


def _read_progress(stream: Any, on_progress: ProgressCallback | None) -> None:
    for raw in stream:
        progress = LoadProgress.from_line(raw.strip())
        if progress is not None and on_progress is not None:
            # A broken progress display must not kill the measurement.
            with contextlib.suppress(Exception):
                on_progress(progress)


def run_load(
    plan: LoadPlan,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    *,
    python: str | None = None,
) -> LoadOutcome:
    """Run ``plan`` in a child process and return the measured phases (see the module docstring)."""
    out = Path(plan.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    result_path = out / RESULT_FILE
    if result_path.exists():
        result_path.unlink()
    plan_path = plan.write(out / PLAN_FILE)
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log = (out / LOG_FILE).open("ab")
    proc = subprocess.Popen(
        [python or sys.executable, "-m", "harness.load.engine", str(plan_path)],
        stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env,
        start_new_session=True, text=True, bufsize=1,
    )
    pgid = proc.pid
    reader = threading.Thread(target=_read_progress, args=(proc.stdout, on_progress), daemon=True)
    reader.start()
    deadline = time.monotonic() + _deadline_s(plan)
    cancelled = False
    timed_out = False
    try:
        while proc.poll() is None:
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            if time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(0.05)
        if proc.poll() is None:
            stop_group(proc, STOP_STEPS)
    except BaseException:
        stop_group(proc, STOP_STEPS)
        raise
    finally:
        signal_group(pgid, signal.SIGKILL)  # any straggler (a stuck worker) in the group
        reader.join(timeout=2.0)
        log.close()
    return _outcome(plan, out, proc.returncode, cancelled, timed_out)


def _log_tail(out: Path, lines: int = 15) -> str:
    try:
        text = (out / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _outcome(plan: LoadPlan, out: Path, returncode: int | None, cancelled: bool, timed_out: bool) -> LoadOutcome:
    error: str | None = None
    interrupted = cancelled
    phases: tuple[PhaseMeasurement, ...] = ()
    try:
        result = read_result(out)
        phases = result.phases
        error = result.error
        interrupted = interrupted or result.interrupted
    except FileNotFoundError:
        error = f"the load engine wrote no {RESULT_FILE} (exit code {returncode})"
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        error = f"the load engine's {RESULT_FILE} is unreadable: {exc}"
    if timed_out:
        error = (error + "; " if error else "") + (
            f"the load engine overran its deadline of {_deadline_s(plan):.0f} s and was stopped"
        )
    elif returncode not in (0, None) and not cancelled and error is None:
        error = f"the load engine exited with code {returncode}"
    if error and not cancelled and (timed_out or not phases and "Error" not in error):
        tail = _log_tail(out)
        if tail:
            error += f"\n--- {LOG_FILE} (last lines) ---\n{tail}"
    return LoadOutcome(phases=phases, error=error, interrupted=interrupted, output_dir=out)
