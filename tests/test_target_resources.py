"""The resources of a target the harness did not start: Prometheus text, a PID, a cgroup."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config import TargetSection
from harness.errors import ConfigError
from harness.records import ResourceSample
from harness.target_resources import (
    Reading,
    ResourceSampler,
    cgroup_reader,
    external_sampler,
    parse_prometheus,
    pid_reader,
    prometheus_reader,
)

# What prometheus_client's process collector exports (abridged), two workers' series summed.
METRICS = """\
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes{worker="1"} 5.24288e+07
process_resident_memory_bytes{worker="2"} 5.24288e+07
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total{worker="1"} 12.5
process_cpu_seconds_total{worker="2"} 2.5
# HELP process_open_fds Number of open file descriptors.
# TYPE process_open_fds gauge
process_open_fds{worker="1"} 20.0
process_open_fds{worker="2"} 22.0
# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total 1027.0
"""


def test_process_metrics_are_read_from_prometheus_text() -> None:
    assert parse_prometheus(METRICS) == Reading(rss_mb=100.0, cpu_seconds=15.0, open_fds=42, threads=0)


def test_an_exposition_without_resident_memory_gives_no_reading() -> None:
    assert parse_prometheus("# TYPE http_requests_total counter\nhttp_requests_total 3\n") is None


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cpu_is_the_counter_s_rate_between_reads_and_its_origin_is_not_a_sample() -> None:
    readings = iter([Reading(50, 10.0, 5, 2), Reading(51, 10.5, 5, 2), Reading(52, 12.0, 6, 2)])
    clock = _Clock()
    sampler = ResourceSampler(lambda: next(readings), "test", clock=clock)
    assert sampler.sample_once() is None  # origin of the CPU counter
    clock.now += 1.0
    first = sampler.sample_once()
    clock.now += 2.0
    second = sampler.sample_once()
    assert first is not None and second is not None
    assert (first.cpu_pct, second.cpu_pct) == (50.0, 75.0)
    assert [s.rss_mb for s in sampler.samples()] == [51, 52]
    assert sampler.samples(since=clock.now) == (second,)


def test_a_missed_read_is_a_gap_not_a_sample() -> None:
    sampler = ResourceSampler(lambda: None, "test")
    assert sampler.sample_once() is None
    assert sampler.samples() == () and sampler.readings == 0


@pytest.fixture
def metrics_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            body = METRICS.encode() if self.path == "/metrics" else b"not here"
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_a_prometheus_endpoint_is_read_over_http_and_a_missing_one_is_a_gap(metrics_server: str) -> None:
    assert prometheus_reader(metrics_server + "/metrics")() == Reading(100.0, 15.0, 42, 0)
    assert prometheus_reader(metrics_server + "/nowhere")() is None


def test_the_pack_s_stats_path_is_read_on_the_target(metrics_server: str) -> None:
    sampler = external_sampler(TargetSection(stats_path="/metrics"), metrics_server)
    assert sampler is not None and sampler.source == f"Prometheus metrics at {metrics_server}/metrics"
    assert external_sampler(TargetSection(), metrics_server) is None


def test_a_stats_url_off_loopback_is_refused_unless_allowed() -> None:
    with pytest.raises(ConfigError, match="allowed_hosts"):
        external_sampler(TargetSection(stats_path="http://10.1.2.3:9100/metrics"), "http://127.0.0.1:8000")


def test_a_local_pid_is_read_with_its_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        sampler = ResourceSampler(pid_reader(os.getpid()), "me")
        sample = sampler.sample_once()
        assert isinstance(sample, ResourceSample)
        assert sample.rss_mb > 10 and sample.open_fds > 0 and sample.threads >= 2  # this process and the child
    finally:
        child.communicate(b"", timeout=10)


def test_an_unknown_pid_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="stats_pid: no process"):
        pid_reader(2**22 + 12345)


def test_a_cgroup_v2_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / "memory.current").write_text(f"{200 * 2**20}\n")
    (tmp_path / "cpu.stat").write_text("usage_usec 3000000\nuser_usec 2000000\n")
    (tmp_path / "cgroup.procs").write_text(f"{os.getpid()}\n")
    (tmp_path / "pids.current").write_text("7\n")
    reading = cgroup_reader(tmp_path)()
    assert reading is not None
    assert (reading.rss_mb, reading.cpu_seconds, reading.threads) == (200.0, 3.0, 7)
    assert reading.open_fds > 0


def test_a_folder_that_is_no_cgroup_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stats_cgroup"):
        cgroup_reader(tmp_path)


@pytest.mark.slow
def test_an_audit_of_a_running_demo_reads_its_resources_from_its_metrics(tmp_path: Path) -> None:
    from packs import run_audit_cli, small_booking_pack

    from harness.target import free_port, wait_healthy

    pack = small_booking_pack(tmp_path)
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "booking_service", "--port", str(port), "--db", str(tmp_path / "demo.sqlite3")],
        cwd=pack, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, "/health", 30, alive=lambda: demo.poll() is None)
        run = run_audit_cli(pack, tmp_path / "reports", "--target", url, "--profile", "tiny", "--tiers", "5", "--only", "tiers")
    finally:
        demo.terminate()
        demo.wait(timeout=10)
    card = run.scorecard
    assert card["target"]["started_by_harness"] is False
    assert card["target"]["resources_source"] == f"Prometheus metrics at {url}/metrics", run.output
    samples = card["tiers"][0]["resources"]
    assert len(samples) >= 5, samples
    assert all(s["rss_mb"] > 10 and s["open_fds"] > 0 for s in samples)
    assert any(s["cpu_pct"] > 0 for s in samples)
    assert "resources read from Prometheus metrics" in (run.run_dir / "scorecard.md").read_text()
