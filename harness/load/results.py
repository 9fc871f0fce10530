"""The engine's raw phase tallies, how they merge across workers, and how they become records.

A *tally* is a plain JSON-able dict (it crosses a process boundary in Locust custom messages and
in ``load-result.json``)::

    {kind, label, offered_rps, started_at, ended_at, active_s, scheduled, started, dropped,
     max_users, aborted, workers, workers_lost, notes: [str],
     endpoints: {name: {requests, errors, reasons: {reason: n}, lat, svc}},   # lat/svc: HDR base64
     windows: [{index, start, end, requests, errors, lat, svc}],
     samples: [ErrorSample as dict],
     processes: [{cpu_max, cpu_mean, lag_p99_ms, lag_max_ms, rss_max_mb}]}

Merging tallies from several workers adds counts and histograms (lossless) and keeps each
process's health separately, so one saturated worker is not averaged away. Pure: no Locust.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from harness import recording, validity
from harness.records import (
    EndpointMeasurement,
    ErrorSample,
    GeneratorHealth,
    LatencySummary,
    PhaseMeasurement,
    PhaseValidity,
    WindowMeasurement,
)

MAX_ERROR_SAMPLES = 50

__all__ = [
    "MAX_ERROR_SAMPLES",
    "merge_tallies",
    "phase_from_dict",
    "phase_to_dict",
    "tally_to_phase",
]


def merge_tallies(tallies: list[dict[str, Any]]) -> dict[str, Any]:
    """Add several processes' tallies of the same phase into one (histograms merged losslessly)."""
    if not tallies:
        raise ValueError("merge_tallies needs at least one tally")
    first = tallies[0]
    out: dict[str, Any] = {
        "kind": first["kind"],
        "label": first["label"],
        "offered_rps": sum(t["offered_rps"] for t in tallies),
        "started_at": min(t["started_at"] for t in tallies),
        "ended_at": max(t["ended_at"] for t in tallies),
        "active_s": max(t["active_s"] for t in tallies),
        "scheduled": sum(t["scheduled"] for t in tallies),
        "started": sum(t["started"] for t in tallies),
        "dropped": sum(t["dropped"] for t in tallies),
        "completed": sum(t.get("completed", 0) for t in tallies),
        "requests_in_window": sum(t.get("requests_in_window", 0) for t in tallies),
        "completed_in_window": sum(t.get("completed_in_window", 0) for t in tallies),
        "max_users": sum(t["max_users"] for t in tallies),
        "aborted": next((t["aborted"] for t in tallies if t.get("aborted")), None),
        "workers": sum(t.get("workers", 0) for t in tallies),
        "workers_lost": sum(t.get("workers_lost", 0) for t in tallies),
        "notes": [n for t in tallies for n in t.get("notes", [])],
        "processes": [p for t in tallies for p in t.get("processes", [])],
    }
    endpoints: dict[str, dict[str, Any]] = {}
    for t in tallies:
        for name, e in t["endpoints"].items():
            acc = endpoints.setdefault(
                name, {"requests": 0, "errors": 0, "reasons": {}, "lat": [], "svc": []}
            )
            acc["requests"] += e["requests"]
            acc["errors"] += e["errors"]
            for reason, n in e["reasons"].items():
                acc["reasons"][reason] = acc["reasons"].get(reason, 0) + n
            acc["lat"].append(e["lat"])
            acc["svc"].append(e["svc"])
    for acc in endpoints.values():
        acc["lat"] = recording.merge_encoded(acc["lat"])
        acc["svc"] = recording.merge_encoded(acc["svc"])
    out["endpoints"] = endpoints
    windows: dict[int, dict[str, Any]] = {}
    for t in tallies:
        for w in t["windows"]:
            acc = windows.setdefault(
                w["index"],
                {"index": w["index"], "start": w["start"], "end": w["end"], "requests": 0,
                 "errors": 0, "lat": [], "svc": []},
            )
            acc["start"] = min(acc["start"], w["start"])
            acc["end"] = max(acc["end"], w["end"])
            acc["requests"] += w["requests"]
            acc["errors"] += w["errors"]
            acc["lat"].append(w["lat"])
            acc["svc"].append(w["svc"])
    for acc in windows.values():
        acc["lat"] = recording.merge_encoded(acc["lat"])
        acc["svc"] = recording.merge_encoded(acc["svc"])
    out["windows"] = [windows[i] for i in sorted(windows)]
    samples = [s for t in tallies for s in t["samples"]]
    samples.sort(key=lambda s: s["at"])
    out["samples"] = samples[:MAX_ERROR_SAMPLES]
    return out


