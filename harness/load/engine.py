"""The load engine: an open-model arrival-rate executor on Locust, run as a child process.

    python -m harness.load.engine PLAN.json                  # one process (or master if workers > 0)
    python -m harness.load.engine --worker --master HOST:PORT # a Locust worker

Importing this module imports Locust, which monkey-patches the process with gevent: only the
child process imports it (``harness.load.stage`` starts it), never the harness's parent.

How one phase runs
    A dispatcher greenlet computes each iteration's *intended* start time (constant rate with a
    random phase per process, or Poisson arrivals) and puts it on the queue of a user class chosen
    by the classes' weights. A pool of paced users (``harness.load.kit.CustomerUser``) takes the
    tokens: one token = one task execution = one iteration. The pool starts at Little's law size
    (rate x expected latency x safety, with a floor) and grows while tokens queue up, up to
    ``max_users``; a token that waits more than ``max_start_delay_s`` for a free user is dropped
    and counted. Latency is measured from the intended start (first request of an iteration:
    response end - intended start; later requests: their service time + the iteration's start lag),
    so a stalled target or a late generator is never hidden (coordinated omission, as in wrk2).
    Service time is Locust's response_time. Both go to HDR histograms per endpoint and per window,
    buffered and recorded in batches (``LiveTally.flush``; every reader flushes first).

The generator's self-checks (per phase, per process) and why these thresholds
    * CPU mean > 90 % of one core. gevent runs on one core; near 100 % every ready greenlet waits
      for the loop, and that wait is added to every measured latency. Measured here (2 cores,
      null target 0.2 ms): at 1000 req/s the engine uses ~25-30 % of a core and adds < 1 ms at p99;
      the closed-loop maximum (~4-5k req/s per core) is where CPU reaches ~100 % and p99 jumps to
      tens of ms. Locust itself warns at 90 % for the same reason.
    * event-loop lag p99 > 20 ms. A greenlet sleeps 50 ms and measures the overshoot. Idle, the
      overshoot is < 1 ms; under healthy load p99 stays at 1-5 ms. 20 ms is above any healthy
      value we measured and below the latencies an SLO cares about (100 ms+), so when it trips,
      the generator - not the target - would dominate the tail. Unless the generator had CPU to
      spare (under half the CPU limit) and waited for a CPU at least 5 % of the time (run queue
      and steal, ``results.MACHINE_DENIED_PCT``): then the machine kept it off the CPU, and the
      phase is crowded rather than saturated, like steal below.
    * dropped iterations > 1 % of scheduled. Then the offered load was not offered: the rate
      measured is not the rate asked for (k6 reports the same as dropped_iterations).
    * hypervisor steal > 10 % of a core marks the phase crowded, not saturated: the virtual machine
      was paused, and the pauses were timed as latency, which only makes the target look slower
      (the verdict judges it: ``GeneratorHealth``). Also read each second, and reported: the
      generator's own wait for a CPU and the machine's busy CPU (``harness.load.machine``); the
      audit uses the latter to tell whether other work on the machine took the CPU
      (``harness.tiers.with_other_work``).
    Measured again on 2026-11-23 with the timerfd dispatcher: at 1000 req/s the engine used 45-55 %
    of a core; p50 0.8 ms against a true 0.25 ms, p99 1-6 ms from run to run on a quiet machine.

Progress: one JSON line per second on stdout; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import inspect
import json
import logging
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
import locust  # noqa: F401  (first: Locust monkey-patches the process with gevent)
import psutil
from gevent.event import Event
from gevent.pool import Group
from gevent.queue import Queue
from locust.env import Environment
from locust.exception import CatchResponseError
from locust.user.users import User

from harness.errors import ConfigError
from harness.isolation import MarkerScanner
from harness.ledger import close_shared_ledger, shared_ledger
from harness.load import recording
from harness.load.bounding import RequestDeadlines, ResponseTooLarge, bound_responses
from harness.load.kit import (
    CUSTOMER_CONTEXT_KEY,
    CUSTOMERS_ENV,
    ITERATION_CONTEXT_KEY,
    PACER_ATTRIBUTE,
    CustomerUser,
    load_customers,
)
from harness.load.machine import MachineReading, read_machine, shares
from harness.load.plan import PERSONA_WEIGHTS_ENV, LoadPlan, PhasePlan
from harness.load.results import (
    MAX_ERROR_SAMPLES,
    Thresholds,
    merge_tallies,
    phase_to_dict,
    stop_reason,
    tally_to_phase,
)
from harness.load.waiting import PreciseWait
from harness.pacing import RequestPacer

log = logging.getLogger("scaleready.engine")

RESULT_FILE = "load-result.json"
LOG_SAMPLE_INTERVAL_S = 0.05
# How far ahead of its paced slot a request may go under the pack's max_rps (harness.pacing).
PACER_BURST_S = 0.1
# While every user is busy the dispatcher sleeps up to this long between wake-ups instead of
# waking for each token (see Engine._dispatch); a user that runs out of tokens wakes it at once.
DISPATCH_PARK_S = 0.005
# A token due this soon is put at once rather than after a wait: each precise wait is a few
# system calls, and at thousands of tokens a second they cost the generator ~5 % of its CPU
# (py-spy, throughput case). Starting up to 0.2 ms early shifts the arrival, never the latency:
# an iteration's lag is never below zero, so no request is timed as faster than it was.
EARLY_PUT_S = 0.0002
# Latencies are buffered and recorded this many at a time (harness.load.recording.record_many_ms):
# a tenth of the per-request cost, and at 15k req/s a batch is under 0.1 s of requests, so
# readers (the stress stop check, each window's snapshot) flush first and never see stale counts.
RECORD_BATCH = 512
MAX_BODY_EXCERPT = 500
MAX_REQUEST_BODY = 2048

__all__ = ["RESULT_FILE", "main", "run_worker"]


# --- measurement --------------------------------------------------------------------------------


class Iteration:
    """One scheduled iteration: its intended start (perf clock and wall clock) and its lag."""

    __slots__ = ("tally", "intended", "intended_wall", "lag", "first_done")

    def __init__(self, tally: LiveTally, intended: float, intended_wall: float) -> None:
        self.tally = tally
        self.intended = intended
        self.intended_wall = intended_wall
        self.lag = 0.0
        self.first_done = False


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


_PACK_REASON = re.compile(r"[a-z][a-z0-9-]{1,40}")  # "invalid-json": a pack's own failure reason


def classify(exception: BaseException | None, response: Any, length: int, max_bytes: int) -> str | None:
    """The error reason of one request ("http-500", "timeout", ...), or None for a success."""
    if exception is None:
        return "oversized" if length > max_bytes else None
    status = getattr(response, "status_code", 0) or 0
    if status >= 400:
        return f"http-{status}"
    if isinstance(exception, CatchResponseError):
        underlying = getattr(response, "error", None)
        if status == 0 and isinstance(underlying, BaseException):
            # The pack marked a request that got no answer at all ("status 0"): the reason is
            # why there was no answer (timeout, reset), not the pack's check.
            exception = underlying
        else:
            text = str(exception).strip()
            return text if _PACK_REASON.fullmatch(text) else "check-failed"
    original = getattr(exception, "original", None)  # geventhttpclient's RetriesExceeded
    if isinstance(original, BaseException):
        exception = original
    if isinstance(exception, ResponseTooLarge):
        return "oversized"
    name = type(exception).__name__.lower()
    text = str(exception).lower()
    if "timeout" in name or "timed out" in text or isinstance(exception, TimeoutError | gevent.Timeout):
        return "timeout"
    if isinstance(exception, OSError) or "connection" in name or "connection" in text:
        return "connection"
    return name or "error"


def _sample(
    name: str, method: str, url: str | None, response: Any, reason: str, customer: int | None = None
) -> dict[str, Any]:
    parts = urlsplit(url or "")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    body = ""
    try:
        content = getattr(response, "content", None) or b""
        body = content[:MAX_BODY_EXCERPT].decode("utf-8", errors="replace")
    except Exception:  # the body itself may be the failure (reset mid-read)
        body = ""
    request_body = None
    req = getattr(response, "request", None)
    raw = getattr(req, "body", None) if req is not None else None
    if raw:
        request_body = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))[:MAX_REQUEST_BODY]
    return {
        "endpoint": name, "method": method, "url": path or (url or ""),
        "status": getattr(response, "status_code", 0) or 0, "reason": reason,
        "body_excerpt": body, "at": time.time(), "request_body": request_body,
        "customer_index": customer,
    }


# --- the pool and the dispatcher ----------------------------------------------------------------


class ClassPool:
    """The paced users of one user class and their queue of arrival tokens."""

    def __init__(self, user_class: type[User], share: float) -> None:
        self.user_class = user_class
        self.share = share
        self.queue: Queue = Queue()
        self.users: list[User] = []
        self.idle = 0


class Engine:
    """Runs phases in this process: owns the Locust environment, the pools and the recorder."""

    def __init__(self, plan: LoadPlan, env: Environment, user_classes: list[type[User]], seed: int) -> None:
        self.plan = plan
        self.env = env
        self.rng = random.Random(seed)
        overrides = persona_weights(os.environ.get(PERSONA_WEIGHTS_ENV, ""))
        weights = [max(0, overrides.get(c.__name__, getattr(c, "weight", 1))) for c in user_classes]
        total = sum(weights) or 1
        self.pools = [ClassPool(c, w / total) for c, w in zip(user_classes, weights, strict=True) if w > 0]
        self.cum_shares: list[float] = []
        acc = 0.0
        for p in self.pools:
            acc += p.share
            self.cum_shares.append(acc)
        self.group = Group()
        self.current: LiveTally | None = None
        self._dispatcher_parked = False
        self._wake_dispatcher = Event()
        self._timer = PreciseWait()  # gevent.sleep would put tokens up to 1 ms late (ms epoll timeouts)
        self.stop_requested = False
        self.interrupted = False
        self.process = psutil.Process()
        self.scanner = _marker_scanner()
        self.max_response_bytes = plan.max_response_bytes
        self.deadlines = RequestDeadlines(plan.request_timeout_s)
        # The pack's max_rps, this process's share of it. The arrivals are planned under it; this
        # catches what the plan could not know (an action making more requests than measured).
        # A tenth of a second's burst: open-model arrivals bunch, and a load under the cap should
        # pass untouched.
        self.pacer = (
            RequestPacer(plan.max_rps / max(1, plan.workers), burst_s=PACER_BURST_S) if plan.max_rps else None
        )
        self.ledger = shared_ledger()
        recording.prepare()  # build the percentile lookup table before any load, not during it
        # Thousands of customer records, the locustfile and Locust itself are long-lived: move them
        # out of the collector's reach, or every full collection walks them all and stalls the
        # event loop for tens of milliseconds, which would show as the target's latency.
        gc.collect()
        gc.freeze()
        setattr(env, PACER_ATTRIBUTE, self)
        env.events.request.add_listener(self.on_request)

    # pacer protocol (harness.load.kit.Pacer) ------------------------------------------------

    def take(self, user: User) -> Iteration | None:
        pool: ClassPool = user._scaleready_pool  # type: ignore[attr-defined]
        grace = self.plan.max_start_delay_s
        pool.idle += 1
        try:
            while True:
                if self._dispatcher_parked and not pool.queue.queue:
                    self._wake_dispatcher.set()  # about to wait for a token: it must be put on time
                it = pool.queue.get()
                if it is None:
                    return None
                now = time.perf_counter()
                if now - it.intended > grace or it.tally.closed:
                    it.tally.dropped += 1
                    continue
                it.lag = max(0.0, now - it.intended)
                it.tally.started += 1
                it.tally.inflight += 1
                return it
        finally:
            pool.idle -= 1

    def done(self, iteration: Iteration) -> None:
        iteration.tally.inflight -= 1
        iteration.tally.completed += 1

    # recording ----------------------------------------------------------------------------

    def on_request(self, request_type: str, name: str, response_time: float, response_length: int,
                   response: Any = None, context: Any = None, exception: Any = None,
                   start_time: float | None = None, url: str | None = None, **_: Any) -> None:
        it: Iteration | None
        if context:
            it = context.get(ITERATION_CONTEXT_KEY)
            customer = context.get(CUSTOMER_CONTEXT_KEY)
        else:
            it = customer = None
        tally = it.tally if it is not None else self.current
        if tally is None:
            return
        if tally.closed:
            tally.late += 1
            return
        service = float(response_time or 0.0)
        if it is None:
            latency = service
        elif not it.first_done:
            it.first_done = True
            send_lag_ms = ((start_time or it.intended_wall) - it.intended_wall) * 1000.0
            latency = max(service, send_lag_ms + service)
        else:
            latency = it.lag * 1000.0 + service
        length = response_length or 0
        if exception is None and length <= self.max_response_bytes:
            reason = None  # classify()'s answer for a success, without the call
        else:
            reason = classify(exception, response, length, self.max_response_bytes)
        tally.record(name, latency, service, reason)
        if reason is not None and len(tally.samples) < MAX_ERROR_SAMPLES:
            tally.samples.append(_sample(name, request_type, url, response, reason, customer))
        if self.scanner is not None and customer is not None and response is not None and reason is None:
            # Every successful answer is scanned: a leak that only happens under concurrency
            # (shared caches, request context bleeding between requests) shows only here.
            foreign = self.scanner.foreign(getattr(response, "content", None), customer)
            if foreign:
                self.ledger.observe_leak(
                    customer=customer, foreign=foreign, request=name,
                    status=getattr(response, "status_code", None),
                )  # fmt: skip

    # the pool -----------------------------------------------------------------------------

    @property
    def user_count(self) -> int:
        return sum(len(p.users) for p in self.pools)

    def _spawn(self, pool: ClassPool, n: int) -> None:
        for _ in range(n):
            if self.user_count >= self.plan.max_users:
                return
            user = pool.user_class(self.env)
            user._scaleready_pool = pool  # type: ignore[attr-defined]
            bound_responses(user, self.deadlines, self.plan.max_response_bytes, self.pacer)
            pool.users.append(user)
            user.start(self.group)

    def size_pools(self, rate: float) -> None:
        """Little's law: users = rate x expected latency x safety (floor min_users, cap max_users)."""
        for pool in self.pools:
            want = math.ceil(rate * pool.share * self.plan.expected_latency_s * self.plan.pool_safety)
            want = max(want, max(1, math.ceil(self.plan.min_users * pool.share)))
            if want > len(pool.users):
                self._spawn(pool, want - len(pool.users))

    def _manage_pool(self) -> None:
        """Grow pools whose tokens queue up; drop tokens that waited past the grace."""
        grace = self.plan.max_start_delay_s
        while True:
            now = time.perf_counter()
            for pool in self.pools:
                q = pool.queue.queue
                while q and q[0] is not None and now - q[0].intended > grace:
                    it = q.popleft()
                    it.tally.dropped += 1
                waiting = len(q)
                if waiting and pool.idle == 0:
                    self._spawn(pool, max(1, min(waiting, len(pool.users))))
                elif pool.idle and self._dispatcher_parked:
                    self._wake_dispatcher.set()  # the drops above may have emptied a waited-on queue
            if self.current is not None:
                self.current.max_users = max(self.current.max_users, self.user_count)
            gevent.sleep(0.02)

    def _dispatch(self, tally: LiveTally, rate: float, duration: float) -> None:
        t0 = time.perf_counter()
        end = t0 + duration
        poisson = self.plan.arrivals == "poisson"
        offset = self.rng.random() / rate
        k = 0
        nxt = t0 + (self.rng.expovariate(rate) if poisson else offset)
        pools = self.pools
        cum = self.cum_shares
        single = len(pools) == 1
        wake = self._wake_dispatcher
        timer = self._timer
        while nxt < end and not self.stop_requested:
            now = time.perf_counter()
            if nxt > now + EARLY_PUT_S:
                if pools[0].idle if single else any(p.idle for p in pools):
                    timer.wait_until(nxt)  # a user waits for this token: put it on time
                    continue
                # Every user is busy, so a token put now would only wait in the queue: park up to
                # DISPATCH_PARK_S and then put every token that fell due, each with its own
                # intended time. Near the generator's limit this saves a wake-up of this greenlet
                # per token. A user that frees up and finds its queue empty wakes us (take()), so
                # no token starts later than it would have.
                self._dispatcher_parked = True
                try:
                    wake.wait(max(nxt - now, DISPATCH_PARK_S))
                finally:
                    self._dispatcher_parked = False
                    wake.clear()
                continue
            if single:
                pool = pools[0]
            else:
                r = self.rng.random()
                pool = next((p for p, c in zip(pools, cum, strict=True) if r <= c), pools[-1])
            tally.scheduled += 1
            pool.queue.put(Iteration(tally, nxt, tally.to_wall(nxt)))
            k += 1
            nxt = nxt + self.rng.expovariate(rate) if poisson else t0 + offset + k / rate

    def _sample_health(self, tally: LiveTally) -> None:
        self.process.cpu_percent(None)
        tally.machine_first = read_machine()
        while True:
            gevent.sleep(1.0)
            tally.cpu.append(self.process.cpu_percent(None))
            tally.machine_last = read_machine()
            tally.rss_max_mb = max(tally.rss_max_mb, self.process.memory_info().rss / 1e6)

    def _sample_lag(self, tally: LiveTally) -> None:
        while True:
            t = time.perf_counter()
            gevent.sleep(LOG_SAMPLE_INTERVAL_S)
            tally.lag_ms.append(max(0.0, (time.perf_counter() - t - LOG_SAMPLE_INTERVAL_S) * 1000.0))

    # one phase ----------------------------------------------------------------------------

    def run_phase(self, phase: PhasePlan, rate: float, emit: Any = None, check_stop: bool = True,
                  snapshot_every: Any = None) -> LiveTally:
        """Run one phase at ``rate`` iterations/s in this process and return its closed tally.

        ``emit(tally, elapsed)`` is called every second; ``snapshot_every(tally)`` every window.
        """
        tally = LiveTally(phase, rate, self.plan.window_s)
        tally.rss_max_mb = self.process.memory_info().rss / 1e6
        if self.pacer is not None:
            tally.pacer = self.pacer
            tally.pacer_base = (self.pacer.requests, self.pacer.held, self.pacer.waited_s)
        self.current = tally
        self.size_pools(rate)
        tally.max_users = self.user_count
        helpers = [gevent.spawn(self._sample_health, tally), gevent.spawn(self._sample_lag, tally)]
        dispatcher = gevent.spawn(self._dispatch, tally, rate, phase.duration_s)
        t0 = time.perf_counter()
        next_emit = t0 + 1.0
        next_window = t0 + self.plan.window_s
        while not dispatcher.dead:
            gevent.sleep(0.1)
            now = time.perf_counter()
            if now >= next_emit:
                next_emit += 1.0
                if emit:
                    emit(tally, now - t0)
            if now >= next_window:
                next_window += self.plan.window_s
                if snapshot_every:
                    snapshot_every(tally)
                if check_stop and phase.kind == "stress" and tally.aborted is None:
                    reason = self.stop_condition(tally, now - t0)
                    if reason:
                        tally.aborted = reason
                        self.stop_requested = True
            if self.stop_requested:
                break
        dispatcher.join(timeout=1.0)
        dispatcher.kill(block=False)
        tally.active_s = time.perf_counter() - t0
        tally.requests_in_window, tally.completed_in_window = tally.requests, tally.completed
        if self.interrupted and tally.aborted is None:
            tally.aborted = "interrupted"
        # drain: let started iterations finish (bounded), so their latency counts in this phase
        drain_until = time.perf_counter() + (1.0 if self.interrupted else self.plan.request_timeout_s + 1.0)
        while time.perf_counter() < drain_until and (
            tally.inflight > 0 or any(p.queue.queue for p in self.pools)
        ):
            gevent.sleep(0.02)
        for pool in self.pools:  # tokens nobody took are dropped, never silently skipped
            while pool.queue.queue:
                it = pool.queue.queue.popleft()
                if it is not None:
                    it.tally.dropped += 1
        tally.paced = tally.paced_so_far()
        tally.closed = True
        tally.ended_at = time.time()
        for g in helpers:
            g.kill(block=False)
        self.stop_requested = self.interrupted
        return tally

    def stop_condition(self, tally: LiveTally, elapsed: float) -> str | None:
        achieved_iter = tally.completed / elapsed if elapsed > 0 else 0.0
        return stop_reason(
            tally.requests, tally.errors, tally.latency_p99_ms(), achieved_iter, tally.rate,
            error_rate=self.plan.stress_stop_error_rate,
            p99_limit_ms=self.plan.stress_stop_p99_ms,
            throughput_ratio=self.plan.stress_stop_throughput_ratio,
        )

    def start(self) -> None:
        self.pool_manager = gevent.spawn(self._manage_pool)
        self.deadlines.start()

    def shutdown(self) -> None:
        self.pool_manager.kill(block=False)
        self.deadlines.stop()
        for pool in self.pools:
            for _ in pool.users:
                pool.queue.put(None)
        self.group.kill(block=True, timeout=2.0)
        self._timer.close()
        close_shared_ledger()


