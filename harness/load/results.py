"""How a phase's tally becomes its record: the measurement, and the generator's health.

``tally_to_phase`` turns a (merged) :class:`~harness.load.tally.PhaseTally` into the
:class:`~harness.records.PhaseMeasurement` the rest of the harness reads: per-endpoint and
per-window latency summaries, throughput over the window while arrivals were offered, the
generator's readings, and their validity (decided by :mod:`harness.validity`). ``phase_to_dict`` / ``phase_from_dict``
carry records through ``load-result.json``; ``stop_reason`` is the stress steps' stop condition.
Pure: no Locust.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from harness import validity
from harness.load import recording
from harness.load.tally import PhaseTally
from harness.records import (
    EndpointMeasurement,
    ErrorSample,
    GeneratorHealth,
    LatencySummary,
    PhaseMeasurement,
    PhaseValidity,
    WindowMeasurement,
)

__all__ = [
    "phase_from_dict",
    "phase_to_dict",
    "stop_reason",
    "tally_to_phase",
]


def _health(tally: PhaseTally) -> GeneratorHealth:
    """The generator's readings of one phase: the worst process's, so one saturated worker is not
    averaged away (what they mean is harness.validity's call)."""
    procs = tally.processes
    return GeneratorHealth(
        cpu_max_pct=round(max((p.cpu_max for p in procs), default=0.0), 1),
        cpu_mean_pct=round(max((p.cpu_mean for p in procs), default=0.0), 1),
        loop_lag_p99_ms=round(max((p.lag_p99_ms for p in procs), default=0.0), 3),
        loop_lag_max_ms=round(max((p.lag_max_ms for p in procs), default=0.0), 3),
        rss_max_mb=round(sum(p.rss_max_mb for p in procs), 1),
        workers=tally.workers,
        workers_lost=tally.workers_lost,
        cpu_wait_pct=_rounded(_worst(p.runqueue_wait_pct for p in procs), 2),
        steal_pct=_rounded(_worst(p.steal_pct for p in procs), 2),
        machine_cpu_pct=_rounded(_worst(p.machine_cpu_pct for p in procs), 1),
        held_by_max_rps=sum(p.paced_held for p in procs),
        paced_requests=sum(p.paced_requests for p in procs),
        paced_wait_s=sum(p.paced_wait_s for p in procs),
        max_rps=sum(p.max_rps or 0.0 for p in procs) or None,
        notes=tuple(tally.notes),
    )


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _worst(readings: Iterable[float | None]) -> float | None:
    """The highest of the processes' readings; None when none of them could read it."""
    values = [v for v in readings if v is not None]
    return max(values) if values else None


def tally_to_phase(tally: PhaseTally, thresholds: validity.Thresholds | None = None) -> PhaseMeasurement:
    """Build the :class:`PhaseMeasurement` record from a (merged) tally."""
    generator = _health(tally)
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
                bytes_total=e.bytes_total,
                bytes_max=e.bytes_max,
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
        generator=generator,
        validity=validity.classify(generator, scheduled=tally.scheduled, dropped=tally.dropped, thresholds=thresholds),
        latency=recording.summarise(all_lat),
        service=recording.summarise(all_svc),
        error_samples=tally.samples,
        max_users=tally.max_users,
        aborted=tally.aborted,
        iterations_completed=tally.completed_in_window,
        active_s=round(active, 3),
        credential_refreshes=tally.credential_refreshes,
        credential_refresh_failures=tally.credential_refresh_failures,
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
    gen["notes"] = tuple(gen.get("notes", ()))
    valid = dict(d["validity"])
    for key in ("spoiled_by", "crowding", "crowded_by"):
        valid[key] = tuple(valid.get(key, ()))
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
                service_hdr=e["service_hdr"], bytes_total=e.get("bytes_total", 0), bytes_max=e.get("bytes_max", 0),
            )
            for e in d["endpoints"]
        ),
        windows=tuple(WindowMeasurement(**w) for w in d["windows"]),
        generator=GeneratorHealth(**gen),
        validity=PhaseValidity(**valid),
        latency=_summary(d["latency"]),
        service=_summary(d["service"]),
        error_samples=tuple(ErrorSample(**s) for s in d.get("error_samples", ())),
        max_users=d.get("max_users", 0),
        aborted=d.get("aborted"),
        iterations_completed=d.get("iterations_completed", 0),
        active_s=d.get("active_s", 0.0),
        credential_refreshes=d.get("credential_refreshes", 0),
        credential_refresh_failures=d.get("credential_refresh_failures", 0),
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
