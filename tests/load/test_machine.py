"""Machine readings: whether the generator was denied a CPU by other work on its machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from harness.load.machine import MachineReading, read_machine, shares

BUSY_LOOP = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass\n"
linux_only = pytest.mark.skipif(not os.path.exists("/proc/self/schedstat"), reason="needs /proc schedstat")


@pytest.fixture
def busy_loops() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two busy-looping processes; the test pins them. Killed afterwards, whatever happens."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(2)]
    yield procs
    for p in procs:
        p.kill()
        p.wait(timeout=5)


@linux_only
def test_a_process_sharing_its_cpu_with_a_busy_loop_is_seen_waiting_for_it(
    busy_loops: list[subprocess.Popen[bytes]],
) -> None:
    cpu = min(os.sched_getaffinity(0))
    measured, rival = busy_loops
    os.sched_setaffinity(measured.pid, {cpu})
    os.sched_setaffinity(rival.pid, {cpu})
    first = read_machine(measured.pid)
    time.sleep(1.0)
    last = read_machine(measured.pid)
    wait = shares(first, last).runqueue_wait_pct
    # Two runnable processes on one CPU: each waits about half the time.
    assert wait is not None and 25.0 < wait < 75.0


@linux_only
def test_a_process_alone_on_its_cpu_hardly_waits(busy_loops: list[subprocess.Popen[bytes]]) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs")
    measured, rival = busy_loops
    os.sched_setaffinity(measured.pid, {cpus[0]})
    os.sched_setaffinity(rival.pid, {cpus[1]})
    first = read_machine(measured.pid)
    time.sleep(1.0)
    last = read_machine(measured.pid)
    wait = shares(first, last).runqueue_wait_pct
    assert wait is not None and wait < 20.0


def test_shares_are_percent_of_one_core_over_the_wall_time_between_readings() -> None:
    first = MachineReading(at=100.0, runqueue_wait_s=1.0, steal_s=10.0, busy_s=50.0)
    last = MachineReading(at=102.0, runqueue_wait_s=1.1, steal_s=10.2, busy_s=53.0)
    got = shares(first, last)
    assert got.runqueue_wait_pct == pytest.approx(5.0)
    assert got.steal_pct == pytest.approx(10.0)
    assert got.machine_cpu_pct == pytest.approx(150.0)


@pytest.mark.parametrize(("kernel_busy", "processes_busy", "pct"), [(0.04, 0.94, 47.0), (3.0, 0.94, 150.0)])
def test_the_machines_busy_cpu_is_the_larger_of_its_two_readings(
    kernel_busy: float, processes_busy: float, pct: float
) -> None:
    # The kernel's tick-sampled counters miss work that wakes and sleeps between ticks (the
    # engine's own traffic read 1-2 % there against 47 % in the processes' times); the processes'
    # times miss what runs outside this PID namespace. Each is a floor: the larger is kept.
    first = MachineReading(at=100.0, runqueue_wait_s=None, steal_s=None, busy_s=50.0, processes_s=10.0)
    last = MachineReading(at=102.0, runqueue_wait_s=None, steal_s=None, busy_s=50.0 + kernel_busy,
                          processes_s=10.0 + processes_busy)  # fmt: skip
    assert shares(first, last).machine_cpu_pct == pytest.approx(pct)


def test_work_done_by_a_process_that_ended_between_readings_is_counted() -> None:
    # Its time moves to its parent (this test) when reaped: the sum over processes keeps it.
    first = read_machine()
    subprocess.run([sys.executable, "-c", "import time\nend = time.process_time() + 0.4\n"
                    "while time.process_time() < end: pass\n"], check=True)  # fmt: skip
    last = read_machine()
    assert first.processes_s is not None and last.processes_s is not None
    assert last.processes_s - first.processes_s >= 0.4


def test_readings_the_os_does_not_give_are_none_not_zero() -> None:
    first = MachineReading(at=1.0, runqueue_wait_s=None, steal_s=None, busy_s=1.0)
    last = MachineReading(at=2.0, runqueue_wait_s=None, steal_s=None, busy_s=1.5)
    got = shares(first, last)
    assert got.runqueue_wait_pct is None and got.steal_pct is None