def persona_weights(text: str) -> dict[str, float]:
    """``"ClinicAdmin=1,Receptionist=5"`` (the pack's persona weights) as a dict."""
    weights: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if sep and name.strip():
            weights[name.strip()] = float(value)
    return weights


def _marker_scanner() -> MarkerScanner | None:
    path = os.environ.get(CUSTOMERS_ENV)
    if not path:
        return None
    try:
        return MarkerScanner.for_customers(load_customers(path))
    except (OSError, KeyError, ValueError) as exc:  # no markers, no scanning; say so once
        log.warning("isolation scanning under load is off: %s", exc)
        return None


# --- locustfile loading --------------------------------------------------------------------------


def load_user_classes(plan: LoadPlan) -> list[type[User]]:
    """Import the plan's locustfile and return its paced user classes."""
    path = Path(plan.locustfile).resolve()
    if not path.is_file():
        raise ConfigError(f"locustfile {path} does not exist; check the pack's `locustfile` setting")
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(f"scaleready_locustfile_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [
        obj for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, User) and not obj.__dict__.get("abstract", False)
        and getattr(obj, "tasks", None)
    ]
    if plan.user_classes:
        classes = [c for c in classes if c.__name__ in plan.user_classes]
    plain = [c.__name__ for c in classes if not issubclass(c, CustomerUser)]
    if plain:
        raise ConfigError(
            f"{path}: user classes {plain} are not harness.load.kit.CustomerUser subclasses, so the "
            "harness cannot pace them; derive them from CustomerUser"
        )
    if not classes:
        raise ConfigError(f"{path}: no non-abstract CustomerUser classes with tasks found")
    for cls in classes:
        cls.host = plan.host
        cls.network_timeout = plan.request_timeout_s  # type: ignore[attr-defined]
        cls.connection_timeout = plan.request_timeout_s  # type: ignore[attr-defined]
    return classes


