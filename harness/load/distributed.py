"""Distributed load: a Locust master and its workers, each worker running its share of a phase.

Past what one generator process can send, the same plan runs on Locust's own distributed mode:
``run_master`` listens on ``plan.master_bind:master_port``, starts ``plan.workers`` local worker
processes (``python -m harness.load.engine --worker``), waits (bounded) for ``plan.remote_workers``
more that other machines start with ``scaleready worker --master HOST:PORT``, and talks to them
all in Locust custom messages:

    master -> worker   sr_setup {plan, customers, ledger}  the plan without the master's paths,
                                                        the customers' text (harness.load.joining)
                       sr_refuse {reason}              another pack version, or the audit is full
                       sr_phase {index, rate}          run phase ``index`` at this share of the rate
                       sr_stop_phase {index, reason}   a stress stop condition held, or a signal
    worker -> master   sr_hello {pid, host, pack_version}, sr_ready {pid, error}
                       sr_progress {index, elapsed, requests, errors, completed, dropped, users,
                                    p99_ms}             every second
                       sr_ledger {text}                new operation-ledger lines, before each tally
                       sr_tally {index, final, tally}   every window, and once at the phase's end

Local and remote workers take the same path (nothing is read from the master's disk), so the
tests of local workers cover the protocol remote ones use. The master writes each worker's own
final tally per phase to ``load-workers.json``, so a merge can be checked against its parts.

Each worker paces its share with its own random phase. The master merges the workers' tallies
(histograms merge without loss) into one phase. A worker whose process dies, or that Locust marks
missing, is *lost*: the data of its last tally report stays in the totals, the phase says how many
of its requests are missing, and it is judged invalid; later phases run on the survivors and say
that they are short of a generator.

Imported by the engine child only (Locust).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import gevent
import locust
from locust.env import Environment

from harness.integrity.ledger import LEDGER_DIR_ENV, shared_ledger
from harness.load.joining import (
    EXIT_NO_MASTER,
    EXIT_REFUSED,
    WORKERS_FILE,
    LedgerTail,
    check_remote_target,
    local_plan,
    pack_version,
    portable_plan,
    refusal,
)
from harness.load.phases import run_phases
from harness.load.plan import LoadPlan, PhasePlan
from harness.load.progress import print_progress
from harness.load.result_file import ResultWriter
from harness.load.results import stop_reason
from harness.load.tally import LiveTally, PhaseTally, merge_tallies

log = logging.getLogger("scaleready.engine")

WILDCARD_BINDS = frozenset({"*", "0.0.0.0", "", "::"})  # noqa: S104  (every interface: name none to a worker)

__all__ = ["StartEngine", "WorkerEngine", "WorkerProgress", "run_master", "run_worker"]



@dataclass(frozen=True)
class WorkerProgress:
    """A worker's ``sr_progress`` message: its counts so far in phase ``index``."""

    index: int
    elapsed: float  # seconds into the phase
    requests: int
    errors: int
    completed: int  # iterations
    dropped: int
    users: int
    p99_ms: float  # latency from the intended start, so far


