"""The load engine: an open-model arrival-rate executor on Locust, run as a child process.

    python -m harness.load.engine PLAN.json                  # one process (or master if workers > 0)
    python -m harness.load.engine --worker --master HOST:PORT # a Locust worker

Importing this module imports Locust, which monkey-patches the process with gevent: only the
child process imports it (``harness.load.stage`` starts it), never the harness's parent.

How one phase runs in one process (:class:`Engine`)
    The dispatcher (``harness.load.timing``) puts each iteration's token on a user class's queue
    at its intended start. A pool of paced users (``harness.load.kit.CustomerUser``) takes the
    tokens: one token = one task execution = one iteration. The pool starts at Little's law size
    (rate x expected latency x safety, with a floor) and grows while tokens queue up, up to
    ``max_users``; a token that waits more than ``max_start_delay_s`` for a free user is dropped
    and counted. The request hook (:meth:`Engine.on_request`) times every request from its
    intended start, classifies failures (``harness.load.failures``), scans successful answers for
    other customers' markers, and records into the phase's tally (``harness.load.tally``).

The generator measures itself while it runs, per phase and per process: its CPU, its event
loop's lateness (a greenlet sleeps 50 ms and measures the overshoot), its memory, the iterations
it dropped, and the machine's readings (``harness.load.machine``: its own wait for a CPU,
hypervisor steal, the machine's busy CPU). What makes a phase saturated or crowded, and why the
thresholds are where they are, is in ``harness.validity``.

Several processes: ``harness.load.distributed`` (a Locust master and its workers).
Progress: one JSON line per second on stdout (``harness.load.progress``); everything else goes
to stderr. Results: ``load-result.json`` (``harness.load.result_file``).
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
import locust  # noqa: F401  (first: Locust monkey-patches the process with gevent)
import psutil
from gevent.pool import Group
from locust.env import Environment
from locust.user.users import User

from harness.integrity.ledger import close_shared_ledger, shared_ledger
from harness.integrity.markers import MarkerScanner
from harness.load import distributed, recording
from harness.load.bounding import RequestDeadlines, bound_responses
from harness.load.failures import classify, error_sample
from harness.load.kit import (
    CUSTOMER_CONTEXT_KEY,
    CUSTOMERS_ENV,
    ITERATION_CONTEXT_KEY,
    PACER_ATTRIBUTE,
    load_customers,
)
from harness.load.locustfile import load_user_classes, prepare_process, user_weights
from harness.load.machine import read_machine
from harness.load.phases import run_phases
from harness.load.plan import LoadPlan, PhasePlan
from harness.load.progress import print_progress
from harness.load.result_file import ResultWriter
from harness.load.results import stop_reason
from harness.load.tally import MAX_ERROR_SAMPLES, LiveTally, PhaseTally
from harness.load.timing import Arrivals, ClassPool, Iteration
from harness.pacing import RequestPacer

log = logging.getLogger("scaleready.engine")

LOG_SAMPLE_INTERVAL_S = 0.05
# How far ahead of its paced slot a request may go under the pack's max_rps (harness.pacing).
PACER_BURST_S = 0.1

__all__ = ["Engine", "main", "run_local", "run_worker", "start_worker_engine"]


class Engine:
    """Runs phases in this process: owns the Locust environment, the pools and the recorder."""

    def __init__(self, plan: LoadPlan, env: Environment, user_classes: list[type[User]], seed: int) -> None:
        self.plan = plan
        self.env = env
        weights = user_weights(user_classes)
        total = sum(weights) or 1
        self.pools = [ClassPool(c, w / total) for c, w in zip(user_classes, weights, strict=True) if w > 0]
        self.arrivals = Arrivals(self.pools, random.Random(seed), poisson=plan.arrivals == "poisson",
                                 max_start_delay_s=plan.max_start_delay_s)  # fmt: skip
        self.group = Group()
        self.current: LiveTally | None = None
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
            RequestPacer(plan.max_rps / max(1, plan.generators), burst_s=PACER_BURST_S) if plan.max_rps else None
        )
        self.ledger = shared_ledger()
        recording.prepare()  # build the percentile lookup table before any load, not during it
        # Thousands of customer records, the locustfile and Locust itself are long-lived: move them
        # out of the collector's reach, or every full collection walks them all and stalls the
        # event loop for tens of milliseconds, which would show as the target's latency.
        gc.collect()
        gc.freeze()
        setattr(env, PACER_ATTRIBUTE, self.arrivals)
        env.events.request.add_listener(self.on_request)

    @property
    def stop_requested(self) -> bool:
        """Set to end the current phase early (a stop condition, a signal, the master)."""
        return self.arrivals.stop_requested

    @stop_requested.setter
    def stop_requested(self, value: bool) -> None:
        self.arrivals.stop_requested = value

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
        # Latency from the intended start (harness.load.timing), inline: it runs for every request.
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
        tally.record(name, latency, service, reason, length)
        if reason is not None and len(tally.samples) < MAX_ERROR_SAMPLES:
            tally.samples.append(error_sample(name, request_type, url, response, reason, customer))
        if self.scanner is not None and customer is not None and response is not None and reason is None:
            # Every successful answer is scanned: a leak that only happens under concurrency
            # (shared caches, request context bleeding between requests) shows only here.
            foreign = self.scanner.foreign(getattr(response, "content", None), customer)
            if foreign:
                self.ledger.observe_leak(
                    customer=customer, foreign=foreign, request=name,
                    status=getattr(response, "status_code", None), method=request_type, url=_path_and_query(url),
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
            user._scaleready_pool = pool
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
        """Drop tokens that waited past the grace; grow pools whose tokens queue up."""
        while True:
            self.arrivals.expire(time.perf_counter())
            for pool in self.pools:
                waiting = len(pool.queue.queue)
                if waiting and pool.idle == 0:
                    self._spawn(pool, max(1, min(waiting, len(pool.users))))
            if self.current is not None:
                self.current.max_users = max(self.current.max_users, self.user_count)
            gevent.sleep(0.02)

    def _sample_health(self, tally: LiveTally) -> None:
        # The machine's readings are differences between two of them (harness.load.machine), so
        # they are read at the phase's start and end (and before each window's snapshot), not
        # every second: a reading walks every process on the machine, and near the generator's
        # limit reading it every second cost ~2 % of the generator's CPU (py-spy, throughput case).
        self.process.cpu_percent(None)
        tally.machine_first = read_machine()
        while True:
            gevent.sleep(1.0)
            tally.cpu.append(self.process.cpu_percent(None))
            tally.rss_max_mb = max(tally.rss_max_mb, self.process.memory_info().rss / 1e6)

    def _sample_lag(self, tally: LiveTally) -> None:
        while True:
            t = time.perf_counter()
            gevent.sleep(LOG_SAMPLE_INTERVAL_S)
            tally.lag_ms.append(max(0.0, (time.perf_counter() - t - LOG_SAMPLE_INTERVAL_S) * 1000.0))

    # one phase ----------------------------------------------------------------------------

    def run_phase(self, phase: PhasePlan, rate: float, emit: Callable[[LiveTally, float], None] | None = None,
                  check_stop: bool = True, snapshot_every: Callable[[LiveTally], None] | None = None) -> LiveTally:
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
        dispatcher = gevent.spawn(self.arrivals.dispatch, tally, rate, phase.duration_s, phase.kind == "probe")
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
                    tally.machine_last = read_machine()
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
        self._drain(tally)
        tally.machine_last = read_machine()
        tally.paced = tally.paced_so_far()
        tally.closed = True
        tally.ended_at = time.time()
        for g in helpers:
            g.kill(block=False)
        self.stop_requested = self.interrupted
        return tally

    def _drain(self, tally: LiveTally) -> None:
        """Let started iterations finish (bounded), so their latency counts in this phase."""
        drain_until = time.perf_counter() + (1.0 if self.interrupted else self.plan.request_timeout_s + 1.0)
        while time.perf_counter() < drain_until and (
            tally.inflight > 0 or any(p.queue.queue for p in self.pools)
        ):
            gevent.sleep(0.02)
        self.arrivals.drop_untaken()

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
        self.arrivals.close()
        close_shared_ledger()


def _path_and_query(url: str | None) -> str | None:
    """``http://host:port/a?b=1`` -> ``/a?b=1``: what a replay on the same target sends."""
    if not url:
        return None
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _marker_scanner() -> MarkerScanner | None:
    path = os.environ.get(CUSTOMERS_ENV)
    if not path:
        return None
    try:
        return MarkerScanner.for_customers(load_customers(path))
    except (OSError, KeyError, ValueError) as exc:  # no markers, no scanning; say so once
        log.warning("isolation scanning under load is off: %s", exc)
        return None


