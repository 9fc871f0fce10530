"""Distributed load across hosts: a master in one network namespace, a worker in another.

Each "host" is a network namespace with its own address on a veth pair (tests/netns.py); the
worker runs in a UTS namespace of its own too, so it reports another host name. The worker is
started exactly as a team starts one on another machine, ``scaleready worker --master HOST:PORT
PACK``, and receives the plan and the customers over Locust's messages. The target (the null
target) listens on the master host's veth address, which the worker reaches over the pair, so
every request of the remote worker crosses the link.

What must hold: the merged count is the sum of the workers' own counts and what the target
served, bucket for bucket in the histograms; a pack copy that differs is refused at join with
both versions named; a worker host that dies mid-tier makes the tier invalid and what is
missing is said as a number. Each run is a few seconds at a hundred or two requests a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from netns import REPO, Hosts, two_hosts
from sent_log import LOGGING_LOCUSTFILE

from harness.load import LoadPlan, LoadProgress, PhasePlan, recording, run_load
from harness.load.joining import WORKERS_FILE
from harness.load.tally import PhaseTally

FETCH = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())"
TARGET_PORT = 18080
WORKER_HOST = "worker-b"


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    with two_hosts() as h:
        yield h


def _pack(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "locustfile.py").write_text(textwrap.dedent(LOGGING_LOCUSTFILE), encoding="utf-8")
    return folder


class _Target:
    """The null target on the master host's veth address; its own count of what it served."""

    def __init__(self, hosts: Hosts) -> None:
        self.url = f"http://{hosts.master_ip}:{TARGET_PORT}"
        cmd = hosts.command(hosts.master_ns, [
            sys.executable, "-m", "harness.load.noise_floor",
            "--host", hosts.master_ip, "--port", str(TARGET_PORT), "--service-ms", "0.2", "--expose",
        ])  # fmt: skip
        self.hosts = hosts
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while self.served() is None:
            assert self.proc.poll() is None and time.monotonic() < deadline, "the null target did not start"
            time.sleep(0.1)

    def served(self) -> int | None:
        out = subprocess.run(
            self.hosts.command(self.hosts.master_ns, [sys.executable, "-c", FETCH, self.url + "/__stats"]),
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        return int(json.loads(out.stdout)["count"]) if out.returncode == 0 and out.stdout else None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _worker(hosts: Hosts, master: str, pack: Path, log: Path) -> subprocess.Popen[bytes]:
    """`scaleready worker` on the other host, as a team would start it there."""
    cmd = hosts.command(hosts.worker_ns, [
        str(REPO / ".venv" / "bin" / "scaleready"), "worker", "--master", master, str(pack),
        "--once", "--idle-timeout", "40s",
    ], hostname=WORKER_HOST)  # fmt: skip
    return subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _plan(hosts: Hosts, pack: Path, out: Path, sent: Path, phases: tuple[PhasePlan, ...], port: int) -> LoadPlan:
    return LoadPlan(
        locustfile=str(pack / "locustfile.py"), host=f"http://{hosts.master_ip}:{TARGET_PORT}",
        output_dir=str(out), phases=phases, window_s=1.0, env={"SENT_DIR": str(sent)},
        workers=1, remote_workers=1, master_bind=hosts.master_ip, master_port=port,
        worker_connect_timeout_s=30.0, stress_stop_throughput_ratio=None, pack_dir=str(pack),
    )  # fmt: skip


def _per_worker(out: Path, label: str) -> list[dict]:  # type: ignore[type-arg]
    data = json.loads((out / WORKERS_FILE).read_text(encoding="utf-8"))
    (phase,) = (p for p in data["phases"] if p["label"] == label)
    return list(phase["workers"])


def test_a_worker_on_another_host_shares_the_load_and_the_merge_is_exact(hosts: Hosts, tmp_path: Path) -> None:
    pack, sent, out = _pack(tmp_path / "pack"), tmp_path / "sent", tmp_path / "out"
    sent.mkdir()
    master = f"{hosts.master_ip}:15557"
    target = _Target(hosts)
    try:
        worker = _worker(hosts, master, pack, tmp_path / "worker.log")
        outcome = run_load(_plan(hosts, pack, out, sent, (PhasePlan("steady", "steady", 160, 4.0),), 15557),
                           python=hosts.python_in(hosts.master_ns, tmp_path))  # fmt: skip
        assert worker.wait(timeout=30) == 0, (tmp_path / "worker.log").read_text()
        served = target.served()
    finally:
        target.stop()
    assert outcome.error is None, outcome.error
    (steady,) = outcome.phases
    assert (steady.generator.workers, steady.generator.workers_lost) == (2, 0)
    assert not steady.validity.saturated, steady.validity.reasons

    parts = _per_worker(out, "steady")
    assert sorted(p["host"] == WORKER_HOST for p in parts) == [False, True]  # one here, one there
    tallies = [PhaseTally.from_dict(p["tally"]) for p in parts]
    counts = [sum(e.requests for e in t.endpoints.values()) for t in tallies]
    assert all(c > 100 for c in counts), counts  # both shared the 640 iterations
    # the merge is the sum of its parts, and is what the target served: nothing lost or invented
    assert steady.requests == sum(counts) == served
    (endpoint,) = steady.endpoints
    merged = recording.decode(endpoint.service_hdr)
    summed = recording.merge(recording.decode(t.endpoints["GET /"].svc) for t in tallies)
    assert list(merged.counts) == list(summed.counts)  # bucket for bucket
    # and each worker's histogram is the one of every sample its process logged
    logs = {f.name.split("-")[0] == "worker": f for f in sent.glob("*.log")}
    remote_values = [float(line.split()[1]) for line in logs[True].read_text().splitlines()]
    (remote,) = (t for t, p in zip(tallies, parts, strict=True) if p["host"] == WORKER_HOST)
    truth = recording.new_histogram()
    for v in remote_values:
        recording.record_ms(truth, v)
    assert list(recording.decode(remote.endpoints["GET /"].svc).counts) == list(truth.counts)


@pytest.mark.slow
def test_a_worker_whose_pack_differs_is_refused_at_join(hosts: Hosts, tmp_path: Path) -> None:
    pack, sent, out = _pack(tmp_path / "pack"), tmp_path / "sent", tmp_path / "out"
    sent.mkdir()
    other = _pack(tmp_path / "other")
    (other / "locustfile.py").write_text((pack / "locustfile.py").read_text() + "\n# edited on one host\n")
    target = _Target(hosts)
    try:
        started = time.monotonic()
        worker = _worker(hosts, f"{hosts.master_ip}:15558", other, tmp_path / "worker.log")
        outcome = run_load(_plan(hosts, pack, out, sent, (PhasePlan("steady", "steady", 50, 2.0),), 15558),
                           python=hosts.python_in(hosts.master_ns, tmp_path))  # fmt: skip
        code = worker.wait(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        target.stop()
    said = (tmp_path / "worker.log").read_text()
    assert code == 2, said
    assert outcome.phases == () and outcome.error is not None
    for text in (outcome.error, said):
        assert "was refused: its pack folder has version" in text and "copy the same pack folder" in text
    assert elapsed < 25  # refused at join, not after the master's join timeout
    assert target_untouched(sent)


def test_a_worker_that_never_joins_fails_the_load_in_bounded_time_saying_what_to_run(
    hosts: Hosts, tmp_path: Path
) -> None:
    pack, sent, out = _pack(tmp_path / "pack"), tmp_path / "sent", tmp_path / "out"
    sent.mkdir()
    plan = replace(_plan(hosts, pack, out, sent, (PhasePlan("steady", "steady", 50, 2.0),), 15562),
                   workers=0, worker_connect_timeout_s=3.0)  # fmt: skip
    started = time.monotonic()
    outcome = run_load(plan, python=hosts.python_in(hosts.master_ns, tmp_path))
    assert time.monotonic() - started < 30
    assert outcome.phases == () and outcome.error is not None
    assert "0 of 1 load workers joined within 3 s" in outcome.error, outcome.error
    assert f"scaleready worker --master {hosts.master_ip}:15562 PACK" in outcome.error, outcome.error


def target_untouched(sent: Path) -> bool:
    return not any(f.read_text() for f in sent.glob("*.log"))


@pytest.mark.slow
def test_a_worker_host_that_dies_mid_tier_makes_the_tier_invalid(hosts: Hosts, tmp_path: Path) -> None:
    pack, sent, out = _pack(tmp_path / "pack"), tmp_path / "sent", tmp_path / "out"
    sent.mkdir()
    killed_at: list[float] = []

    def kill_the_worker_host(progress: LoadProgress) -> None:
        if not killed_at and progress.phase == "steady" and progress.elapsed >= 2.0:
            hosts.kill_host(hosts.worker_ns)
            killed_at.append(time.time())

    target = _Target(hosts)
    try:
        _worker(hosts, f"{hosts.master_ip}:15559", pack, tmp_path / "worker.log")
        phases = (PhasePlan("steady", "steady", 120, 8.0), PhasePlan("stress", "stress x2", 120, 2.0))
        outcome = run_load(_plan(hosts, pack, out, sent, phases, 15559), on_progress=kill_the_worker_host,
                           python=hosts.python_in(hosts.master_ns, tmp_path))  # fmt: skip
        served = target.served()
    finally:
        target.stop()
    assert killed_at, "the test never reached the moment to kill the worker host"
    assert outcome.error is None, outcome.error
    steady, stress = outcome.phases
    assert (steady.generator.workers, steady.generator.workers_lost) == (2, 1)
    assert steady.validity.saturated  # the tier built on this phase is invalid (harness.tiers)
    lost = [r for r in steady.validity.reasons if f"on {WORKER_HOST} was lost" in r]
    assert lost and "requests, and all it would have sent afterwards, are missing" in lost[0], steady.validity.reasons
    # nothing is counted that the target did not serve; the survivor's share is all there
    assert served is not None and steady.requests + stress.requests <= served
    parts = _per_worker(out, "steady")
    (survivor,) = (PhaseTally.from_dict(p["tally"]) for p in parts if not p["lost"])
    (dead,) = (p for p in parts if p["lost"])
    kept = sum(e.requests for e in PhaseTally.from_dict(dead["tally"]).endpoints.values()) if dead["tally"] else 0
    assert steady.requests == sum(e.requests for e in survivor.endpoints.values()) + kept
    # the next phase ran on the survivor alone, and says it was short of a generator
    assert stress.generator.workers == 1 and stress.validity.saturated
    assert any("1 of 2 load workers" in r for r in stress.validity.reasons), stress.validity.reasons


BOOKING_PORT = 18090


def _booking_on_the_master_host(hosts: Hosts, pack: Path, log: Path) -> subprocess.Popen[bytes]:
    """The demo as a team's deployment runs it: on an address of its host, not loopback."""
    cmd = hosts.command(hosts.master_ns, [
        sys.executable, "-m", "booking_service", "--host", hosts.master_ip, "--port", str(BOOKING_PORT),
        "--db", str(pack.parent / "booking.sqlite3"),
    ])  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=pack, stdin=subprocess.DEVNULL, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://{hosts.master_ip}:{BOOKING_PORT}/health"
    deadline = time.monotonic() + 30
    while subprocess.run(hosts.command(hosts.master_ns, [sys.executable, "-c", FETCH, url]),
                         capture_output=True, timeout=10, check=False).returncode != 0:  # fmt: skip
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    return proc


@pytest.mark.slow
def test_an_audit_shares_its_tiers_with_a_worker_on_another_host(hosts: Hosts, tmp_path: Path) -> None:
    from packs import small_booking_pack

    pack = small_booking_pack(tmp_path)
    scenario = pack / "scenario.toml"
    scenario.write_text(scenario.read_text().replace("[target]\n", f'[target]\nallowed_hosts = ["{hosts.master_ip}"]\n', 1))
    reports, bind = tmp_path / "reports", f"{hosts.master_ip}:15561"
    service = _booking_on_the_master_host(hosts, pack, tmp_path / "service.log")
    worker = subprocess.Popen(hosts.command(hosts.worker_ns, [
        str(REPO / ".venv" / "bin" / "scaleready"), "worker", "--master", bind, str(pack), "--idle-timeout", "120s",
    ], hostname=WORKER_HOST), cwd=REPO, stdin=subprocess.DEVNULL, stdout=(tmp_path / "worker.log").open("wb"),
        stderr=subprocess.STDOUT)  # fmt: skip
    try:
        audit = subprocess.run(hosts.command(hosts.master_ns, [
            sys.executable, "-m", "harness.cli", "audit", str(pack), "--profile", "tiny", "--tiers", "5,20",
            "--seed", "7", "--reports", str(reports), "--target", f"http://{hosts.master_ip}:{BOOKING_PORT}",
            "--workers", "1", "--bind", bind, "--expect-workers", "1", "--join-timeout", "60s",
        ]), cwd=REPO, capture_output=True, text=True, timeout=400, check=False)  # fmt: skip
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        service.terminate()
        service.wait(timeout=20)
    output = audit.stdout + audit.stderr
    (run_dir,) = (p for p in reports.iterdir() if (p / "scorecard.json").exists())
    card = json.loads((run_dir / "scorecard.json").read_text())
    assert "Traceback" not in output, output[-3000:]
    assert card["verdict"] in ("READY", "AT RISK", "NOT READY"), (card["verdict"], card["notes"])
    said = (tmp_path / "worker.log").read_text()
    assert said.count("session") >= 2, said  # one session per tier's master
    # the remote worker's writes reached the master's ledger, and the checks read them
    assert [t["integrity"]["status"] for t in card["tiers"]] == ["passed", "passed"], card["tiers"]
    for tier in (5, 20):
        phases = json.loads((run_dir / "load" / f"tier-{tier}" / WORKERS_FILE).read_text())["phases"]
        steady = next(p for p in phases if p["label"] == "steady")
        hosts_seen = sorted(w["host"] == WORKER_HOST for w in steady["workers"])
        assert hosts_seen == [False, True] and not any(w["lost"] for w in steady["workers"]), steady
        counts = [sum(e["requests"] for e in w["tally"]["endpoints"].values()) for w in steady["workers"]]
        assert all(c > 0 for c in counts), counts
        merged = json.loads((run_dir / "load" / f"tier-{tier}" / "load-result.json").read_text())["phases"]
        (whole,) = (p for p in merged if p["label"] == "steady")
        assert sum(e["requests"] for e in whole["endpoints"]) == sum(counts)
