"""Builders for the load engine's typed tallies (``harness.load.tally``), with plain defaults.

A test names what it cares about and the rest is filled in: ``phase_tally(scheduled=1000,
processes=(process_health(steal_pct=12.0),))``. Histograms are built from the latencies given.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.load import recording
from harness.load.tally import EndpointTally, PhaseTally, ProcessHealth, WindowTally


def encoded(latencies_ms: Iterable[float]) -> str:
    """An HDR histogram of ``latencies_ms``, encoded as it crosses processes."""
    hist = recording.new_histogram()
    for v in latencies_ms:
        recording.record_ms(hist, v)
    return recording.encode(hist)


def endpoint_tally(latencies_ms: Iterable[float] = (), *, errors: int = 0,
                   reasons: dict[str, int] | None = None, **overrides: Any) -> EndpointTally:  # fmt: skip
    values = list(latencies_ms)
    fields: dict[str, Any] = {
        "requests": len(values), "errors": errors, "reasons": dict(reasons or {}),
        "lat": encoded(values), "svc": encoded(v / 2 for v in values),
    }  # fmt: skip
    return EndpointTally(**{**fields, **overrides})


def window_tally(index: int, latencies_ms: Iterable[float] = (), **overrides: Any) -> WindowTally:
    values = list(latencies_ms)
    fields: dict[str, Any] = {
        "index": index, "start": 1.0 + index, "end": 2.0 + index, "requests": len(values), "errors": 0,
        "lat": encoded(values), "svc": encoded(v / 2 for v in values),
    }  # fmt: skip
    return WindowTally(**{**fields, **overrides})


def process_health(**overrides: Any) -> ProcessHealth:
    fields: dict[str, Any] = {"cpu_max": 40.0, "cpu_mean": 30.0, "lag_p99_ms": 1.0, "lag_max_ms": 2.0,
                              "rss_max_mb": 70.0}  # fmt: skip
    return ProcessHealth(**{**fields, **overrides})


def phase_tally(**overrides: Any) -> PhaseTally:
    fields: dict[str, Any] = {
        "kind": "steady", "label": "steady", "offered_rps": 10.0, "started_at": 1.0, "ended_at": 2.0,
        "active_s": 1.0, "scheduled": 10, "started": 10, "dropped": 0, "completed": 10,
        "requests_in_window": 10, "completed_in_window": 10, "max_users": 2, "aborted": None,
        "workers": 1, "workers_lost": 0, "notes": (), "endpoints": {}, "windows": (), "samples": (),
        "processes": (process_health(),),
    }  # fmt: skip
    return PhaseTally(**{**fields, **overrides})
