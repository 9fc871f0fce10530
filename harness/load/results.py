"""How a phase's tally becomes its record: the measurement, and the generator's health.

``tally_to_phase`` turns a (merged) :class:`~harness.load.tally.PhaseTally` into the
:class:`~harness.records.PhaseMeasurement` the rest of the harness reads: per-endpoint and
per-window latency summaries, throughput over the window while arrivals were offered, and the
generator's health judged against :class:`Thresholds`. ``phase_to_dict`` / ``phase_from_dict``
carry records through ``load-result.json``; ``stop_reason`` is the stress steps' stop condition.
Pure: no Locust.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from harness.load import recording
from harness.load.tally import PhaseTally
from harness.records import (
    EndpointMeasurement,
    ErrorSample,
    GeneratorHealth,
    LatencySummary,
    PhaseMeasurement,
    WindowMeasurement,
)

__all__ = [
    "Thresholds",
    "phase_from_dict",
    "phase_to_dict",
    "stop_reason",
    "tally_to_phase",
]


# Share of wall time the generator waited for a CPU (run queue + steal), in %, past which an
# event loop running late is the machine's doing: quiet, 0.4-0.7 % here; one busy loop beside
# it, 2.3 %; two, 6.6-7.4 % (harness.load.machine).
MACHINE_DENIED_PCT = 5.0


class Thresholds:
    """When the generator is judged saturated, and why each threshold is where it is.

    * CPU mean > 90 % of one core. gevent runs on one core; near 100 % every ready greenlet waits
      for the loop, and that wait is added to every measured latency. At the engine's usual rates
      it uses a fraction of a core and adds under a millisecond at p99; its closed-loop maximum
      is where its CPU reaches ~100 % and p99 jumps to tens of ms (figures: benchmarks/README.md).
      Locust itself warns at 90 % for the same reason.
    * event-loop lag p99 > 20 ms. A greenlet sleeps 50 ms and measures the overshoot. Idle, the
      overshoot is < 1 ms; under healthy load p99 stays at 1-5 ms. 20 ms is above any healthy
      value and below the latencies an SLO cares about (100 ms+), so when it trips, the
      generator - not the target - would dominate the tail. Unless the generator had CPU to spare
      (under half the CPU limit) and waited for a CPU at least ``MACHINE_DENIED_PCT`` of the time
      (run queue and steal): then the machine kept it off the CPU, and the phase is crowded
      rather than saturated, like steal below.
    * dropped iterations > 1 % of scheduled. Then the offered load was not offered: the rate
      measured is not the rate asked for (k6 reports the same as dropped_iterations).
    * hypervisor steal > 10 % of a core marks the phase crowded, not saturated: the virtual machine
      was paused, and the pauses were timed as latency, which only makes the target look slower
      (the verdict judges it: ``GeneratorHealth``). The generator's own wait for a CPU and the
      machine's busy CPU are reported too (``harness.load.machine``); the audit uses the latter to
      tell whether other work on the machine took the CPU (``harness.tiers.with_other_work``).
    """

    def __init__(
        self,
        cpu_pct: float = 90.0,
        loop_lag_p99_ms: float = 20.0,
        dropped_ratio: float = 0.01,
        steal_pct: float = 10.0,
    ) -> None:
        self.cpu_pct = cpu_pct
        self.loop_lag_p99_ms = loop_lag_p99_ms
        self.dropped_ratio = dropped_ratio
        self.steal_pct = steal_pct


def _health(tally: PhaseTally, thresholds: Thresholds) -> GeneratorHealth:
    procs = tally.processes
    cpu_max = max((p.cpu_max for p in procs), default=0.0)
    cpu_mean = max((p.cpu_mean for p in procs), default=0.0)
    lag_p99 = max((p.lag_p99_ms for p in procs), default=0.0)
    lag_max = max((p.lag_max_ms for p in procs), default=0.0)
    rss = sum(p.rss_max_mb for p in procs)
    cpu_wait = _worst(p.runqueue_wait_pct for p in procs)
    steal = _worst(p.steal_pct for p in procs)
    machine_cpu = _worst(p.machine_cpu_pct for p in procs)
    reasons: list[str] = []
    # The machine's business, not the generator's: judged by the verdict (a phase that met its
    # SLOs on a busy machine still met them), so it crowds the phase rather than saturating it.
    busy: list[str] = []
    crowded_by: list[str] = []
    denied = (cpu_wait or 0.0) + (steal or 0.0)
    if cpu_mean > thresholds.cpu_pct:
        reasons.append(
            f"The load generator used {cpu_mean:.0f}% of a CPU core on average (limit "
            f"{thresholds.cpu_pct:.0f}%): its own queueing shows up as latency; add workers "
            "(--workers 2) or a second machine."
        )
    if lag_p99 > thresholds.loop_lag_p99_ms:
        late = f"The generator's event loop ran {lag_p99:.1f} ms late at p99 (limit {thresholds.loop_lag_p99_ms:.0f} ms)"
        if cpu_mean < thresholds.cpu_pct / 2 and denied >= MACHINE_DENIED_PCT:
            # A generator with CPU to spare that runs late was kept off the CPU (run queue,
            # steal): its sends are late, so latency only grows (iterations it could not start
            # are judged on their own, below).
            # Steal pauses the target too; the run queue alone delays only this process.
            crowded_by.append("steal" if (steal or 0.0) >= (cpu_wait or 0.0) else "cpu-wait")
            busy.append(
                f"{late} while it used {cpu_mean:.0f}% of a core and waited for one {denied:.1f}% of the "
                "time (run queue and steal): the machine, not the generator, was busy; requests were "
                "sent and timed late, so latency is an upper bound."
            )
        else:
            reasons.append(
                f"{late}: requests were sent and timed late; reduce per-request work in the locustfile "
                "or add workers."
            )
    scheduled = tally.scheduled
    dropped = tally.dropped
    if scheduled and dropped / scheduled > thresholds.dropped_ratio:
        reasons.append(
            f"{dropped} of {scheduled} iterations ({dropped / scheduled:.1%}) could not start "
            f"(limit {thresholds.dropped_ratio:.0%}): the user pool was full; raise max_users, "
            "or the target is too slow for this rate."
        )
    paced = sum(p.paced_requests for p in procs)
    held = sum(p.paced_held for p in procs)
    if paced and held / paced > thresholds.dropped_ratio:
        cap = sum(p.max_rps or 0.0 for p in procs)
        waited_ms = 1000.0 * sum(p.paced_wait_s for p in procs) / held
        reasons.append(
            f"The pack's max_rps ({cap:g} requests/s) held back {held} of {paced} requests "
            f"({held / paced:.1%}, {waited_ms:.1f} ms each on average; limit {thresholds.dropped_ratio:.0%}): "
            "their latency includes the harness's own wait; the arrivals ran over the cap "
            "(an action made more requests than measured before), so lower the tier's load or raise max_rps."
        )
    lost = tally.workers_lost
    if lost:
        reasons.append(
            f"{lost} load worker(s) died or went missing during the phase: their unsent data "
            "is missing from the totals, so the measurement is incomplete; rerun the tier."
        )
    reasons.extend(tally.notes)
    if steal is not None and steal > thresholds.steal_pct:
        crowded_by.append("steal")
        busy.append(
            f"The hypervisor took {steal:.1f}% of a core from this virtual machine (steal time, "
            f"limit {thresholds.steal_pct:.0f}%): the generator and the target were paused at random "
            "moments and those pauses were timed as latency; rerun when the host is quieter."
        )
    return GeneratorHealth(
        cpu_max_pct=round(cpu_max, 1),
        cpu_mean_pct=round(cpu_mean, 1),
        loop_lag_p99_ms=round(lag_p99, 3),
        loop_lag_max_ms=round(lag_max, 3),
        rss_max_mb=round(rss, 1),
        saturated=bool(reasons),
        reasons=(*reasons, *busy),
        workers=tally.workers,
        workers_lost=lost,
        cpu_wait_pct=None if cpu_wait is None else round(cpu_wait, 2),
        steal_pct=None if steal is None else round(steal, 2),
        machine_cpu_pct=None if machine_cpu is None else round(machine_cpu, 1),
        crowded=bool(busy),
        crowded_by=tuple(dict.fromkeys(crowded_by)),  # steal may be named by both checks
        held_by_max_rps=held,
    )


def _worst(readings: Iterable[float | None]) -> float | None:
    """The highest of the processes' readings; None when none of them could read it."""
    values = [v for v in readings if v is not None]
    return max(values) if values else None


