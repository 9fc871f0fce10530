"""Is a measured phase the target's own, an upper bound, or spoiled? Decided here, once.

The load stage only measures: the generator's CPU, its event loop's lateness, the arrivals it
could not start, the requests the pack's max_rps held back, a lost worker, the hypervisor's
steal, the machine's busy CPU. This module turns those readings into a
:class:`~harness.records.PhaseValidity`, and everything downstream (the tiers stage, the
capacity model, the verdict's rules, the reports) reads that one classification::

    spoiled       the generator could not keep its own schedule: its latency is its own
    upper-bound   the machine was busy (steal, other work, the generator kept off the CPU):
                  latency only grows, so a pass counts and a miss must exceed the bound
    own           neither: the target's latency, to within the noise floor

Why these thresholds:

* generator CPU over 90 % of one core: gevent runs on one core, and near 100 % every ready
  greenlet waits for the loop, so that wait is added to every measured latency (Locust warns at
  90 % for the same reason);
* event-loop lag p99 over 20 ms: idle, the overshoot is under 1 ms and under healthy load it stays
  at a few; 20 ms is above any healthy value and below what an SLO cares about. Unless the
  generator had CPU to spare (under half the CPU limit) and waited for a CPU at least
  ``machine_denied_pct`` of the time (run queue and steal): then the machine kept it off the
  CPU, and the phase is crowded rather than spoiled;
* more than 1 % of the scheduled iterations dropped (or of the requests held by max_rps): the
  offered load was not offered (k6 reports the same as dropped_iterations);
* steal over 10 % of a core: the virtual machine was paused and the pauses were timed as latency;
* other work (the machine's CPU minus the generator's and the target's) over half a core:
  the target shared the CPU with something else, which a second load test beside an audit shows
  as a healthy service missing its SLOs.

Pure: no I/O, no Locust.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from harness.records import (
    CrowdedBy,
    EndpointMeasurement,
    GeneratorHealth,
    PhaseMeasurement,
    PhaseValidity,
)

__all__ = [
    "MIN_PROBE_REQUESTS",
    "OTHER_CPU_LIMIT_PCT",
    "Thresholds",
    "classify",
    "from_parts",
    "probe_endpoints",
    "with_other_work",
]

#: CPU used on the generator's machine by anything but the generator and the target, in % of one
#: core, above which a phase is crowded. Quiet, that remainder (the kernel's loopback networking,
#: the harness's own parent process) stays well under it; a second load test beside an audit
#: takes two to four times it.
OTHER_CPU_LIMIT_PCT = 50.0

#: Fewest answered requests an endpoint needs in a tier's probe for its median to stand for its
#: unloaded service time. A probe sends each task a handful of times (40 iterations over nine
#: tasks: four or five each), its requests hardly overlap, and the median of three is already
#: past one slow outlier; asking for more left the slowest endpoint out at some volumes.
MIN_PROBE_REQUESTS = 3


@dataclass(frozen=True)
class Thresholds:
    """When the generator is spoiled or the machine crowded (see the module docstring)."""

    cpu_pct: float = 90.0
    loop_lag_p99_ms: float = 20.0
    dropped_ratio: float = 0.01
    steal_pct: float = 10.0
    # Share of wall time the generator waited for a CPU (run queue + steal), in %, past which an
    # event loop running late is the machine's doing: quiet, well under 1 %; one busy loop beside
    # the generator, about 2 %; two, about 7 % (harness.load.machine).
    machine_denied_pct: float = 5.0


def classify(
    g: GeneratorHealth, *, scheduled: int, dropped: int, thresholds: Thresholds | None = None
) -> PhaseValidity:
    """The phase's validity from the generator's readings (other work is added by
    :func:`with_other_work`, once the target's own CPU is known)."""
    t = thresholds or Thresholds()
    spoiled = _spoiling(g, scheduled, dropped, t)
    crowding = _crowding(g, t)
    crowded_by = tuple(dict.fromkeys(by for by, _ in crowding))  # steal may be named twice
    dropped_only = len(spoiled) == 1 and _dropped_reason(scheduled, dropped, t) == spoiled[0]
    return from_parts(g, spoiled, [text for _, text in crowding], crowded_by,
                      generator_limited=bool(spoiled) and not dropped_only)  # fmt: skip


def with_other_work(
    phase: PhaseMeasurement, target_cpu_pct: float | None, limit_pct: float = OTHER_CPU_LIMIT_PCT
) -> PhaseMeasurement:
    """The phase with the CPU other work used on the machine during it, and past ``limit_pct``
    crowded (with the reason).

    Other work = the machine's busy CPU - the generator's - the target's. Only judged when the
    harness sampled the target's processes (it started them) and the OS reported the machine's
    CPU: with ``--target`` the target's own CPU cannot be told apart from anyone else's. A
    database server on the same machine counts as other work, unless the harness started it for
    the target (a profile with database = "postgresql"): then its CPU is the target's.
    """
    g = phase.generator
    if g.machine_cpu_pct is None or target_cpu_pct is None:
        return phase
    generator = g.cpu_mean_pct * max(1, g.workers)
    other = max(0.0, g.machine_cpu_pct - generator - target_cpu_pct)
    measured = replace(g, other_cpu_pct=round(other, 1))
    v = phase.validity
    crowding = list(v.crowding)
    crowded_by: tuple[CrowdedBy, ...] = v.crowded_by
    if other > limit_pct:
        during = "the steady window" if phase.kind == "steady" else phase.label
        crowding.append(
            f"Other work on this machine used {other:.0f}% of a core during {during} (the machine "
            f"{g.machine_cpu_pct:.0f}%, the generator {generator:.0f}%, the target {target_cpu_pct:.0f}%; "
            f"limit {limit_pct:.0f}%): the generator and the target shared the CPU with it, so the "
            "latency measured is an upper bound on the target's; rerun when the machine is quiet."
        )
        crowded_by = (*crowded_by, "other-work")
    return replace(phase, generator=measured, validity=from_parts(
        measured, list(v.spoiled_by), crowding, crowded_by, generator_limited=v.generator_limited))


def from_parts(
    g: GeneratorHealth, spoiled: list[str], crowding: list[str], crowded_by: tuple[CrowdedBy, ...],
    *, generator_limited: bool | None = None,
) -> PhaseValidity:
    """The validity of a phase whose spoiling reasons, crowding reasons and crowding causes are
    known: its kind and the bounds on what the generator and the machine can have added."""
    # What crowded the machine decides whether the target was slowed too: steal pauses both, other
    # work takes CPU from both. A generator kept waiting for a CPU while the other work measured
    # stayed within its limit was late only in its own timing: a late send and a late read add at
    # most twice its event loop's worst lateness. Where the other work is unknown (a target the
    # harness did not start), it may have been anyone's doing.
    slowed_target = bool(crowded_by) and (crowded_by != ("cpu-wait",) or g.other_cpu_pct is None)
    service_bound = None if slowed_target else g.loop_lag_max_ms
    if spoiled:
        kind, latency_bound = "spoiled", None
    elif crowded_by:
        kind, latency_bound = "upper-bound", None if slowed_target else 2 * g.loop_lag_max_ms
    else:
        kind, latency_bound = "own", 0.0
    return PhaseValidity(
        kind=kind,  # type: ignore[arg-type]
        spoiled_by=tuple(spoiled),
        crowding=tuple(crowding),
        crowded_by=crowded_by,
        latency_bound_ms=latency_bound,
        service_bound_ms=service_bound,
        generator_limited=bool(spoiled) if generator_limited is None else generator_limited,
    )


def _spoiling(g: GeneratorHealth, scheduled: int, dropped: int, t: Thresholds) -> list[str]:
    reasons: list[str] = []
    if g.cpu_mean_pct > t.cpu_pct:
        reasons.append(
            f"The load generator used {g.cpu_mean_pct:.0f}% of a CPU core on average (limit "
            f"{t.cpu_pct:.0f}%): its own queueing shows up as latency; add workers "
            "(--workers 2) or a second machine."
        )
    if g.loop_lag_p99_ms > t.loop_lag_p99_ms and not _kept_off_cpu(g, t):
        reasons.append(
            f"{_late(g, t)}: requests were sent and timed late; reduce per-request work in the "
            "locustfile or add workers."
        )
    late_starts = _dropped_reason(scheduled, dropped, t)
    if late_starts:
        reasons.append(late_starts)
    held, paced = g.held_by_max_rps, g.paced_requests
    if paced and held / paced > t.dropped_ratio:
        waited_ms = 1000.0 * g.paced_wait_s / held
        reasons.append(
            f"The pack's max_rps ({g.max_rps or 0:g} requests/s) held back {held} of {paced} requests "
            f"({held / paced:.1%}, {waited_ms:.1f} ms each on average; limit {t.dropped_ratio:.0%}): "
            "their latency includes the harness's own wait; the arrivals ran over the cap "
            "(an action made more requests than measured before), so lower the tier's load or raise max_rps."
        )
    if g.workers_lost:
        reasons.append(
            f"{g.workers_lost} load worker(s) died or went missing during the phase: their unsent data "
            "is missing from the totals, so the measurement is incomplete; rerun the tier."
        )
    reasons.extend(g.notes)
    return reasons


def _dropped_reason(scheduled: int, dropped: int, t: Thresholds) -> str:
    if not (scheduled and dropped / scheduled > t.dropped_ratio):
        return ""
    return (
        f"{dropped} of {scheduled} iterations ({dropped / scheduled:.1%}) could not start "
        f"(limit {t.dropped_ratio:.0%}): the user pool was full; raise max_users, "
        "or the target is too slow for this rate."
    )


def _kept_off_cpu(g: GeneratorHealth, t: Thresholds) -> bool:
    """A generator with CPU to spare that runs late was kept off the CPU (run queue, steal)."""
    denied = (g.cpu_wait_pct or 0.0) + (g.steal_pct or 0.0)
    return g.cpu_mean_pct < t.cpu_pct / 2 and denied >= t.machine_denied_pct


def _late(g: GeneratorHealth, t: Thresholds) -> str:
    return (
        f"The generator's event loop ran {g.loop_lag_p99_ms:.1f} ms late at p99 "
        f"(limit {t.loop_lag_p99_ms:.0f} ms)"
    )


def _crowding(g: GeneratorHealth, t: Thresholds) -> list[tuple[CrowdedBy, str]]:
    crowding: list[tuple[CrowdedBy, str]] = []
    if g.loop_lag_p99_ms > t.loop_lag_p99_ms and _kept_off_cpu(g, t):
        # Its sends are late, so latency only grows. Steal pauses the target too; the run queue
        # alone delays only this process.
        denied = (g.cpu_wait_pct or 0.0) + (g.steal_pct or 0.0)
        by: CrowdedBy = "steal" if (g.steal_pct or 0.0) >= (g.cpu_wait_pct or 0.0) else "cpu-wait"
        crowding.append((by,
            f"{_late(g, t)} while it used {g.cpu_mean_pct:.0f}% of a core and waited for one "
            f"{denied:.1f}% of the time (run queue and steal): the machine, not the generator, was "
            "busy; requests were sent and timed late, so latency is an upper bound."
        ))  # fmt: skip
    if g.steal_pct is not None and g.steal_pct > t.steal_pct:
        crowding.append(("steal",
            f"The hypervisor took {g.steal_pct:.1f}% of a core from this virtual machine (steal time, "
            f"limit {t.steal_pct:.0f}%): the generator and the target were paused at random "
            "moments and those pauses were timed as latency; rerun when the host is quieter."
        ))  # fmt: skip
    return crowding


def probe_endpoints(probe: PhaseMeasurement | None) -> dict[str, EndpointMeasurement]:
    """The endpoints of a probe whose median service time is usable, by name.

    Empty when there was no probe or it was not clean (a crowded or spoiled probe says nothing
    about the target's own work); else those with ``MIN_PROBE_REQUESTS`` answered and timed.
    """
    if probe is None or not probe.validity.clean:
        return {}
    return {
        e.name: e
        for e in probe.endpoints
        if e.requests - e.errors >= MIN_PROBE_REQUESTS and e.service.count > 0
    }
