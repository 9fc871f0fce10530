"""Stopping the child processes the harness starts, and every process they started in turn.

The target, the pack's pytest suites and the load engine each run in their own session
(``start_new_session=True``), so each is the leader of a process group holding everything it
started: a ``uvicorn --workers`` master and its workers, pytest and the target a fixture spawned,
the engine and its Locust workers. Signalling the group reaches them all; signalling the leader
alone would leave orphans running after the audit.

A stop escalates: a gentle signal first (SIGINT lets the load engine write what it measured,
SIGTERM lets a server close its connections), then, after each caller's own grace, a firmer one.
Ground floor: no harness imports.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Sequence
from typing import Any

import psutil

__all__ = ["signal_group", "stop_group", "wait_group_gone"]


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to every process in group ``pgid``; a group already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_group(leader: subprocess.Popen[Any], steps: Sequence[tuple[int, float]]) -> bool:
    """Signal ``leader``'s group with each ``(signal, seconds)`` in turn, waiting that long for the
    leader to exit before the next; True once it has, False if it outlived every step."""
    for sig, wait_s in steps:
        signal_group(leader.pid, sig)
        try:
            leader.wait(timeout=wait_s)
            return True
        except subprocess.TimeoutExpired:
            continue
    return False


def wait_group_gone(pgid: int, timeout_s: float = 5.0) -> None:
    """Return once no live process is left in the group (a SIGKILL is delivered, not instant)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        members = []
        for proc in psutil.process_iter(["status"]):
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                    members.append(proc)
        if not members:
            return
        psutil.wait_procs(members, timeout=0.1)