def tally_to_phase(tally: PhaseTally, thresholds: Thresholds | None = None) -> PhaseMeasurement:
    """Build the :class:`PhaseMeasurement` record from a (merged) tally."""
    thresholds = thresholds or Thresholds()
    endpoints = []
    for name in sorted(tally.endpoints):
        e = tally.endpoints[name]
        endpoints.append(
            EndpointMeasurement(
                name=name,
                requests=e.requests,
                errors=e.errors,
                errors_by_reason=dict(sorted(e.reasons.items())),
                latency=recording.summarise_encoded(e.lat),
                service=recording.summarise_encoded(e.svc),
                latency_hdr=e.lat,
                service_hdr=e.svc,
            )
        )
    windows = tuple(
        WindowMeasurement(
            start=w.start, end=w.end, requests=w.requests, errors=w.errors,
            latency_hdr=w.lat, service_hdr=w.svc,
        )
        for w in tally.windows
    )
    all_lat = recording.merge(recording.decode(e.lat) for e in tally.endpoints.values())
    all_svc = recording.merge(recording.decode(e.svc) for e in tally.endpoints.values())
    active = tally.active_s
    # Throughput counts what completed while arrivals were offered (see LiveTally); the drain's
    # responses still count in the latency histograms.
    achieved = tally.requests_in_window / active if active > 0 else 0.0
    return PhaseMeasurement(
        kind=tally.kind,
        label=tally.label,
        offered_rps=round(tally.offered_rps, 3),
        achieved_rps=round(achieved, 3),
        started_at=tally.started_at,
        ended_at=tally.ended_at,
        iterations_scheduled=tally.scheduled,
        iterations_started=tally.started,
        dropped_iterations=tally.dropped,
        endpoints=tuple(endpoints),
        windows=windows,
        generator=_health(tally, thresholds),
        latency=recording.summarise(all_lat),
        service=recording.summarise(all_svc),
        error_samples=tally.samples,
        max_users=tally.max_users,
        aborted=tally.aborted,
        iterations_completed=tally.completed_in_window,
        active_s=round(active, 3),
    )


