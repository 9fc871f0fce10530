"""Stopping a child and everything it started: the whole process group, signal by signal, each
after its grace, and never an error for a group that is already gone."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from harness.processes import signal_group, stop_group, wait_group_gone

# A leader that starts a grandchild in its group, prints both pids, and ignores the given signals.
LEADER = """
import signal, subprocess, sys, time
for name in sys.argv[1:]:
    signal.signal(getattr(signal, name), signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def start_group(*ignored: str) -> tuple[subprocess.Popen[str], int]:
    leader = subprocess.Popen([sys.executable, "-c", LEADER, *ignored], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)  # fmt: skip
    assert leader.stdout is not None
    return leader, int(leader.stdout.readline())


@pytest.fixture
def groups() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for leader in started:  # whatever the test did, nothing is left running
        signal_group(leader.pid, signal.SIGKILL)
        leader.wait(timeout=5)
        wait_group_gone(leader.pid)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_stopping_the_leader_stops_what_it_started(groups: list[subprocess.Popen[str]]) -> None:
    leader, grandchild = start_group()
    groups.append(leader)
    assert stop_group(leader, ((signal.SIGTERM, 5.0),))
    wait_group_gone(leader.pid)
    assert gone(grandchild)


def test_a_signal_the_leader_ignores_is_followed_by_the_next_after_its_grace(
    groups: list[subprocess.Popen[str]],
) -> None:
    leader, _ = start_group("SIGINT", "SIGTERM")
    groups.append(leader)
    started = time.monotonic()
    assert stop_group(leader, ((signal.SIGINT, 0.3), (signal.SIGTERM, 0.3), (signal.SIGKILL, 5.0)))
    assert time.monotonic() - started >= 0.6  # each grace was waited out
    assert leader.returncode == -signal.SIGKILL


def test_a_leader_that_outlives_every_step_is_reported(groups: list[subprocess.Popen[str]]) -> None:
    leader, _ = start_group("SIGTERM")
    groups.append(leader)
    assert not stop_group(leader, ((signal.SIGTERM, 0.2),))
    assert leader.poll() is None


def test_a_group_already_gone_is_not_an_error(groups: list[subprocess.Popen[str]]) -> None:
    leader, _ = start_group()
    groups.append(leader)
    signal_group(leader.pid, signal.SIGKILL)
    leader.wait(timeout=5)
    wait_group_gone(leader.pid)
    signal_group(leader.pid, signal.SIGTERM)
    assert stop_group(leader, ((signal.SIGTERM, 0.1),))
