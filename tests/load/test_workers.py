"""Distributed mode: a Locust master and two local workers, real processes, against the null target.

What the rest of the harness relies on: the master's merged histograms are the histograms of
every sample the workers took (nothing lost, nothing rounded), and a worker that dies mid-phase
makes the phase invalid while the data it had already reported stays in the totals (and what is
missing is said, not silently dropped).

The locustfile logs every request's service time, as Locust hands it to the ``request`` event,
to a file per worker process: that log is the ground truth the merged record is compared with.
Each run is a few seconds at a few hundred requests per second.
"""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import psutil
import pytest
from sent_log import LOGGING_LOCUSTFILE

from harness.load import LoadPlan, LoadProgress, PhasePlan, recording, run_load
from harness.load.noise_floor import run_null_target
from harness.load.stage import PLAN_FILE


def _setup(tmp_path: Path) -> tuple[str, Path]:
    sent = tmp_path / "sent"
    sent.mkdir()
    lf = tmp_path / "locustfile.py"
    lf.write_text(textwrap.dedent(LOGGING_LOCUSTFILE), encoding="utf-8")
    return str(lf), sent


def _sent(sent: Path) -> dict[int, list[tuple[float, float]]]:
    """Per worker pid: (wall time, service ms) of every request it made."""
    out: dict[int, list[tuple[float, float]]] = {}
    for f in sent.glob("*.log"):
        rows = [line.split() for line in f.read_text().splitlines() if line.strip()]
        out[int(f.stem.rsplit("-", 1)[1])] = [(float(t), float(v)) for t, v in rows]
    return out


def _histogram(values: list[float]):  # type: ignore[no-untyped-def]
    hist = recording.new_histogram()
    for v in values:
        recording.record_ms(hist, v)
    return hist


def test_the_merged_histogram_is_the_histogram_of_every_sample(tmp_path: Path) -> None:
    lf, sent = _setup(tmp_path)
    with run_null_target(service_ms=0.2) as url:
        outcome = run_load(LoadPlan(
            locustfile=lf, host=url, output_dir=str(tmp_path / "out"),
            phases=(PhasePlan("steady", "steady", 150, 3.0),), workers=2, window_s=1.0,
            env={"SENT_DIR": str(sent)},
        ))
    assert outcome.error is None, outcome.error
    (steady,) = outcome.phases
    per_worker = _sent(sent)
    assert len(per_worker) == 2 and all(per_worker.values())
    values = [v for rows in per_worker.values() for _, v in rows]
    truth = _histogram(values)  # one recorder fed every sample of both workers

    (endpoint,) = steady.endpoints
    merged = recording.decode(endpoint.service_hdr)
    assert merged.get_total_count() == truth.get_total_count() == len(values) == steady.requests
    assert list(merged.counts) == list(truth.counts)  # bucket for bucket, not just the percentiles
    assert recording.summarise(merged) == recording.summarise(truth) == steady.service
    for p in (50.0, 90.0, 99.0, 99.9, 100.0):
        assert merged.get_value_at_percentile(p) == truth.get_value_at_percentile(p)
    # intended-start latency: one value per request too, never below the service time
    assert recording.decode(endpoint.latency_hdr).get_total_count() == len(values)
    assert steady.latency.p50_ms >= steady.service.p50_ms
    # the per-window histograms, merged across workers and windows, hold the same samples
    windows = recording.merge(recording.decode(w.service_hdr) for w in steady.windows)
    assert list(windows.counts) == list(truth.counts)
    assert sum(w.requests for w in steady.windows) == len(values)


def _worker_pids(tmp_path: Path) -> list[int]:
    """The Locust worker processes started by the master whose plan lives under ``tmp_path``."""
    plan_path = str(tmp_path / "out" / PLAN_FILE)
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if plan_path in (proc.info["cmdline"] or ()):
                return [c.pid for c in proc.children() if "--worker" in c.cmdline()]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return []


@pytest.mark.slow
def test_a_worker_killed_mid_phase_makes_it_invalid_and_keeps_what_it_reported(tmp_path: Path) -> None:
    lf, sent = _setup(tmp_path)
    killed: list[int] = []

    def kill_one_worker(progress: LoadProgress) -> None:
        if not killed and progress.phase == "steady" and progress.elapsed >= 2.0:
            pids = _worker_pids(tmp_path)
            if pids:
                psutil.Process(pids[0]).send_signal(signal.SIGKILL)
                killed.append(pids[0])

    with run_null_target(service_ms=0.2) as url:
        outcome = run_load(LoadPlan(
            locustfile=lf, host=url, output_dir=str(tmp_path / "out"),
            phases=(PhasePlan("steady", "steady", 100, 5.0), PhasePlan("stress", "stress x2", 200, 2.0)),
            workers=2, window_s=1.0, env={"SENT_DIR": str(sent)}, stress_stop_throughput_ratio=None,
        ), on_progress=kill_one_worker)

    assert killed, "the test never found a worker to kill"
    assert outcome.error is None, outcome.error
    steady, stress = outcome.phases
    health = steady.generator
    assert (health.workers, health.workers_lost) == (2, 1)
    assert steady.validity.saturated  # the tier built on this phase is invalid (harness.tiers)
    assert any("died or went missing" in r for r in steady.validity.reasons)

    per_worker = _sent(sent)
    (dead,) = (per_worker[pid] for pid in killed)
    (survivor,) = (rows for pid, rows in per_worker.items() if pid not in killed)
    survivor_steady = sum(1 for t, _ in survivor if t <= steady.ended_at)
    from_dead = steady.requests - survivor_steady
    # the dead worker's last report (one window before it died) is in the totals, not dropped ...
    assert 0 < from_dead <= len(dead)
    # ... and the record says how much of its data is missing, as a number
    assert any(f"{from_dead} of its requests" in r for r in steady.validity.reasons), steady.validity.reasons

    # the next phase ran on the survivor alone: also marked, because it is short of a generator
    assert stress.generator.workers == 1
    assert stress.validity.saturated
    assert any("1 of 2 load workers" in r for r in stress.validity.reasons), stress.validity.reasons
    assert stress.requests == sum(1 for t, _ in survivor if t > steady.ended_at)
