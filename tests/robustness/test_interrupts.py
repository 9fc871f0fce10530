"""Ctrl-C or SIGTERM during an audit: stop within seconds, leave no process, keep a partial report."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.robustness.faultpack import make_pack, run_audit, scorecard, start_audit

STOP_WITHIN_S = 15.0


def wait_for(predicate, timeout_s: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def processes_mentioning(*needles: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if any(n in cmdline for n in needles):
            found.append(proc)
    return found


def target_port(reports: Path) -> str:
    log = next(reports.glob("*/target.log")).read_text()
    return log.split("127.0.0.1:", 1)[1].split()[0]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_during_the_load_stops_everything_and_writes_a_partial_report(
    tmp_path: Path, sig: signal.Signals
) -> None:
    pack = make_pack(tmp_path / "pack", "ok", steady_s=30.0)
    reports = tmp_path / "reports"
    audit = start_audit(pack, reports, "--tiers", "3,6", log=tmp_path / "audit.log")
    try:
        wait_for(lambda: any(reports.glob("*/load/tier-3/load-plan.json")), 30, "the load to start")
        wait_for(lambda: processes_mentioning(str(reports)), 10, "the load engine process")
        port = target_port(reports)
        time.sleep(1.0)  # let the load run: the report must keep what was measured until now
        sent = time.monotonic()
        audit.send_signal(sig)
        code = audit.wait(timeout=STOP_WITHIN_S + 20)
        took = time.monotonic() - sent
    finally:
        if audit.poll() is None:
            audit.kill()
            audit.wait(timeout=10)
    output = (tmp_path / "audit.log").read_text()
    assert code == 5, output[-3000:]
    assert took < STOP_WITHIN_S, took
    assert "Traceback" not in output
    # no target, no load engine and no worker is left behind
    wait_for(lambda: not processes_mentioning(str(reports), f"--port {port} "), 5, "no leftover process")
    run_dir = next(p for p in reports.iterdir() if p.is_dir())
    card = scorecard(run_dir)
    assert card["partial"] is True
    assert card["verdict"] == "INCONCLUSIVE"
    assert any("interrupted" in note for note in card["notes"]), card["notes"]
    assert "PARTIAL" in (run_dir / "report.html").read_text().upper()
    assert "partial" in (run_dir / "scorecard.md").read_text().lower()
    assert not list(run_dir.rglob("*.tmp")), "a half-written file was left"


def test_a_signal_while_waiting_for_the_target_to_become_healthy_stops_at_once(tmp_path: Path) -> None:
    pack = make_pack(tmp_path / "pack", "never-healthy")
    toml = (pack / "scenario.toml").read_text().replace("ready_timeout_s = 10", "ready_timeout_s = 60")
    (pack / "scenario.toml").write_text(toml)
    reports = tmp_path / "reports"
    audit = start_audit(pack, reports, log=tmp_path / "audit.log")
    try:
        wait_for(lambda: any(reports.glob("*/target.log")) and "migration lock"
                 in next(reports.glob("*/target.log")).read_text(), 30, "the target to start")  # fmt: skip
        port = target_port(reports)
        sent = time.monotonic()
        audit.send_signal(signal.SIGTERM)
        code = audit.wait(timeout=STOP_WITHIN_S + 20)
        took = time.monotonic() - sent
    finally:
        if audit.poll() is None:
            audit.kill()
            audit.wait(timeout=10)
    output = (tmp_path / "audit.log").read_text()
    assert took < STOP_WITHIN_S, took
    assert code == 5, output[-3000:]
    wait_for(lambda: not processes_mentioning(f"--port {port} "), 5, "the target to be stopped")
    card = scorecard(next(p for p in reports.iterdir() if p.is_dir()))
    assert card["partial"] is True and card["verdict"] == "INCONCLUSIVE"




@pytest.mark.slow
def test_a_deadline_stops_the_audit_where_it_is_and_writes_a_partial_report(tmp_path: Path) -> None:
    # The steady window alone is 30 s; a 12 s deadline lands inside the first tier's load.
    pack = make_pack(tmp_path / "pack", "ok", steady_s=30.0)
    reports = tmp_path / "reports"
    started = time.monotonic()
    run = run_audit(pack, reports, "--tiers", "3,6", "--deadline", "12s", timeout_s=60)
    took = time.monotonic() - started
    assert run.code == 5, run.output[-3000:]
    assert took < 12 + STOP_WITHIN_S, took
    card = scorecard(run.run_dir())
    assert card["partial"] is True and card["verdict"] == "INCONCLUSIVE"
    assert any("reached its deadline (--deadline 12 s)" in note for note in card["notes"]), card["notes"]
    wait_for(lambda: not processes_mentioning(str(reports)), 5, "no leftover process")


@pytest.mark.parametrize("text", ["soon", "0", "-5m", "3x"])
def test_a_deadline_that_is_not_a_duration_is_a_usage_error(tmp_path: Path, text: str) -> None:
    run = run_audit(make_pack(tmp_path / "pack", "ok"), tmp_path / "reports", "--deadline", text, timeout_s=30)
    assert run.code == 2, run.output[-2000:]
    assert f"--deadline {text}: write a positive duration such as 90s, 40m or 1.5h" in run.stderr
    assert "Traceback" not in run.output