# --- one process -----------------------------------------------------------------------------------


def run_local(plan: LoadPlan) -> int:
    """Run every phase of ``plan`` in this process; write ``load-result.json`` after each."""
    prepare_process(plan)
    try:
        classes = load_user_classes(plan)
    except Exception as exc:  # a broken locustfile: report it like any other engine error
        log.exception("could not load the locustfile")
        ResultWriter(plan).write(f"{type(exc).__name__}: {exc}", False)
        return 1
    env = Environment(user_classes=classes, host=plan.host, catch_exceptions=True, events=locust.events)
    seed = plan.seed if plan.seed is not None else random.SystemRandom().randrange(2**31)
    engine = Engine(plan, env, classes, seed)

    def on_signal() -> None:
        engine.interrupted = True
        engine.stop_requested = True

    def run_phase(index: int, phase: PhasePlan) -> PhaseTally:
        last = 0

        def emit(tally: LiveTally, elapsed: float) -> None:
            nonlocal last
            rps = tally.requests - last
            last = tally.requests
            print_progress(phase.label, elapsed, phase.duration_s, rps, tally.errors,
                           engine.user_count, tally.dropped)

        return engine.run_phase(phase, phase.rate, emit=emit).snapshot()

    gevent.signal_handler(signal.SIGINT, on_signal)
    gevent.signal_handler(signal.SIGTERM, on_signal)
    engine.start()
    return run_phases(plan, run_phase, interrupted=lambda: engine.interrupted, close=engine.shutdown)


