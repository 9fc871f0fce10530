"""The parent side of trying each persona's tasks once (``harness.load.tryout``, a child process).

``scaleready check`` lists the locustfile's personas before the target starts (an import error
is found then) and, once customers exist, runs each task once. The child imports Locust, so it
runs in its own process group; ``cancel`` (Ctrl-C) or the deadline stops it, and no process of it
is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.load.plan import LoadPlan
from harness.processes import signal_group, stop_group

ANSWER_FILE = "tryout.json"  # harness.load.tryout writes it
LOG_FILE = "tryout.log"
STOP_STEPS = ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0))

__all__ = ["TaskTry", "TriedRequest", "Tryout", "run_tryout"]


@dataclass(frozen=True)
class TriedRequest:
    name: str  # the Locust request name (the endpoint in every report)
    method: str
    status: int  # 0: no answer
    reason: str | None  # the load engine's failure reason ("http-500", "timeout"), None = success
    error: str = ""
    foreign: tuple[str, ...] = ()  # other customers' indexes whose markers the answer held


@dataclass(frozen=True)
class TaskTry:
    persona: str
    task: str
    requests: tuple[TriedRequest, ...] = ()
    error: str = ""  # what the task raised ("ValueError at line 40: ..."), "" when it ended well
    skipped: str = ""  # why it was not called
    on_start: bool = False  # the error is the user's on_start's


@dataclass(frozen=True)
class Tryout:
    import_error: str = ""
    personas: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (persona, its distinct tasks)
    tasks: tuple[TaskTry, ...] = ()
    failure: str = ""  # the child itself failed (crashed, timed out): what happened


def run_tryout(plan: LoadPlan, *, listing: bool, timeout_s: float, cancel: threading.Event | None = None) -> Tryout:
    """Run the child on ``plan`` (``listing``: import and list only) and read its answer."""
    out = Path(plan.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    answer = out / ANSWER_FILE
    answer.unlink(missing_ok=True)
    plan_path = plan.write(out / "tryout-plan.json")
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    args = [sys.executable, "-m", "harness.load.tryout", str(plan_path), *(["--list"] if listing else [])]
    with (out / LOG_FILE).open("ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=Path(plan.locustfile).parent, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout_s
        stopped = ""
        try:
            while proc.poll() is None:
                if cancel is not None and cancel.is_set():
                    stopped = "interrupted"
                    break
                if time.monotonic() > deadline:
                    stopped = f"did not finish within {timeout_s:g} s"
                    break
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                stop_group(proc, STOP_STEPS)
            signal_group(proc.pid, signal.SIGKILL)  # anything the locustfile spawned
    if stopped:
        return Tryout(failure=stopped)
    try:
        return _parse(json.loads(answer.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        tail = (out / LOG_FILE).read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        return Tryout(failure=f"exited with code {proc.returncode} without an answer: " + " / ".join(tail))


def _parse(data: dict[str, Any]) -> Tryout:
    tasks = tuple(
        TaskTry(
            persona=t["persona"], task=t["task"], error=t.get("error", ""), skipped=t.get("skipped", ""),
            on_start=bool(t.get("on_start")),
            requests=tuple(TriedRequest(name=r["name"], method=r["method"], status=int(r["status"]),
                                        reason=r.get("reason"), error=r.get("error", ""),
                                        foreign=tuple(r.get("foreign", ()))) for r in t.get("requests", ())),
        )
        for t in data.get("tasks", ())
    )  # fmt: skip
    personas = tuple((p["persona"], tuple(p["tasks"])) for p in data.get("personas", ()))
    return Tryout(import_error=data.get("import_error", ""), personas=personas, tasks=tasks)