# --- the master ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _WorkerState:
    """What the master knows of one worker, from its messages and its process."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.pid = 0
        self.host = "?"
        self.joined = False
        self.progress: WorkerProgress | None = None
        self.snapshots: dict[int, PhaseTally] = {}
        self.finals: set[int] = set()
        self.lost = False
        self.lost_at = 0.0  # seconds into the phase when the master noticed
        self.ready = False
        self.error: str | None = None


def _lost_worker_note(w: _WorkerState, index: int) -> str:
    """Say how much of a lost worker's data is in the phase's totals and how much is missing."""
    snap = w.snapshots.get(index)
    kept = sum(e.requests for e in snap.endpoints.values()) if snap else 0
    counted = w.progress.requests if w.progress is not None and w.progress.index == index else 0
    return (
        f"Load worker pid {w.pid} on {w.host} was lost {w.lost_at:.1f} s into the phase. The totals keep the "
        f"{kept} of its requests it had reported in its last histogram report; it had counted "
        f"{counted} by its last progress message, so at least {max(0, counted - kept)} of its "
        "requests, and all it would have sent afterwards, are missing."
    )


class _Master:
    """One distributed run, master side: its Locust runner, its workers and their messages."""

    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        check_remote_target(plan.host, plan.remote_workers)
        self.version = pack_version(plan.pack_folder)
        self.portable = portable_plan(plan)
        self.port = plan.master_port or _free_port()
        env = Environment(user_classes=[], host=plan.host, events=locust.events)
        self.runner = env.create_master_runner(plan.master_bind, self.port)
        self.workers: dict[str, _WorkerState] = {}
        self.refused: list[str] = []  # why workers were turned away (a different pack copy)
        self.setup_sent = False
        ledger = plan.env.get(LEDGER_DIR_ENV)
        self.ledger_dir = Path(ledger) if ledger else None
        self.per_worker: list[dict[str, Any]] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.pid_to_proc: dict[int, subprocess.Popen[bytes]] = {}
        self.interrupted = False
        self.runner.register_message("sr_hello", self._on_hello)
        self.runner.register_message("sr_progress", self._on_progress)
        self.runner.register_message("sr_tally", self._on_tally)
        self.runner.register_message("sr_ready", self._on_ready)
        self.runner.register_message("sr_ledger", self._on_ledger)
        gevent.signal_handler(signal.SIGINT, self._on_signal)
        gevent.signal_handler(signal.SIGTERM, self._on_signal)

    # messages from the workers ------------------------------------------------------------

    def _worker(self, msg: Any) -> _WorkerState:
        return self.workers.setdefault(msg.node_id, _WorkerState(msg.node_id))

    def _on_hello(self, environment: Any, msg: Any, **_: Any) -> None:
        data = msg.data or {}
        host, version = data.get("host", "?"), data.get("pack_version")
        joined = sum(1 for w in self.workers.values() if w.joined)
        reason = None
        if version != self.version:
            reason = refusal(self.version, str(version), f"{host} (pid {data.get('pid')})", str(self.plan.pack_folder))
            self.refused.append(reason)
        elif self.setup_sent or joined >= self.plan.generators:
            reason = (f"load worker on {host} was refused: this audit's load already runs on its "
                      f"{self.plan.generators} workers; start it before the audit's next tier")  # fmt: skip
        if reason is not None:
            log.error("%s", reason)
            self.runner.send_message("sr_refuse", {"reason": reason}, client_id=msg.node_id)
            return
        w = self._worker(msg)
        w.pid, w.host, w.joined = data["pid"], host, True

    def _on_progress(self, environment: Any, msg: Any, **_: Any) -> None:
        self._worker(msg).progress = WorkerProgress(**msg.data)

    def _on_ready(self, environment: Any, msg: Any, **_: Any) -> None:
        w = self._worker(msg)
        w.ready = True
        w.error = (msg.data or {}).get("error")

    def _on_ledger(self, environment: Any, msg: Any, **_: Any) -> None:
        if self.ledger_dir is None or msg.node_id not in self.workers:
            return
        self.ledger_dir.mkdir(parents=True, exist_ok=True)
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in msg.node_id)
        with (self.ledger_dir / f"ledger-worker-{name}.jsonl").open("a", encoding="utf-8") as f:
            f.write(msg.data["text"])

    def _on_tally(self, environment: Any, msg: Any, **_: Any) -> None:
        if msg.node_id not in self.workers:
            return
        w = self._worker(msg)
        idx = msg.data["index"]
        w.snapshots[idx] = PhaseTally.from_dict(msg.data["tally"])
        if msg.data.get("final"):
            w.finals.add(idx)

    def _on_signal(self) -> None:
        self.interrupted = True

    # the workers' lifecycle ---------------------------------------------------------------

    def start_workers(self) -> None:
        here = "127.0.0.1" if self.plan.master_bind in WILDCARD_BINDS else self.plan.master_bind
        cmd = [sys.executable, "-m", "harness.load.engine", "--worker", "--master", f"{here}:{self.port}",
               "--pack", str(self.plan.pack_folder), "--wait", f"{self.plan.worker_connect_timeout_s:g}"]  # fmt: skip
        self.procs = [subprocess.Popen(cmd, stdout=sys.stderr, stderr=sys.stderr) for _ in range(self.plan.workers)]

    def _joined(self) -> list[_WorkerState]:
        return [w for w in self.workers.values() if w.joined]

    def connect_workers(self) -> None:
        """Wait (bounded) until every expected worker joined, then set each up (import the
        locustfile, build tables) so that phase one measures load, not imports."""
        plan = self.plan
        deadline = time.monotonic() + plan.worker_connect_timeout_s
        while len(self._joined()) < plan.generators:
            if self.refused:
                raise RuntimeError(self.refused[0])
            if time.monotonic() > deadline or self.interrupted:
                raise RuntimeError(self._join_timeout_message())
            gevent.sleep(0.1)
        self.pid_to_proc = {p.pid: p for p in self.procs}
        customers = Path(plan.customers_file).read_text(encoding="utf-8") if plan.customers_file else None
        setup = {"plan": self.portable, "customers": customers, "ledger": self.ledger_dir is not None}
        self.setup_sent = True
        for w in self._joined():
            self.runner.send_message("sr_setup", setup, client_id=w.client_id)
        while not all(w.ready for w in self.workers.values()):
            if time.monotonic() > deadline or self.interrupted:
                raise RuntimeError("load workers did not finish loading the locustfile in time; see the log")
            gevent.sleep(0.05)
        failed = [w.error for w in self.workers.values() if w.error]
        if failed:
            raise RuntimeError(f"a load worker could not load the locustfile: {failed[0]}")

    def _join_timeout_message(self) -> str:
        plan = self.plan
        joined = self._joined()
        local = {p.pid for p in self.procs}
        remote = sum(1 for w in joined if w.pid not in local)
        text = (f"{len(joined)} of {plan.generators} load workers joined within "
                f"{plan.worker_connect_timeout_s:g} s ({len(joined) - remote} of {plan.workers} "
                f"started here, {remote} of {plan.remote_workers} from other hosts)")  # fmt: skip
        if plan.remote_workers:
            address = "THIS-HOST" if plan.master_bind in WILDCARD_BINDS else plan.master_bind
            text += (f"; on each other host run: scaleready worker --master {address}:{self.port} "
                     f"PACK (the same pack folder), and check that port {self.port} is reachable")  # fmt: skip
        return text

    def close(self) -> None:
        try:
            self.runner.quit()
        except Exception:  # workers may already be gone
            log.debug("runner.quit failed", exc_info=True)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    # one phase ----------------------------------------------------------------------------

    def run_phase(self, index: int, phase: PhasePlan) -> PhaseTally:
        """Run phase ``index`` on the workers still alive; return their merged tally."""
        live = [w for w in self._joined() if not w.lost]
        if not live:
            raise RuntimeError("every load worker was lost; no generator is left")
        share = phase.rate / len(live)
        for w in live:
            self.runner.send_message("sr_phase", {"index": index, "rate": share}, client_id=w.client_id)
        self._follow(index, phase, live)
        merged = self._merged(index, phase, live)
        self._write_per_worker(index, phase, live)
        return merged

    def _write_per_worker(self, index: int, phase: PhasePlan, live: list[_WorkerState]) -> None:
        """Each worker's own last tally of the phase, beside the merge (write, then rename)."""
        self.per_worker.append({"index": index, "label": phase.label, "workers": [
            {"id": w.client_id, "host": w.host, "pid": w.pid, "lost": w.lost,
             "tally": w.snapshots[index].to_dict() if index in w.snapshots else None}
            for w in live
        ]})  # fmt: skip
        out = Path(self.plan.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / (WORKERS_FILE + ".tmp")
        tmp.write_text(json.dumps({"phases": self.per_worker}), encoding="utf-8")
        tmp.replace(out / WORKERS_FILE)

    def _follow(self, index: int, phase: PhasePlan, live: list[_WorkerState]) -> None:
        """Until every live worker sent its final tally: print progress, stop stress, notice losses."""
        plan = self.plan
        t0 = time.perf_counter()
        stopped_reason: str | None = None
        sent_stop = False
        last_requests = 0
        hard_deadline = t0 + phase.duration_s + plan.request_timeout_s + 15.0
        next_emit = t0 + 1.0
        while True:
            gevent.sleep(0.1)
            now = time.perf_counter()
            self._notice_lost(index, live, now - t0)
            pending = [w for w in live if not w.lost and index not in w.finals]
            if not pending or now > hard_deadline:
                for w in pending:
                    w.lost, w.lost_at = True, now - t0
                return
            if now >= next_emit:
                next_emit += 1.0
                last_requests = self._print_progress(index, phase, live, now - t0, last_requests)
            if not sent_stop and phase.kind == "stress" and now - t0 >= plan.window_s:
                stopped_reason = self._stress_stop_reason(index, phase, live)
            if not sent_stop and (stopped_reason or self.interrupted):
                sent_stop = True
                reason = "interrupted" if self.interrupted else stopped_reason
                for w in live:
                    self.runner.send_message("sr_stop_phase", {"index": index, "reason": reason},
                                             client_id=w.client_id)  # fmt: skip
                hard_deadline = min(hard_deadline, time.perf_counter() + 5.0)

    def _notice_lost(self, index: int, live: list[_WorkerState], elapsed: float) -> None:
        for w in live:  # a worker whose process died or that Locust marks missing is lost
            proc = self.pid_to_proc.get(w.pid)
            node = self.runner.clients.get(w.client_id)
            if index not in w.finals and (
                (proc is not None and proc.poll() is not None)
                or node is None or node.state == "missing"
            ):
                w.lost, w.lost_at = True, w.lost_at or elapsed

    @staticmethod
    def _progress(index: int, live: list[_WorkerState]) -> list[WorkerProgress]:
        return [w.progress for w in live if w.progress is not None and w.progress.index == index]

    def _print_progress(self, index: int, phase: PhasePlan, live: list[_WorkerState], elapsed: float,
                        last_requests: int) -> int:  # fmt: skip
        """One progress line for the whole phase; returns the requests counted so far."""
        prog = self._progress(index, live)
        total = sum(p.requests for p in prog)
        print_progress(phase.label, elapsed, phase.duration_s, total - last_requests,
                       sum(p.errors for p in prog), sum(p.users for p in prog),
                       sum(p.dropped for p in prog))  # fmt: skip
        return total

    def _stress_stop_reason(self, index: int, phase: PhasePlan, live: list[_WorkerState]) -> str | None:
        prog = self._progress(index, live)
        if not prog:
            return None
        plan = self.plan
        elapsed = max(p.elapsed for p in prog) or 1.0
        return stop_reason(
            sum(p.requests for p in prog), sum(p.errors for p in prog),
            max(p.p99_ms for p in prog),
            sum(p.completed for p in prog) / elapsed, phase.rate,
            error_rate=plan.stress_stop_error_rate, p99_limit_ms=plan.stress_stop_p99_ms,
            throughput_ratio=plan.stress_stop_throughput_ratio,
        )

    def _merged(self, index: int, phase: PhasePlan, live: list[_WorkerState]) -> PhaseTally:
        """The workers' tallies as one, with what was lost said in its notes."""
        tallies = [w.snapshots[index] for w in live if index in w.snapshots]
        lost = sum(1 for w in live if w.lost)
        if not tallies:
            raise RuntimeError(f"phase {phase.label!r}: no load worker reported any data")
        merged = merge_tallies(tallies)
        notes = [*merged.notes, *(_lost_worker_note(w, index) for w in live if w.lost)]
        if len(live) < self.plan.generators:
            notes.append(
                f"{len(live)} of {self.plan.generators} load workers ran this phase (the others were lost "
                "in an earlier phase): each carried more than its planned share of the load; "
                "rerun the tier."
            )
        aborted = "interrupted" if self.interrupted and not merged.aborted else merged.aborted
        return replace(merged, workers=len(live), workers_lost=lost, notes=tuple(notes), aborted=aborted)


def run_master(plan: LoadPlan) -> int:
    """Run ``plan`` on its local and remote Locust workers; write the result after each phase."""
    try:
        master = _Master(plan)
    except Exception as exc:  # a loopback target for remote workers, no pack folder, a port in use
        log.exception("load master could not start")
        ResultWriter(plan).write(f"{type(exc).__name__}: {exc}", False)
        return 1
    master.start_workers()
    return run_phases(plan, master.run_phase, interrupted=lambda: master.interrupted, start=master.connect_workers,
                      close=master.close, failure="load master failed")  # fmt: skip


# --- a worker --------------------------------------------------------------------------------------


class WorkerEngine(Protocol):
    """What a worker needs of its engine (``harness.load.engine.Engine``)."""

    current: LiveTally | None
    interrupted: bool
    stop_requested: bool

    @property
    def user_count(self) -> int: ...

    def run_phase(self, phase: PhasePlan, rate: float, emit: Callable[[LiveTally, float], None] | None = None,
                  check_stop: bool = True,
                  snapshot_every: Callable[[LiveTally], None] | None = None) -> LiveTally: ...  # fmt: skip

    def shutdown(self) -> None: ...


# Builds and starts a worker's engine from the master's plan (harness.load.engine.start_worker_engine).
StartEngine = Callable[[LoadPlan, Environment], WorkerEngine]


class _Worker:
    """One Locust worker for a harness master: runs the phases the master sends."""

    def __init__(self, runner: Any, env: Environment, start_engine: StartEngine, pack_dir: Path) -> None:
        self.env = env
        self.runner = runner
        self.start_engine = start_engine
        self.pack_dir = pack_dir
        self.version = pack_version(pack_dir)
        self.scratch = Path(tempfile.mkdtemp(prefix="scaleready-worker-"))
        self.plan: LoadPlan | None = None
        self.ledger: LedgerTail | None = None
        self.engine: WorkerEngine | None = None
        self.refused = False

    def run(self) -> int:
        runner = self.runner
        runner.register_message("sr_phase", self._on_phase, concurrent=True)
        runner.register_message("sr_stop_phase", self._on_stop_phase)
        runner.register_message("sr_setup", self._on_setup, concurrent=True)
        runner.register_message("sr_refuse", self._on_refuse)
        gevent.signal_handler(signal.SIGINT, self._on_signal)
        gevent.signal_handler(signal.SIGTERM, self._on_signal)
        runner.send_message("sr_hello", {"pid": os.getpid(), "host": socket.gethostname(),
                                         "pack_version": self.version})  # fmt: skip
        try:
            runner.greenlet.join()
        finally:
            if self.engine is not None:
                self.engine.shutdown()
            shutil.rmtree(self.scratch, ignore_errors=True)
        return EXIT_REFUSED if self.refused else 0

    def _on_refuse(self, environment: Any, msg: Any, **_: Any) -> None:
        self.refused = True
        print(f"scaleready worker: {msg.data['reason']}", file=sys.stderr, flush=True)
        self.runner.stop()
        self.runner.greenlet.kill(block=True)  # as Locust's own "quit": run() returns

    def _on_setup(self, environment: Any, msg: Any, **_: Any) -> None:
        try:
            data = msg.data
            self.plan = local_plan(data["plan"], self.pack_dir, self.scratch, data.get("customers"),
                                   bool(data.get("ledger")))  # fmt: skip
            if data.get("ledger"):
                self.ledger = LedgerTail(self.scratch / "ledger")
            self.engine = self.start_engine(self.plan, self.env)
        except Exception as exc:  # reported to the master, which fails the run with it
            log.exception("worker setup failed")
            self.runner.send_message("sr_ready", {"pid": os.getpid(), "error": f"{type(exc).__name__}: {exc}"})
            return
        self.runner.send_message("sr_ready", {"pid": os.getpid(), "error": None})

    def _ship_ledger(self) -> None:
        """The ledger lines written since the last tally, so the master's totals and its
        ledger stay in step."""
        if self.ledger is None:
            return
        shared_ledger().flush()
        text = self.ledger.new_text()
        if text:
            self.runner.send_message("sr_ledger", {"text": text})

    def _on_phase(self, environment: Any, msg: Any, **_: Any) -> None:
        plan, engine = self.plan, self.engine
        if plan is None or engine is None:
            log.error("phase message before the setup; ignored")
            return
        index = msg.data["index"]
        engine.stop_requested = False
        phase = plan.phases[index]
        runner = self.runner

        def emit(tally: LiveTally, elapsed: float) -> None:
            runner.send_message("sr_progress", asdict(WorkerProgress(
                index=index, elapsed=elapsed, requests=tally.requests, errors=tally.errors,
                completed=tally.completed, dropped=tally.dropped, users=engine.user_count,
                p99_ms=tally.latency_p99_ms(),
            )))  # fmt: skip

        def snap(tally: LiveTally) -> None:
            self._ship_ledger()
            runner.send_message("sr_tally", {"index": index, "final": False, "tally": tally.snapshot(1).to_dict()})

        tally = engine.run_phase(phase, msg.data["rate"], emit=emit, check_stop=False, snapshot_every=snap)
        if engine.interrupted and tally.aborted is None:
            tally.aborted = "interrupted"
        self._ship_ledger()
        runner.send_message("sr_tally", {"index": index, "final": True, "tally": tally.snapshot(1).to_dict()})

    def _on_stop_phase(self, environment: Any, msg: Any, **_: Any) -> None:
        engine = self.engine
        if engine is not None and engine.current is not None and engine.current.aborted is None:
            engine.current.aborted = msg.data.get("reason") or "stopped by master"
            engine.stop_requested = True

    def _on_signal(self) -> None:
        engine = self.engine
        if engine is not None:
            engine.interrupted = True
            engine.stop_requested = True
        else:
            self.runner.quit()


def run_worker(master_host: str, master_port: int, start_engine: StartEngine, *, pack_dir: Path,
               wait_s: float) -> int:  # fmt: skip
    """Run one Locust worker for the harness master at ``master_host:master_port`` until it quits.

    Waits up to ``wait_s`` for the master to answer (EXIT_NO_MASTER if none did). Joins with the
    version of ``pack_dir`` (EXIT_REFUSED if the master's differs). The master sends the plan
    once, then each phase (its index and this worker's share of the rate); the worker paces its
    share with its own random phase, sends progress every second and its cumulative tally
    (encoded histograms) every window and at the end of the phase. ``start_engine`` builds this
    process's engine from the master's plan.
    """
    env = Environment(user_classes=[], events=locust.events)
    runner = None
    # Locust's worker blocks in its constructor until the master acknowledges it (retrying for
    # minutes); bound that wait by ours, so a host between two tiers can wait for the next one.
    with gevent.Timeout(wait_s, False):
        try:
            runner = env.create_worker_runner(master_host, master_port)
        except ConnectionError:
            runner = None
    if runner is None:
        print(f"scaleready worker: no master answered at {master_host}:{master_port} within {wait_s:g} s",
              file=sys.stderr, flush=True)  # fmt: skip
        return EXIT_NO_MASTER
    _drop_locust_request_stats(env)
    return _Worker(runner, env, start_engine, pack_dir).run()


def _drop_locust_request_stats(env: Environment) -> None:
    """Stop Locust's runner from logging every request into its own statistics.

    The harness records each request itself (``Engine.on_request``: exact histograms per
    endpoint and window, shipped in ``sr_tally``); Locust's ``RequestStats`` of a worker are
    never read. Logging into them is a second recording of every request, a few per cent of a
    worker's CPU at its limit. A Locust that names its listener differently keeps it (harmless).
    """
    hook = env.events.request
    for handler in list(getattr(hook, "_handlers", ())):
        if getattr(handler, "__qualname__", "") == "Runner.__init__.<locals>.on_request":
            hook.remove_listener(handler)