def _prepare_process(plan: LoadPlan) -> None:
    for key, value in plan.env.items():
        os.environ[key] = value
    if plan.customers_file:
        os.environ[CUSTOMERS_ENV] = plan.customers_file


# --- output ----------------------------------------------------------------------------------------


def _print_progress(label: str, elapsed: float, duration: float, rps: float, errors: int,
                    users: int, dropped: int) -> None:
    line = {"phase": label, "elapsed": round(elapsed, 2), "duration": duration, "rps": round(rps, 1),
            "errors": errors, "users": users, "dropped": dropped}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def _write_result(plan: LoadPlan, phases: list[dict[str, Any]], error: str | None, interrupted: bool) -> None:
    out = Path(plan.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (RESULT_FILE + ".tmp")
    tmp.write_text(json.dumps({"phases": phases, "error": error, "interrupted": interrupted}), encoding="utf-8")
    tmp.replace(out / RESULT_FILE)


def _thresholds(plan: LoadPlan) -> Thresholds:
    return Thresholds(
        plan.saturation_cpu_pct,
        plan.saturation_loop_lag_p99_ms,
        plan.saturation_dropped_ratio,
        plan.saturation_steal_pct,
    )


def _should_stop_stress(plan: LoadPlan, phase_dict: dict[str, Any]) -> bool:
    """After a stress step: stop further steps if it tripped a condition or the generator saturated."""
    return bool(phase_dict.get("aborted")) or phase_dict["generator"]["saturated"]


# --- single process --------------------------------------------------------------------------------


def run_local(plan: LoadPlan) -> int:
    _prepare_process(plan)
    try:
        classes = load_user_classes(plan)
    except Exception as exc:  # a broken locustfile: report it like any other engine error
        log.exception("could not load the locustfile")
        _write_result(plan, [], f"{type(exc).__name__}: {exc}", False)
        return 1
    env = Environment(user_classes=classes, host=plan.host, catch_exceptions=True, events=locust.events)
    seed = plan.seed if plan.seed is not None else random.SystemRandom().randrange(2**31)
    engine = Engine(plan, env, classes, seed)

    def on_signal() -> None:
        engine.interrupted = True
        engine.stop_requested = True

    gevent.signal_handler(signal.SIGINT, on_signal)
    gevent.signal_handler(signal.SIGTERM, on_signal)
    engine.start()
    phases: list[dict[str, Any]] = []
    error: str | None = None
    try:
        for phase in plan.phases:
            if engine.interrupted:
                break
            last = {"n": 0}

            def emit(tally: LiveTally, elapsed: float, last: dict[str, int] = last, phase: PhasePlan = phase) -> None:
                rps = tally.requests - last["n"]
                last["n"] = tally.requests
                _print_progress(phase.label, elapsed, phase.duration_s, rps, tally.errors,
                                engine.user_count, tally.dropped)

            tally = engine.run_phase(phase, phase.rate, emit=emit)
            record = tally_to_phase(tally.snapshot(), _thresholds(plan))
            phases.append(phase_to_dict(record))
            _write_result(plan, phases, None, engine.interrupted)
            if phase.kind == "stress" and _should_stop_stress(plan, phases[-1]):
                break
    except Exception as exc:  # keep what was measured; the parent reports the error
        log.exception("load engine failed")
        error = f"{type(exc).__name__}: {exc}"
    finally:
        engine.shutdown()
    _write_result(plan, phases, error, engine.interrupted)
    return 0 if error is None else 1


# --- distributed: master ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _WorkerState:
    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.pid = 0
        self.progress: dict[str, Any] = {}
        self.snapshots: dict[int, dict[str, Any]] = {}
        self.finals: set[int] = set()
        self.lost = False
        self.lost_at = 0.0  # seconds into the phase when the master noticed
        self.ready = False
        self.error: str | None = None


def _lost_worker_note(w: _WorkerState, index: int) -> str:
    """Say how much of a lost worker's data is in the phase's totals and how much is missing."""
    snap = w.snapshots.get(index)
    kept = sum(e["requests"] for e in snap["endpoints"].values()) if snap else 0
    counted = w.progress.get("requests", 0) if w.progress.get("index") == index else 0
    return (
        f"Load worker pid {w.pid} was lost {w.lost_at:.1f} s into the phase. The totals keep the "
        f"{kept} of its requests it had reported in its last histogram report; it had counted "
        f"{counted} by its last progress message, so at least {max(0, counted - kept)} of its "
        "requests, and all it would have sent afterwards, are missing."
    )


def run_master(plan: LoadPlan) -> int:
    port = plan.master_port or _free_port()
    env = Environment(user_classes=[], host=plan.host, events=locust.events)
    runner = env.create_master_runner("127.0.0.1", port)
    workers: dict[str, _WorkerState] = {}
    state = {"interrupted": False}

    def worker(msg: Any) -> _WorkerState:
        return workers.setdefault(msg.node_id, _WorkerState(msg.node_id))

    def on_hello(environment: Any, msg: Any, **_: Any) -> None:
        worker(msg).pid = msg.data["pid"]

    def on_progress(environment: Any, msg: Any, **_: Any) -> None:
        worker(msg).progress = msg.data

    def on_ready(environment: Any, msg: Any, **_: Any) -> None:
        w = worker(msg)
        w.ready = True
        w.error = (msg.data or {}).get("error")

    def on_tally(environment: Any, msg: Any, **_: Any) -> None:
        w = worker(msg)
        idx = msg.data["index"]
        w.snapshots[idx] = msg.data["tally"]
        if msg.data.get("final"):
            w.finals.add(idx)

    runner.register_message("sr_hello", on_hello)
    runner.register_message("sr_progress", on_progress)
    runner.register_message("sr_tally", on_tally)
    runner.register_message("sr_ready", on_ready)

    def on_signal() -> None:
        state["interrupted"] = True

    gevent.signal_handler(signal.SIGINT, on_signal)
    gevent.signal_handler(signal.SIGTERM, on_signal)

    cmd = [sys.executable, "-m", "harness.load.engine", "--worker", "--master", f"127.0.0.1:{port}"]
    procs = [subprocess.Popen(cmd, stdout=sys.stderr, stderr=sys.stderr) for _ in range(plan.workers)]
    phases: list[dict[str, Any]] = []
    error: str | None = None
    try:
        deadline = time.monotonic() + plan.worker_connect_timeout_s
        while len([w for w in workers.values() if w.pid]) < plan.workers:
            if time.monotonic() > deadline or state["interrupted"]:
                raise RuntimeError(
                    f"only {len(workers)} of {plan.workers} load workers connected within "
                    f"{plan.worker_connect_timeout_s:g} s"
                )
            gevent.sleep(0.1)
        pid_to_proc = {p.pid: p for p in procs}
        # setup first (import the locustfile, build tables), so phase one measures load, not imports
        for w in workers.values():
            runner.send_message("sr_setup", {"plan": plan.to_dict()}, client_id=w.client_id)
        while not all(w.ready for w in workers.values()):
            if time.monotonic() > deadline or state["interrupted"]:
                raise RuntimeError("load workers did not finish loading the locustfile in time; see the log")
            gevent.sleep(0.05)
        failed = [w.error for w in workers.values() if w.error]
        if failed:
            raise RuntimeError(f"a load worker could not load the locustfile: {failed[0]}")
        for index, phase in enumerate(plan.phases):
            if state["interrupted"]:
                break
            live = [w for w in workers.values() if not w.lost]
            if not live:
                raise RuntimeError("every load worker was lost; no generator is left")
            share = phase.rate / len(live)
            for w in live:
                runner.send_message("sr_phase", {"plan": plan.to_dict(), "index": index, "rate": share},
                                    client_id=w.client_id)
            t0 = time.perf_counter()
            stopped_reason: str | None = None
            sent_stop = False
            last_requests = 0
            hard_deadline = t0 + phase.duration_s + plan.request_timeout_s + 15.0
            next_emit = t0 + 1.0
            while True:
                gevent.sleep(0.1)
                now = time.perf_counter()
                for w in live:  # a worker whose process died or that Locust marks missing is lost
                    proc = pid_to_proc.get(w.pid)
                    node = runner.clients.get(w.client_id)
                    if index not in w.finals and (
                        (proc is not None and proc.poll() is not None)
                        or node is None or node.state == "missing"
                    ):
                        w.lost, w.lost_at = True, w.lost_at or now - t0
                pending = [w for w in live if not w.lost and index not in w.finals]
                if not pending or now > hard_deadline:
                    for w in pending:
                        w.lost, w.lost_at = True, now - t0
                    break
                if now >= next_emit:
                    next_emit += 1.0
                    prog = [w.progress for w in live if w.progress.get("index") == index]
                    total = sum(p["requests"] for p in prog)
                    _print_progress(phase.label, now - t0, phase.duration_s, total - last_requests,
                                    sum(p["errors"] for p in prog), sum(p["users"] for p in prog),
                                    sum(p["dropped"] for p in prog))
                    last_requests = total
                if not sent_stop and phase.kind == "stress" and now - t0 >= plan.window_s:
                    prog = [w.progress for w in live if w.progress.get("index") == index]
                    if prog:
                        elapsed = max(p["elapsed"] for p in prog) or 1.0
                        stopped_reason = stop_reason(
                            sum(p["requests"] for p in prog), sum(p["errors"] for p in prog),
                            max(p["p99_ms"] for p in prog),
                            sum(p["completed"] for p in prog) / elapsed, phase.rate,
                            error_rate=plan.stress_stop_error_rate, p99_limit_ms=plan.stress_stop_p99_ms,
                            throughput_ratio=plan.stress_stop_throughput_ratio,
                        )
                if not sent_stop and (stopped_reason or state["interrupted"]):
                    sent_stop = True
                    for w in live:
                        runner.send_message(
                            "sr_stop_phase",
                            {"index": index, "reason": "interrupted" if state["interrupted"] else stopped_reason},
                            client_id=w.client_id,
                        )
                    hard_deadline = min(hard_deadline, time.perf_counter() + 5.0)
            tallies = [w.snapshots[index] for w in live if index in w.snapshots]
            lost = sum(1 for w in live if w.lost)
            if not tallies:
                raise RuntimeError(f"phase {phase.label!r}: no load worker reported any data")
            merged = merge_tallies(tallies)
            merged["workers"] = len(live)
            merged["workers_lost"] = lost
            merged["notes"].extend(_lost_worker_note(w, index) for w in live if w.lost)
            if len(live) < plan.workers:
                merged["notes"].append(
                    f"{len(live)} of {plan.workers} load workers ran this phase (the others were lost "
                    "in an earlier phase): each carried more than its planned share of the load; "
                    "rerun the tier."
                )
            if state["interrupted"] and not merged.get("aborted"):
                merged["aborted"] = "interrupted"
            record = tally_to_phase(merged, _thresholds(plan))
            phases.append(phase_to_dict(record))
            _write_result(plan, phases, None, state["interrupted"])
            if phase.kind == "stress" and _should_stop_stress(plan, phases[-1]):
                break
    except Exception as exc:
        log.exception("load master failed")
        error = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            runner.quit()
        except Exception:  # workers may already be gone
            log.debug("runner.quit failed", exc_info=True)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
    _write_result(plan, phases, error, state["interrupted"])
    return 0 if error is None else 1


# --- distributed: worker ---------------------------------------------------------------------------


def run_worker(master_host: str, master_port: int) -> int:
    """Run one Locust worker for a harness master at ``master_host:master_port`` until it quits.

    The master sends each phase (the plan, the phase index and this worker's share of the rate);
    the worker paces its share with its own random phase, sends progress every second and its
    cumulative tally (encoded histograms) every window and at the end of the phase.
    """
    env = Environment(user_classes=[], events=locust.events)
    runner = env.create_worker_runner(master_host, master_port)
    box: dict[str, Any] = {"engine": None, "interrupted": False}

    def ensure_engine(plan: LoadPlan) -> Engine:
        if box["engine"] is None:
            _prepare_process(plan)
            classes = load_user_classes(plan)
            env.user_classes = classes
            env.host = plan.host
            seed = random.SystemRandom().randrange(2**31)  # distinct random phase per worker
            engine = Engine(plan, env, classes, seed)
            engine.start()
            engine.size_pools(plan.phases[0].rate / max(1, plan.workers))
            gevent.sleep(0.5)  # let the users start (on_start, TLS contexts) before any phase
            box["engine"] = engine
        return box["engine"]

    def on_phase(environment: Any, msg: Any, **_: Any) -> None:
        plan = LoadPlan.from_dict(msg.data["plan"])
        index = msg.data["index"]
        engine = ensure_engine(plan)
        engine.stop_requested = False
        box["index"] = index
        phase = plan.phases[index]

        def emit(tally: LiveTally, elapsed: float) -> None:
            runner.send_message("sr_progress", {
                "index": index, "elapsed": elapsed, "requests": tally.requests, "errors": tally.errors,
                "completed": tally.completed, "dropped": tally.dropped, "users": engine.user_count,
                "p99_ms": tally.latency_p99_ms(),
            })

        def snap(tally: LiveTally) -> None:
            runner.send_message("sr_tally", {"index": index, "final": False, "tally": tally.snapshot(1)})

        tally = engine.run_phase(phase, msg.data["rate"], emit=emit, check_stop=False, snapshot_every=snap)
        if engine.interrupted and tally.aborted is None:
            tally.aborted = "interrupted"
        runner.send_message("sr_tally", {"index": index, "final": True, "tally": tally.snapshot(1)})

    def on_setup(environment: Any, msg: Any, **_: Any) -> None:
        try:
            ensure_engine(LoadPlan.from_dict(msg.data["plan"]))
        except Exception as exc:  # reported to the master, which fails the run with it
            log.exception("worker setup failed")
            runner.send_message("sr_ready", {"pid": os.getpid(), "error": f"{type(exc).__name__}: {exc}"})
            return
        runner.send_message("sr_ready", {"pid": os.getpid(), "error": None})

    def on_stop_phase(environment: Any, msg: Any, **_: Any) -> None:
        engine = box["engine"]
        if engine is not None and engine.current is not None and engine.current.aborted is None:
            engine.current.aborted = msg.data.get("reason") or "stopped by master"
            engine.stop_requested = True

    def on_signal() -> None:
        box["interrupted"] = True
        engine = box["engine"]
        if engine is not None:
            engine.interrupted = True
            engine.stop_requested = True
        else:
            runner.quit()

    runner.register_message("sr_phase", on_phase, concurrent=True)
    runner.register_message("sr_stop_phase", on_stop_phase)
    runner.register_message("sr_setup", on_setup, concurrent=True)
    gevent.signal_handler(signal.SIGINT, on_signal)
    gevent.signal_handler(signal.SIGTERM, on_signal)
    runner.send_message("sr_hello", {"pid": os.getpid()})
    try:
        runner.greenlet.join()
    finally:
        if box["engine"] is not None:
            box["engine"].shutdown()
    return 0


# --- entry point -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.load.engine")
    parser.add_argument("plan", nargs="?", help="the LoadPlan JSON file")
    parser.add_argument("--worker", action="store_true", help="run as a Locust worker")
    parser.add_argument("--master", default="127.0.0.1:5557", help="HOST:PORT of the master (with --worker)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.worker:
        host, _, port = args.master.rpartition(":")
        return run_worker(host or "127.0.0.1", int(port))
    if not args.plan:
        parser.error("give the plan JSON file, or --worker --master HOST:PORT")
    plan = LoadPlan.read(Path(args.plan))
    return run_master(plan) if plan.workers > 0 else run_local(plan)


if __name__ == "__main__":
    sys.exit(main())
