"""The live tally of one phase in one process: counts and HDR histograms while the phase runs.

The engine counts every iteration (scheduled, started, dropped, completed) and records every
request's latency from its intended start and its service time, per endpoint and per time window.
Latencies are buffered and recorded in batches (``LiveTally.flush``; every reader flushes first).
At the end of the phase, and at every window in a distributed run, :meth:`LiveTally.snapshot`
turns it into the tally that crosses to the parent (``harness.load.results``).

Imports no Locust; used by the engine child.
"""

from __future__ import annotations

import math
import time
from typing import Any

from harness.load import recording
from harness.load.machine import MachineReading, shares
from harness.load.plan import PhasePlan
from harness.pacing import RequestPacer

__all__ = ["RECORD_BATCH", "LiveTally"]

# Latencies are buffered and recorded this many at a time (harness.load.recording.record_many_ms):
# a tenth of the per-request cost, and at 15k req/s a batch is under 0.1 s of requests, so
# readers (the stress stop check, each window's snapshot) flush first and never see stale counts.
RECORD_BATCH = 512


class LiveTally:
    """Counts and histograms of one phase in this process, while it runs."""

    def __init__(self, phase: PhasePlan, rate: float, window_s: float) -> None:
        self.phase = phase
        self.rate = rate
        self.window_s = window_s
        self.started_at = time.time()
        self.started_perf = time.perf_counter()
        self.ended_at: float | None = None
        self.active_s = 0.0
        self.scheduled = 0
        self.started = 0
        self.dropped = 0
        self.completed = 0
        # Counts at the end of the active window, before the drain: throughput is what completed
        # while arrivals were offered. A backlog finished during the drain is latency, not
        # throughput, or a phase past the knee looks as if it kept up.
        self.requests_in_window: int | None = None
        self.completed_in_window: int | None = None
        self.inflight = 0
        self.late = 0
        self.closed = False
        self.aborted: str | None = None
        self.requests = 0
        self.errors = 0
        self.endpoints: dict[str, list[Any]] = {}  # name -> [requests, errors, reasons, lat, svc]
        self.windows: dict[int, list[Any]] = {}  # index -> [requests, errors, lat, svc]
        # Latencies not yet in the histograms, per (endpoint, window): recorded in bulk (flush)
        self.buffered: dict[tuple[str, int], tuple[list[float], list[float]]] = {}
        self.buffered_count = 0
        self.samples: list[dict[str, Any]] = []
        self.max_users = 0
        self.cpu: list[float] = []
        self.machine_first: MachineReading | None = None
        self.machine_last: MachineReading | None = None
        self.lag_ms: list[float] = []
        self.rss_max_mb = 0.0
        self.notes: list[str] = []
        # max_rps: the engine's pacer, its counters when the phase began, and, once the phase is
        # closed, what it held back during it (requests, held, seconds waited)
        self.pacer: RequestPacer | None = None
        self.pacer_base = (0, 0, 0.0)
        self.paced: tuple[int, int, float] | None = None

    def paced_so_far(self) -> tuple[int, int, float] | None:
        if self.paced is not None or self.pacer is None:
            return self.paced
        r, h, w = self.pacer_base
        return self.pacer.requests - r, self.pacer.held - h, self.pacer.waited_s - w

    def to_wall(self, perf: float) -> float:
        return self.started_at + (perf - self.started_perf)

    def record(self, name: str, latency_ms: float, service_ms: float, reason: str | None) -> None:
        idx = int((time.perf_counter() - self.started_perf) / self.window_s)
        pending = self.buffered.get((name, idx))
        if pending is None:
            pending = self.buffered[(name, idx)] = ([], [])
        pending[0].append(latency_ms)
        pending[1].append(service_ms)
        self.requests += 1
        if reason is not None:
            self.errors += 1
            e, w = self._slots(name, idx)
            e[1] += 1
            w[1] += 1
            e[2][reason] = e[2].get(reason, 0) + 1
        self.buffered_count += 1
        if self.buffered_count >= RECORD_BATCH:
            self.flush()

    def flush(self) -> None:
        """Record the buffered latencies into their endpoint's and window's histograms."""
        for (name, idx), (latencies, services) in self.buffered.items():
            e, w = self._slots(name, idx)
            e[0] += len(latencies)
            w[0] += len(latencies)
            recording.record_many_ms((e[3], w[2]), latencies)
            recording.record_many_ms((e[4], w[3]), services)
        self.buffered = {}
        self.buffered_count = 0

    def _slots(self, name: str, idx: int) -> tuple[list[Any], list[Any]]:
        e = self.endpoints.get(name)
        if e is None:
            e = self.endpoints[name] = [0, 0, {}, recording.new_histogram(), recording.new_histogram()]
        w = self.windows.get(idx)
        if w is None:
            w = self.windows[idx] = [0, 0, recording.new_histogram(), recording.new_histogram()]
        return e, w

    def latency_p99_ms(self) -> float:
        self.flush()
        hist = recording.merge(e[3] for e in self.endpoints.values())
        return recording.percentiles_us(hist, (99.0,))[99.0] / 1000.0

    def snapshot(self, workers: int = 0) -> dict[str, Any]:
        """The JSON-able tally (see harness.load.results)."""
        self.flush()
        now = time.time()
        elapsed = self.active_s or (time.perf_counter() - self.started_perf)
        lag_sorted = sorted(self.lag_ms)
        lag_p99 = lag_sorted[min(len(lag_sorted) - 1, int(math.ceil(0.99 * len(lag_sorted))) - 1)] if lag_sorted else 0.0
        notes = list(self.notes)
        if self.late:
            notes.append(
                f"{self.late} responses arrived after the phase had closed (beyond the drain "
                "time) and are not in its histograms."
            )
        return {
            "kind": self.phase.kind,
            "label": self.phase.label,
            "offered_rps": self.rate,
            "started_at": self.started_at,
            "ended_at": self.ended_at or now,
            "active_s": elapsed,
            "scheduled": self.scheduled,
            "started": self.started,
            "dropped": self.dropped,
            "completed": self.completed,
            "requests_in_window": self.requests if self.requests_in_window is None else self.requests_in_window,
            "completed_in_window": self.completed if self.completed_in_window is None else self.completed_in_window,
            "max_users": self.max_users,
            "aborted": self.aborted,
            "workers": workers,
            "workers_lost": 0,
            "notes": notes,
            "endpoints": {
                name: {
                    "requests": e[0], "errors": e[1], "reasons": dict(e[2]),
                    "lat": recording.encode(e[3]), "svc": recording.encode(e[4]),
                }
                for name, e in self.endpoints.items()
            },
            "windows": [
                {
                    "index": i,
                    "start": self.started_at + i * self.window_s,
                    "end": min(self.started_at + (i + 1) * self.window_s, self.ended_at or now),
                    "requests": w[0], "errors": w[1],
                    "lat": recording.encode(w[2]), "svc": recording.encode(w[3]),
                }
                for i, w in sorted(self.windows.items())
            ],
            "samples": list(self.samples),
            "processes": [
                {
                    "cpu_max": max(self.cpu, default=0.0),
                    "cpu_mean": sum(self.cpu) / len(self.cpu) if self.cpu else 0.0,
                    "lag_p99_ms": lag_p99,
                    "lag_max_ms": max(self.lag_ms, default=0.0),
                    "rss_max_mb": self.rss_max_mb,
                    **(
                        shares(self.machine_first, self.machine_last)
                        if self.machine_first is not None and self.machine_last is not None
                        else {}
                    ),
                    **self._paced_dict(),
                }
            ],
        }

    def _paced_dict(self) -> dict[str, Any]:
        paced = self.paced_so_far()
        if paced is None or self.pacer is None:
            return {}
        requests, held, waited_s = paced
        return {"max_rps": self.pacer.max_rps, "paced_requests": requests, "paced_held": held,
                "paced_wait_s": round(waited_s, 6)}  # fmt: skip
