"""Runs for the history, comparison and change-point tests: audit records whose steady windows
carry real HDR histograms, drawn from a seeded log-normal service time per endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from harness.load import recording
from harness.records import AuditRecord, EndpointMeasurement, RunMetrics, WindowMeasurement
from tests.factories import T0, audit_record, endpoint, phase, tier

ENDPOINTS = ("GET /slots", "POST /bookings")


def measured_endpoint(name: str, median_ms: float, *, requests: int = 2000, seed: int = 0,
                      spread: float = 0.25) -> EndpointMeasurement:  # fmt: skip
    rng = np.random.default_rng(seed)
    values = rng.lognormal(np.log(median_ms), spread, requests)
    hist = recording.new_histogram()
    recording.record_many_ms([hist], list(values))
    summary = recording.summarise(hist)
    ep = endpoint(name, requests=requests, service=summary, latency=summary)
    encoded = recording.encode(hist)
    return replace(ep, latency_hdr=encoded, service_hdr=encoded)


def measured_record(run_id: str, medians: Mapping[str, float], *, seed: int = 0, customers: int = 500,
                    verdict: str = "READY", pack: str = "booking", profile: str = "quick",
                    finished_at: float | None = None, capacity: float | None = None,
                    options: dict[str, object] | None = None) -> AuditRecord:  # fmt: skip
    """One tier whose endpoints' service times have the given medians (ms)."""
    eps = [measured_endpoint(name, ms, seed=seed * 100 + i) for i, (name, ms) in enumerate(medians.items())]
    all_hdr = recording.merge_encoded(e.service_hdr for e in eps)
    windows = tuple(WindowMeasurement(T0 + 5 * i, T0 + 5 * (i + 1), 100, 0, all_hdr, all_hdr) for i in range(4))
    steady = replace(phase(offered_rps=100.0, endpoints=eps), windows=windows)
    record = audit_record([tier(customers, steady=steady)], verdict=verdict, run_id=run_id,  # type: ignore[arg-type]
                          pack=pack, profile=profile, options=options)  # fmt: skip
    at = finished_at if finished_at is not None else T0 + 600.0
    if capacity is not None:
        from tests.factories import capacity_estimate

        record = replace(record, capacity=capacity_estimate(capacity))
    return replace(record, finished_at=at, started_at=at - 600.0)


def metrics_of(record: AuditRecord) -> RunMetrics:
    from harness.history.rows import run_metrics

    return run_metrics(record)
