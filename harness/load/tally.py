"""A phase's tally: what one or more engine processes counted and recorded during one phase.

While a phase runs, :class:`LiveTally` counts every iteration (scheduled, started, dropped,
completed) and records every request's latency from its intended start and its service time, per
endpoint and per time window. Latencies are buffered and recorded in batches
(``LiveTally.flush``; every reader flushes first).

At the end of the phase, and at every window in a distributed run, :meth:`LiveTally.snapshot`
freezes it into a :class:`PhaseTally`: plain typed data, with its histograms encoded, that crosses
process boundaries as ``to_dict()`` / ``from_dict()`` (Locust custom messages between workers and
their master) and that :func:`merge_tallies` adds up across workers without loss (counts add,
histograms merge, each process's health is kept apart so one saturated worker is not averaged
away). ``harness.load.results`` turns the merged tally into the phase's record.

Imports no Locust.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.load import recording
from harness.load.machine import MachineReading, shares
from harness.load.plan import PhasePlan
from harness.pacing import RequestPacer
from harness.records import ErrorSample, PhaseKind

__all__ = [
    "MAX_ERROR_SAMPLES",
    "RECORD_BATCH",
    "EndpointTally",
    "LiveTally",
    "PhaseTally",
    "ProcessHealth",
    "WindowTally",
    "merge_tallies",
]

MAX_ERROR_SAMPLES = 50  # failed requests kept verbatim per phase (the first ones)
# Latencies are buffered and recorded this many at a time (harness.load.recording.record_many_ms):
# a tenth of the per-request cost, and at 15k req/s a batch is under 0.1 s of requests, so
# readers (the stress stop check, each window's snapshot) flush first and never see stale counts.
RECORD_BATCH = 512


# --- the frozen tally ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointTally:
    """One endpoint during one phase: counts, and histograms as HDR base64 (microseconds)."""

    requests: int
    errors: int
    reasons: dict[str, int]  # error reason ("http-503", "timeout", ...) -> failed requests
    lat: str  # latency from the intended start
    svc: str  # service time (Locust's response_time)
    bytes_total: int = 0  # response bodies
    bytes_max: int = 0


@dataclass(frozen=True)
class WindowTally:
    """One time window of a phase (``window_s`` long, the last one shorter), all endpoints."""

    index: int
    start: float  # unix time
    end: float
    requests: int
    errors: int
    lat: str
    svc: str


@dataclass(frozen=True)
class ProcessHealth:
    """One generator process during one phase: how busy it was, and the machine around it."""

    cpu_max: float  # % of one core
    cpu_mean: float
    lag_p99_ms: float  # event-loop lateness
    lag_max_ms: float
    rss_max_mb: float
    # % of wall time (harness.load.machine.shares); None where the OS gives no reading
    runqueue_wait_pct: float | None = None
    steal_pct: float | None = None
    machine_cpu_pct: float | None = None
    # the pack's max_rps as this process's share, and what it held back (None: no cap)
    max_rps: float | None = None
    paced_requests: int = 0
    paced_held: int = 0
    paced_wait_s: float = 0.0


@dataclass(frozen=True)
class PhaseTally:
    """One phase as counted by one process, or merged over several (``merge_tallies``)."""

    kind: PhaseKind
    label: str
    offered_rps: float
    started_at: float  # unix time
    ended_at: float
    active_s: float  # while arrivals were offered (the drain excluded)
    scheduled: int  # iterations
    started: int
    dropped: int
    completed: int
    requests_in_window: int  # while arrivals were offered: throughput counts these
    completed_in_window: int
    max_users: int
    aborted: str | None  # why the phase ended early (a stop condition, "interrupted")
    workers: int  # 0: one process
    workers_lost: int
    notes: tuple[str, ...]  # said in the generator's health, as reasons
    endpoints: dict[str, EndpointTally]
    windows: tuple[WindowTally, ...]
    samples: tuple[ErrorSample, ...]
    processes: tuple[ProcessHealth, ...]
    # The pack's refresh_credentials hook, called by this phase's users (harness.credentials):
    # not requests to the service under measurement, so counted apart.
    credential_refreshes: int = 0
    credential_refresh_failures: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, numbers, strings) for a Locust message or a JSON file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PhaseTally:
        """The inverse of :meth:`to_dict`; a missing or unknown key is a TypeError."""
        return cls(**{
            **d,
            "notes": tuple(d["notes"]),
            "endpoints": {name: EndpointTally(**e) for name, e in d["endpoints"].items()},
            "windows": tuple(WindowTally(**w) for w in d["windows"]),
            "samples": tuple(ErrorSample(**s) for s in d["samples"]),
            "processes": tuple(ProcessHealth(**p) for p in d["processes"]),
        })


def merge_tallies(tallies: Sequence[PhaseTally]) -> PhaseTally:
    """Add several processes' tallies of the same phase into one (histograms merged losslessly)."""
    if not tallies:
        raise ValueError("merge_tallies needs at least one tally")
    first = tallies[0]
    samples = sorted((s for t in tallies for s in t.samples), key=lambda s: s.at)
    return PhaseTally(
        kind=first.kind,
        label=first.label,
        offered_rps=sum(t.offered_rps for t in tallies),
        started_at=min(t.started_at for t in tallies),
        ended_at=max(t.ended_at for t in tallies),
        active_s=max(t.active_s for t in tallies),
        scheduled=sum(t.scheduled for t in tallies),
        started=sum(t.started for t in tallies),
        dropped=sum(t.dropped for t in tallies),
        completed=sum(t.completed for t in tallies),
        requests_in_window=sum(t.requests_in_window for t in tallies),
        completed_in_window=sum(t.completed_in_window for t in tallies),
        max_users=sum(t.max_users for t in tallies),
        aborted=next((t.aborted for t in tallies if t.aborted), None),
        workers=sum(t.workers for t in tallies),
        workers_lost=sum(t.workers_lost for t in tallies),
        notes=tuple(n for t in tallies for n in t.notes),
        endpoints=_merge_endpoints(tallies),
        windows=_merge_windows(tallies),
        samples=tuple(samples[:MAX_ERROR_SAMPLES]),
        processes=tuple(p for t in tallies for p in t.processes),
        credential_refreshes=sum(t.credential_refreshes for t in tallies),
        credential_refresh_failures=sum(t.credential_refresh_failures for t in tallies),
    )