def _health(tally: dict[str, Any]) -> GeneratorHealth:
    """The generator's readings of one phase: the worst process's, so one saturated worker is not
    averaged away (what they mean is harness.validity's call)."""
    procs = tally.get("processes") or []
    return GeneratorHealth(
        cpu_max_pct=round(max((p["cpu_max"] for p in procs), default=0.0), 1),
        cpu_mean_pct=round(max((p["cpu_mean"] for p in procs), default=0.0), 1),
        loop_lag_p99_ms=round(max((p["lag_p99_ms"] for p in procs), default=0.0), 3),
        loop_lag_max_ms=round(max((p["lag_max_ms"] for p in procs), default=0.0), 3),
        rss_max_mb=round(sum(p["rss_max_mb"] for p in procs), 1),
        workers=tally.get("workers", 0),
        workers_lost=tally.get("workers_lost", 0),
        cpu_wait_pct=_rounded(_worst(procs, "runqueue_wait_pct"), 2),
        steal_pct=_rounded(_worst(procs, "steal_pct"), 2),
        machine_cpu_pct=_rounded(_worst(procs, "machine_cpu_pct"), 1),
        held_by_max_rps=sum(p.get("paced_held", 0) for p in procs),
        paced_requests=sum(p.get("paced_requests", 0) for p in procs),
        paced_wait_s=sum(p.get("paced_wait_s", 0.0) for p in procs),
        max_rps=sum(p.get("max_rps", 0.0) for p in procs) or None,
        notes=tuple(tally.get("notes", [])),
    )


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _worst(procs: list[dict[str, Any]], key: str) -> float | None:
    """The highest reading of ``key`` across processes; None when none of them could read it."""
    values = [p[key] for p in procs if p.get(key) is not None]
    return max(values) if values else None


def tally_to_phase(tally: dict[str, Any], thresholds: validity.Thresholds | None = None) -> PhaseMeasurement:
    """Build the :class:`PhaseMeasurement` record from a (merged) tally."""
    generator = _health(tally)
    endpoints = []
    for name in sorted(tally["endpoints"]):
        e = tally["endpoints"][name]
        endpoints.append(
            EndpointMeasurement(
                name=name,
                requests=e["requests"],
                errors=e["errors"],
                errors_by_reason=dict(sorted(e["reasons"].items())),
                latency=recording.summarise_encoded(e["lat"]),
                service=recording.summarise_encoded(e["svc"]),
                latency_hdr=e["lat"],
                service_hdr=e["svc"],
            )
        )
    windows = tuple(
        WindowMeasurement(
            start=w["start"], end=w["end"], requests=w["requests"], errors=w["errors"],
            latency_hdr=w["lat"], service_hdr=w["svc"],
        )
        for w in tally["windows"]
    )
    all_lat = recording.merge(recording.decode(e["lat"]) for e in tally["endpoints"].values())
    all_svc = recording.merge(recording.decode(e["svc"]) for e in tally["endpoints"].values())
    requests = sum(e["requests"] for e in tally["endpoints"].values())
    active = tally["active_s"]
    # Throughput counts what completed while arrivals were offered (see LiveTally); the drain's
    # responses still count in the latency histograms.
    in_window = tally.get("requests_in_window", requests)
    achieved = in_window / active if active > 0 else 0.0
    return PhaseMeasurement(
        kind=tally["kind"],
        label=tally["label"],
        offered_rps=round(tally["offered_rps"], 3),
        achieved_rps=round(achieved, 3),
        started_at=tally["started_at"],
        ended_at=tally["ended_at"],
        iterations_scheduled=tally["scheduled"],
        iterations_started=tally["started"],
        dropped_iterations=tally["dropped"],
        endpoints=tuple(endpoints),
        windows=windows,
        generator=generator,
        validity=validity.classify(
            generator, scheduled=tally["scheduled"], dropped=tally["dropped"], thresholds=thresholds
        ),
        latency=recording.summarise(all_lat),
        service=recording.summarise(all_svc),
        error_samples=tuple(ErrorSample(**s) for s in tally["samples"]),
        max_users=tally["max_users"],
        aborted=tally.get("aborted"),
        iterations_completed=tally.get("completed_in_window", 0),
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
                service_hdr=e["service_hdr"],
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
