"""The target: loopback guard, start, health, stop (nothing left behind), resource samples."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from harness.errors import ConfigError, TargetError
from harness.target import ManagedTarget, StartSpec, check_target_allowed, is_loopback

PY = sys.executable


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "::1"])
def test_loopback_hosts_are_allowed(host: str) -> None:
    assert is_loopback(host)
    url = f"http://[{host}]:8000" if ":" in host else f"http://{host}:8000"
    check_target_allowed(url, [], "scenario.toml")


@pytest.mark.parametrize("url", ["http://10.0.0.5:80", "https://example.com", "http://192.168.1.2"])
def test_non_loopback_targets_are_refused_before_any_request(url: str) -> None:
    with pytest.raises(ConfigError, match="not on loopback.*allowed_hosts"):
        check_target_allowed(url, [], "scenario.toml")


def test_a_host_the_pack_allows_explicitly_is_accepted() -> None:
    check_target_allowed("https://staging.example.com", ["staging.example.com"], "scenario.toml")


def test_a_non_http_url_is_refused_with_an_example() -> None:
    with pytest.raises(ConfigError, match="http://127.0.0.1:8000"):
        check_target_allowed("ftp://127.0.0.1/x", [], "scenario.toml")


def spec(command: str, tmp_path: Path, timeout: float = 10.0, health: str = "/") -> StartSpec:
    return StartSpec(command=command, cwd=tmp_path, health_path=health, ready_timeout_s=timeout, env={})


def test_a_target_that_exits_at_once_reports_its_output_and_command(tmp_path: Path) -> None:
    command = f"{PY} -c \"import sys; print('boom: no database'); sys.exit(3)\" {{port}}"
    target = ManagedTarget(spec(command, tmp_path), log_path=tmp_path / "target.log")
    with pytest.raises(TargetError) as info:
        target.start()
    message = str(info.value)
    assert "exited before it became healthy" in message
    assert "boom: no database" in message
    assert "Command:" in message


def test_a_target_that_never_becomes_healthy_fails_within_its_timeout(tmp_path: Path) -> None:
    command = f"{PY} -c \"import time; time.sleep(60)\" {{port}}"
    target = ManagedTarget(spec(command, tmp_path, timeout=1.5), log_path=tmp_path / "t.log")
    started = time.monotonic()
    with pytest.raises(TargetError, match="did not become healthy within 1.5 s"):
        target.start()
    assert time.monotonic() - started < 8
    assert target._process is not None and not psutil.pid_exists(target._process.pid)


def test_a_started_target_is_stopped_with_its_children_and_sampled(tmp_path: Path) -> None:
    # A shell that starts a child web server: stopping must stop both.
    command = f"sh -c '{PY} -m http.server {{port}} --bind 127.0.0.1 & wait'"
    target = ManagedTarget(spec(command, tmp_path), log_path=tmp_path / "t.log", sample_interval_s=0.1)
    target.start()
    try:
        root = psutil.Process(target._process.pid)  # type: ignore[union-attr]
        pids = [root.pid, *[c.pid for c in root.children(recursive=True)]]
        assert len(pids) >= 2
        # The first samples may predate the child server; wait for one covering the whole tree.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(s.threads >= 2 for s in target.samples()):
            time.sleep(0.05)
        sample = max(target.samples(), key=lambda s: s.threads)
        assert sample.rss_mb > 1 and sample.open_fds > 0 and sample.threads >= 2
        assert target.alive()
    finally:
        target.stop()
    assert not target.alive()
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_the_cpu_of_a_process_started_for_the_target_counts_as_the_target_s(tmp_path: Path) -> None:
    # As the PostgreSQL server the harness starts for a target: its CPU is the service's, not
    # "other work" on the machine.
    burner = subprocess.Popen([PY, "-c", "import time\nend = time.monotonic() + 20\nwhile time.monotonic() < end: pass"])
    command = f"{PY} -m http.server {{port}} --bind 127.0.0.1"
    start = replace(spec(command, tmp_path), cpu_also_of=(burner.pid,))
    target = ManagedTarget(start, log_path=tmp_path / "t.log", sample_interval_s=0.1)
    try:
        target.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(s.cpu_pct > 50 for s in target.samples()):
            time.sleep(0.05)
        busiest = max(target.samples(), key=lambda s: s.cpu_pct)
        assert busiest.cpu_pct > 50  # the idle server alone uses next to none
    finally:
        target.stop()
        burner.kill()
        burner.wait(timeout=5)


def test_unknown_placeholder_in_the_start_command_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown placeholder 'prot'"):
        ManagedTarget(spec("{python} x --port {prot} {port}", tmp_path), log_path=tmp_path / "t.log")


def test_a_start_failure_shows_neither_the_credentials_of_its_command_nor_what_it_echoed(tmp_path: Path) -> None:
    script = tmp_path / "echo_and_die.py"
    script.write_text("import os, sys\nprint('key', sys.argv[2], 'env', os.environ['API_TOKEN'])\nsys.exit(1)\n")
    command = f"{PY} {script} --api-key opt-secret-123 {{port}}"
    start = StartSpec(command=command, cwd=tmp_path, health_path="/", ready_timeout_s=10, env={"API_TOKEN": "env-secret-456"})
    target = ManagedTarget(start, log_path=tmp_path / "target.log")
    assert "opt-secret-123" not in target.shown_command and "--api-key [REDACTED]" in target.shown_command
    with pytest.raises(TargetError) as info:
        target.start()
    message = str(info.value)
    assert "key [REDACTED] env [REDACTED]" in message  # the output is still there, its secrets not
    for secret in ("opt-secret-123", "env-secret-456"):
        assert secret not in message
        assert secret not in (tmp_path / "target.log").read_text()
