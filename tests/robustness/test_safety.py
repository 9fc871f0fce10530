"""Where load may go, how much of it, and what must never reach a report: secrets and scripts."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import chromium
from tests.robustness.faultpack import FAULTSERVER, AuditRun, make_pack, run_audit, scorecard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A fault server we start ourselves (mode ok); its log lists every request it got."""
    port, log = free_port(), tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(FAULTSERVER), "--port", str(port), "--mode", "ok"],
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while "mode ok" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield port, log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def requests_seen(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("request ")]


# --- a target outside loopback --------------------------------------------------------------------


def test_a_target_outside_loopback_is_refused_before_any_request(tmp_path: Path, server: tuple[int, Path]) -> None:
    port, log = server
    pack = make_pack(tmp_path / "pack", "ok")
    # 0.0.0.0 is not a loopback address, but on Linux a connection to it reaches this machine:
    # had the harness sent anything, the server would have logged it.
    started = time.monotonic()
    run = run_audit(pack, tmp_path / "reports", "--target", f"http://0.0.0.0:{port}", timeout_s=30)
    assert time.monotonic() - started < 20
    assert run.code == 2, run.output[-3000:]
    assert "target host '0.0.0.0' is not on loopback" in run.stderr
    assert "target.allowed_hosts" in run.stderr
    assert requests_seen(log) == []
    assert not any((tmp_path / "reports").glob("*/")), "nothing is created for a refused target"


def test_a_host_listed_under_allowed_hosts_is_audited(tmp_path: Path, server: tuple[int, Path]) -> None:
    port, log = server
    pack = make_pack(tmp_path / "pack", "ok", extra_target='allowed_hosts = ["0.0.0.0"]')
    run = run_audit(pack, tmp_path / "reports", "--target", f"http://0.0.0.0:{port}", "--only", "gate",
                    timeout_s=30)  # fmt: skip
    assert run.code == 5, run.output[-3000:]  # nothing but the (empty) gate ran: INCONCLUSIVE
    assert "request GET /health" in requests_seen(log)


@pytest.mark.slow
def test_the_packs_max_rps_caps_the_offered_load(tmp_path: Path) -> None:
    # 6 customers x 2 req/s = 12 req/s offered, and the stress step would double it: capped at 5.
    pack = make_pack(tmp_path / "pack", "ok", extra_target="max_rps = 5")
    run = run_audit(pack, tmp_path / "reports", "--tiers", "6")
    card = scorecard(run.run_dir())
    tier = card["tiers"][0]
    assert tier["achieved_rps"] <= 5 * 1.1, tier
    assert tier["stress"] == [], "stress steps above max_rps are not run"
    # The tier was not measured at its own load: no verdict rests on it.
    assert tier["status"] == "invalid" and "max_rps (5 requests/s) held this tier" in tier["reason"], tier
    assert card["verdict"] == "INCONCLUSIVE"
    log = (run.run_dir() / "target.log").read_text().splitlines()
    load = [line for line in log if line == "request GET /items"]
    warmup_and_steady_s = 1 + 3
    assert len(load) <= 5 * warmup_and_steady_s * 1.1 + 2, len(load)


# --- secrets and hostile answers ------------------------------------------------------------------


SECRET_MARKS = ("SECRETKEY", "SECRETTOKEN", "Hunter2Secret", "S3cretPassw0rd")


@pytest.fixture(scope="module")
def hostile_audit(tmp_path_factory: pytest.TempPathFactory) -> AuditRun:
    """One audit of a target that answers 500 with <script> payloads and echoes credentials.

    It is reached through a URL with a password in it, so that one can leak too.
    """
    tmp_path = tmp_path_factory.mktemp("hostile")
    port, log = free_port(), tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(FAULTSERVER), "--port", str(port), "--mode", "hostile"],
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while "mode hostile" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        pack = make_pack(tmp_path / "pack", "hostile")
        return run_audit(pack, tmp_path / "reports", "--tiers", "3",
                         "--target", f"http://admin:S3cretPassw0rd@127.0.0.1:{port}")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_credentials_never_reach_any_output_file_or_the_console(hostile_audit: AuditRun) -> None:
    run = hostile_audit
    assert run.code == 1, run.output[-3000:]
    files = [p for p in run.reports.rglob("*") if p.is_file()]
    assert any(p.name == "junit.xml" for p in files) and any(p.suffix == ".log" for p in files)
    leaks = []
    for path in files:
        data = path.read_bytes()
        leaks += [(str(path), mark) for mark in SECRET_MARKS if mark.encode() in data]
    leaks += [("console", mark) for mark in SECRET_MARKS if mark in run.output]
    assert leaks == []
    # ... and the echoed credentials are still visible as redacted, not silently dropped
    card = (run.run_dir() / "scorecard.json").read_text()
    assert "[REDACTED]" in card


def test_a_target_answering_script_cannot_run_code_in_the_report(tmp_path: Path, hostile_audit: AuditRun) -> None:
    report = hostile_audit.run_dir() / "report.html"
    html = report.read_text()
    assert "<script>document.title" not in html
    assert "&lt;script&gt;document.title" in html  # shown, as text
    result = chromium(tmp_path, report, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "<title>NOT READY" in dom  # a script that ran would have renamed the page "PWNED"
    assert "PWNED" in dom  # the payload is there, as text
    assert "<script" not in dom.lower() and "<img" not in dom.lower()