def _merge_endpoints(tallies: Sequence[PhaseTally]) -> dict[str, EndpointTally]:
    by_name: dict[str, list[EndpointTally]] = {}
    for t in tallies:
        for name, e in t.endpoints.items():
            by_name.setdefault(name, []).append(e)
    return {
        name: EndpointTally(
            requests=sum(e.requests for e in parts),
            errors=sum(e.errors for e in parts),
            reasons=_add_counts(e.reasons for e in parts),
            lat=recording.merge_encoded([e.lat for e in parts]),
            svc=recording.merge_encoded([e.svc for e in parts]),
            bytes_total=sum(e.bytes_total for e in parts),
            bytes_max=max(e.bytes_max for e in parts),
        )
        for name, parts in by_name.items()
    }


def _merge_windows(tallies: Sequence[PhaseTally]) -> tuple[WindowTally, ...]:
    by_index: dict[int, list[WindowTally]] = {}
    for t in tallies:
        for w in t.windows:
            by_index.setdefault(w.index, []).append(w)
    return tuple(
        WindowTally(
            index=index,
            start=min(w.start for w in parts),
            end=max(w.end for w in parts),
            requests=sum(w.requests for w in parts),
            errors=sum(w.errors for w in parts),
            lat=recording.merge_encoded([w.lat for w in parts]),
            svc=recording.merge_encoded([w.svc for w in parts]),
        )
        for index, parts in sorted(by_index.items())
    )