# --- a worker of a distributed run -------------------------------------------------------------------


def start_worker_engine(plan: LoadPlan, env: Environment) -> Engine:
    """The engine of a Locust worker, built on the master's first message and started."""
    prepare_process(plan)
    classes = load_user_classes(plan)
    env.user_classes = classes
    env.host = plan.host
    seed = random.SystemRandom().randrange(2**31)  # distinct random phase per worker
    engine = Engine(plan, env, classes, seed)
    engine.start()
    engine.size_pools(plan.phases[0].rate / max(1, plan.generators))
    gevent.sleep(0.5)  # let the users start (on_start, TLS contexts) before any phase
    return engine


def run_worker(master_host: str, master_port: int, pack_dir: Path, wait_s: float) -> int:
    """Run one Locust worker for a harness master at ``master_host:master_port`` until it quits
    (``harness.load.distributed.run_worker``)."""
    return distributed.run_worker(master_host, master_port, start_worker_engine, pack_dir=pack_dir, wait_s=wait_s)


# --- entry point -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.load.engine")
    parser.add_argument("plan", nargs="?", help="the LoadPlan JSON file")
    parser.add_argument("--worker", action="store_true", help="run as a Locust worker")
    parser.add_argument("--master", default="127.0.0.1:5557", help="HOST:PORT of the master (with --worker)")
    parser.add_argument("--pack", default=".", help="this host's copy of the pack folder (with --worker)")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the master (with --worker)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.worker:
        host, _, port = args.master.rpartition(":")
        return run_worker(host or "127.0.0.1", int(port), Path(args.pack), args.wait)
    if not args.plan:
        parser.error("give the plan JSON file, or --worker --master HOST:PORT --pack DIR")
    plan = LoadPlan.read(Path(args.plan))
    return distributed.run_master(plan) if plan.generators > 0 else run_local(plan)


if __name__ == "__main__":
    sys.exit(main())
