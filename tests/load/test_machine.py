"""Machine readings: whether the generator was denied a CPU by other work on its machine."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from harness.load.machine import MachineReading, read_machine, shares
from harness.load.results import Thresholds, _health
from harness.load.tally import PhaseTally
from tests.load.tallies import phase_tally, process_health

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


def tally_with(**process: float | None) -> PhaseTally:
    return phase_tally(scheduled=1000, dropped=0, processes=(process_health(**process),))


def test_the_generators_cpu_wait_is_reported_but_alone_does_not_invalidate() -> None:
    # The generator waits for a CPU whenever the target beside it is busy too (3 % measured for
    # the healthy demo at 5000 customers on a machine 70 % busy): a reading, not a verdict. What
    # invalidates a window is CPU used by others (harness.tiers.other_cpu_reason).
    health = _health(tally_with(runqueue_wait_pct=4.7, steal_pct=0.2, machine_cpu_pct=110.0), Thresholds())
    assert not health.saturated
    assert health.cpu_wait_pct == 4.7 and health.machine_cpu_pct == 110.0


def test_steal_by_the_hypervisor_over_its_limit_makes_the_phase_crowded_not_saturated() -> None:
    # Steal pauses the target too and only adds latency: the verdict judges it, like other work.
    health = _health(tally_with(runqueue_wait_pct=0.5, steal_pct=12.0, machine_cpu_pct=90.0), Thresholds())
    assert health.crowded and not health.saturated
    assert any("steal" in r for r in health.reasons)
    assert health.crowded_by == ("steal",)


def test_a_quiet_machine_or_one_that_gives_no_reading_raises_nothing() -> None:
    quiet = _health(tally_with(runqueue_wait_pct=0.5, steal_pct=0.4, machine_cpu_pct=95.0), Thresholds())
    unknown = _health(tally_with(), Thresholds())
    assert quiet.clean and unknown.clean
    assert unknown.cpu_wait_pct is None


@pytest.mark.parametrize(
    ("cpu_mean", "cpu_wait", "steal", "crowded_by", "saturated"),
    [
        (20.0, 6.0, 0.5, ("cpu-wait",), False),  # CPU to spare, kept off it: the machine was busy
        (20.0, 1.0, 6.0, ("steal",), False),  # the hypervisor paused the virtual machine
        (20.0, 1.0, 0.5, (), True),  # late with nothing to blame outside: the generator's own
        (60.0, 6.0, 0.5, (), True),  # busy itself as well: its own queueing may be part of it
    ],
)
def test_an_event_loop_running_late_is_the_machines_doing_only_when_the_generator_was_kept_off_the_cpu(
    cpu_mean: float, cpu_wait: float, steal: float, crowded_by: tuple[str, ...], saturated: bool
) -> None:
    tally = tally_with(runqueue_wait_pct=cpu_wait, steal_pct=steal, machine_cpu_pct=150.0)
    tally = dataclasses.replace(tally, processes=(dataclasses.replace(tally.processes[0], cpu_mean=cpu_mean,
                                                                      lag_p99_ms=35.0),))  # fmt: skip
    health = _health(tally, Thresholds())
    assert (health.crowded, health.saturated) == (bool(crowded_by), saturated)
    assert health.crowded_by == crowded_by
    assert any("event loop ran 35.0 ms late" in r for r in health.reasons)