def _add_counts(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for c in counts:
        for key, n in c.items():
            total[key] = total.get(key, 0) + n
    return total


# --- the live tally ------------------------------------------------------------------------------


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
        self.credential_refreshes = 0  # incremented by the users (harness.load.kit)
        self.credential_refresh_failures = 0
        self.closed = False
        self.aborted: str | None = None
        self.requests = 0
        self.errors = 0
        # name -> [requests, errors, reasons, lat, svc, bytes_total, bytes_max]
        self.endpoints: dict[str, list[Any]] = {}
        self.windows: dict[int, list[Any]] = {}  # index -> [requests, errors, lat, svc]
        # Latencies not yet in the histograms, per (endpoint, window): recorded in bulk (flush)
        self.buffered: dict[tuple[str, int], tuple[list[float], list[float], list[int]]] = {}
        self.buffered_count = 0
        self.samples: list[ErrorSample] = []
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

    def record(self, name: str, latency_ms: float, service_ms: float, reason: str | None, length: int = 0) -> None:
        idx = int((time.perf_counter() - self.started_perf) / self.window_s)
        pending = self.buffered.get((name, idx))
        if pending is None:
            pending = self.buffered[(name, idx)] = ([], [], [])
        pending[0].append(latency_ms)
        pending[1].append(service_ms)
        pending[2].append(length)
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
        for (name, idx), (latencies, services, lengths) in self.buffered.items():
            e, w = self._slots(name, idx)
            e[0] += len(latencies)
            w[0] += len(latencies)
            e[5] += sum(lengths)
            e[6] = max(e[6], max(lengths))
            recording.record_many_ms((e[3], w[2]), latencies)
            recording.record_many_ms((e[4], w[3]), services)
        self.buffered = {}
        self.buffered_count = 0

    def _slots(self, name: str, idx: int) -> tuple[list[Any], list[Any]]:
        e = self.endpoints.get(name)
        if e is None:
            e = self.endpoints[name] = [0, 0, {}, recording.new_histogram(), recording.new_histogram(), 0, 0]
        w = self.windows.get(idx)
        if w is None:
            w = self.windows[idx] = [0, 0, recording.new_histogram(), recording.new_histogram()]
        return e, w

    def latency_p99_ms(self) -> float:
        self.flush()
        hist = recording.merge(e[3] for e in self.endpoints.values())
        return recording.percentiles_us(hist, (99.0,))[99.0] / 1000.0

    def snapshot(self, workers: int = 0) -> PhaseTally:
        """The phase so far (or, once closed, all of it) as a frozen tally."""
        self.flush()
        now = time.time()
        ended = self.ended_at or now
        notes = list(self.notes)
        if self.late:
            notes.append(
                f"{self.late} responses arrived after the phase had closed (beyond the drain "
                "time) and are not in its histograms."
            )
        return PhaseTally(
            kind=self.phase.kind,
            label=self.phase.label,
            offered_rps=self.rate,
            started_at=self.started_at,
            ended_at=ended,
            active_s=self.active_s or (time.perf_counter() - self.started_perf),
            scheduled=self.scheduled,
            started=self.started,
            dropped=self.dropped,
            completed=self.completed,
            requests_in_window=self.requests if self.requests_in_window is None else self.requests_in_window,
            completed_in_window=self.completed if self.completed_in_window is None else self.completed_in_window,
            max_users=self.max_users,
            aborted=self.aborted,
            workers=workers,
            workers_lost=0,
            notes=tuple(notes),
            endpoints={
                name: EndpointTally(requests=e[0], errors=e[1], reasons=dict(e[2]),
                                    lat=recording.encode(e[3]), svc=recording.encode(e[4]),
                                    bytes_total=e[5], bytes_max=e[6])  # fmt: skip
                for name, e in self.endpoints.items()
            },
            windows=tuple(
                WindowTally(
                    index=i,
                    start=self.started_at + i * self.window_s,
                    end=min(self.started_at + (i + 1) * self.window_s, ended),
                    requests=w[0], errors=w[1], lat=recording.encode(w[2]), svc=recording.encode(w[3]),
                )  # fmt: skip
                for i, w in sorted(self.windows.items())
            ),
            samples=tuple(self.samples),
            processes=(self._process_health(),),
            credential_refreshes=self.credential_refreshes,
            credential_refresh_failures=self.credential_refresh_failures,
        )

    def _process_health(self) -> ProcessHealth:
        lag_sorted = sorted(self.lag_ms)
        lag_p99 = lag_sorted[min(len(lag_sorted) - 1, int(math.ceil(0.99 * len(lag_sorted))) - 1)] if lag_sorted else 0.0
        machine = (
            shares(self.machine_first, self.machine_last)
            if self.machine_first is not None and self.machine_last is not None
            else None
        )
        paced = self.paced_so_far()
        requests, held, waited_s = paced if paced is not None and self.pacer is not None else (0, 0, 0.0)
        return ProcessHealth(
            cpu_max=max(self.cpu, default=0.0),
            cpu_mean=sum(self.cpu) / len(self.cpu) if self.cpu else 0.0,
            lag_p99_ms=lag_p99,
            lag_max_ms=max(self.lag_ms, default=0.0),
            rss_max_mb=self.rss_max_mb,
            runqueue_wait_pct=machine.runqueue_wait_pct if machine else None,
            steal_pct=machine.steal_pct if machine else None,
            machine_cpu_pct=machine.machine_cpu_pct if machine else None,
            max_rps=self.pacer.max_rps if paced is not None and self.pacer is not None else None,
            paced_requests=requests,
            paced_held=held,
            paced_wait_s=round(waited_s, 6),
        )
