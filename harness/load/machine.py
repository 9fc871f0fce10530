"""What the machine under the load generator was doing: was the generator denied a CPU?

The generator's own CPU and event-loop lag say whether *it* was the bottleneck. They do not say
whether other work on the machine took the CPU it needed: then its greenlets wait, not in its
event loop but in the kernel's run queue, and every latency it times grows by that wait. Linux
counts that wait per thread (``/proc/<pid>/task/<tid>/schedstat``, second field: nanoseconds
spent runnable but not running), and the machine's ``steal`` time counts what the hypervisor
took from the whole virtual machine. The wait, and the p99 with it, grow with the work beside
the generator: a quiet machine keeps it under 1 %, busy-looping processes beside it take it to
several percent (figures: benchmarks/README.md).

The wait alone is not a verdict: it also grows when the *target* beside the generator is busy
(3 % for the healthy demo at 5000 customers with the machine 70 % busy, 4.7 % at its 1.5x step),
so it is reported, and what marks a window unclean is CPU used by neither the generator nor the
target (``harness.tiers.with_other_work``), which needs the machine's busy CPU from here.

The machine's busy CPU is read two ways, and the larger is used; both can only miss work. The
kernel's per-CPU counters (``/proc/stat``) are sampled at each timer tick, and work that wakes
on precise timers and sleeps again before the tick is never seen: the harness's own engine and
the null target read as a few percent busy there against nearly half a core in their own CPU
times. The processes' own CPU times (``/proc/<pid>/stat``, kept exact by the scheduler), summed
over every process this one can see, with the CPU of the children each has reaped, miss
processes outside this PID namespace (another container), which the kernel's counters do see.

Readings are cumulative counters; a phase takes one at its start and one at each sample and
reports the rate between the first and the last. Where the files do not exist (not Linux) the
readings are None and no check is made.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass

import psutil

__all__ = ["MachineReading", "MachineShares", "read_machine", "shares"]


@dataclass(frozen=True)
class MachineReading:
    at: float  # time.perf_counter()
    runqueue_wait_s: float | None  # this process's threads, runnable but not running, cumulative
    steal_s: float | None  # the whole machine, cumulative, summed over CPUs
    busy_s: float  # the whole machine: CPU time doing work (not idle, iowait or steal), all CPUs
    # every visible process's CPU time plus its reaped children's: exact, but only this namespace
    processes_s: float | None = None


def _runqueue_wait_s(pid: int) -> float | None:
    total = 0
    seen = False
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path, encoding="ascii") as f:
                total += int(f.read().split()[1])
            seen = True
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended between the listing and the read
    return total / 1e9 if seen else None


def _processes_cpu_s() -> float | None:
    """CPU seconds used by every visible process and the children it reaped, summed.

    Between two readings the difference counts each process's own work once: a process that
    exited and was reaped moved its time into its parent's children's time.
    """
    total = 0.0
    seen = False
    for proc in psutil.process_iter():
        try:
            t = proc.cpu_times()
        except (psutil.Error, OSError):
            continue  # gone between the listing and the read, or not ours to read
        total += t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
        seen = True
    return total if seen else None


def read_machine(pid: int | None = None) -> MachineReading:
    times = psutil.cpu_times()
    steal = getattr(times, "steal", None)
    # guest time is already counted in user time; steal is not work done on this machine
    not_busy = ("idle", "iowait", "steal", "guest", "guest_nice")
    busy = sum(getattr(times, f) for f in times._fields if f not in not_busy)
    return MachineReading(
        at=time.perf_counter(),
        runqueue_wait_s=_runqueue_wait_s(os.getpid() if pid is None else pid),
        steal_s=steal,
        busy_s=busy,
        processes_s=_processes_cpu_s(),
    )


@dataclass(frozen=True)
class MachineShares:
    """Between two readings, as % of wall time (one core = 100); None where a reading is missing."""

    runqueue_wait_pct: float | None  # this process's threads waiting for a CPU, summed over threads
    steal_pct: float | None  # the hypervisor's steal, summed over the machine's CPUs
    machine_cpu_pct: float | None  # all busy CPU, summed over the machine's CPUs


def shares(first: MachineReading, last: MachineReading) -> MachineShares:
    """Between two readings, as % of wall time (one core = 100, like a process's CPU %).

    ``runqueue_wait_pct``: how long this process's threads waited for a CPU, summed over threads;
    ``steal_pct`` and ``machine_cpu_pct``: the hypervisor's steal and all busy CPU, summed over
    the machine's CPUs (a 2-core machine goes up to 200); busy CPU is the larger of the kernel's
    counters and the processes' own times (see the module's docstring).
    """
    wall = last.at - first.at
    if wall <= 0:
        return MachineShares(runqueue_wait_pct=None, steal_pct=None, machine_cpu_pct=None)

    def pct(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else max(0.0, (b - a) / wall * 100.0)

    return MachineShares(
        runqueue_wait_pct=pct(first.runqueue_wait_s, last.runqueue_wait_s),
        steal_pct=pct(first.steal_s, last.steal_s),
        machine_cpu_pct=max(
            (v for v in (pct(first.busy_s, last.busy_s), pct(first.processes_s, last.processes_s)) if v is not None),
            default=None,
        ),
    )