# --- PhaseMeasurement <-> JSON -----------------------------------------------------------------


def phase_to_dict(phase: PhaseMeasurement) -> dict[str, Any]:
    data = asdict(phase)
    return data


def _summary(d: dict[str, Any]) -> LatencySummary:
    return LatencySummary(**d)


def phase_from_dict(d: dict[str, Any]) -> PhaseMeasurement:
    """Inverse of :func:`phase_to_dict` (tolerates fields added later with defaults)."""
    gen = dict(d["generator"])
    gen["reasons"] = tuple(gen.get("reasons", ()))
    gen["crowded_by"] = tuple(gen.get("crowded_by", ()))
    return PhaseMeasurement(
        kind=d["kind"],
        label=d["label"],
        offered_rps=d["offered_rps"],
        achieved_rps=d["achieved_rps"],
        started_at=d["started_at"],
        ended_at=d["ended_at"],
        iterations_scheduled=d["iterations_scheduled"],
        iterations_started=d["iterations_started"],
        dropped_iterations=d["dropped_iterations"],
        endpoints=tuple(
            EndpointMeasurement(
                name=e["name"], requests=e["requests"], errors=e["errors"],
                errors_by_reason=dict(e["errors_by_reason"]), latency=_summary(e["latency"]),
                service=_summary(e["service"]), latency_hdr=e["latency_hdr"],
                service_hdr=e["service_hdr"],
            )
            for e in d["endpoints"]
        ),
        windows=tuple(WindowMeasurement(**w) for w in d["windows"]),
        generator=GeneratorHealth(**gen),
        latency=_summary(d["latency"]),
        service=_summary(d["service"]),
        error_samples=tuple(ErrorSample(**s) for s in d.get("error_samples", ())),
        max_users=d.get("max_users", 0),
        aborted=d.get("aborted"),
        iterations_completed=d.get("iterations_completed", 0),
        active_s=d.get("active_s", 0.0),
    )


def stop_reason(
    tally_requests: int,
    tally_errors: int,
    p99_ms: float,
    achieved_rps: float,
    offered_rps: float,
    *,
    error_rate: float | None,
    p99_limit_ms: float | None,
    throughput_ratio: float | None,
) -> str | None:
    """Why a stress step should stop now, as a short sentence, or None to keep going."""
    if tally_requests == 0:
        return None
    rate = tally_errors / tally_requests
    if error_rate is not None and rate >= error_rate:
        return f"stop condition: error rate {rate:.1%} >= {error_rate:.1%}"
    if p99_limit_ms is not None and p99_ms > p99_limit_ms:
        return f"stop condition: p99 {p99_ms:.1f} ms > {p99_limit_ms:g} ms"
    if throughput_ratio is not None and offered_rps > 0 and not math.isnan(achieved_rps):
        ratio = achieved_rps / offered_rps
        if ratio < throughput_ratio:
            return f"stop condition: achieved {achieved_rps:.1f} req/s is {ratio:.2f} x offered (< {throughput_ratio:g})"
    return None
