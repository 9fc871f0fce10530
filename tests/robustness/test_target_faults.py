"""A target that crashes, hangs, answers garbage or never starts: the audit keeps its evidence.

Each test runs a real audit (a subprocess) against tests/faultserver.py in one fault mode.
"""

from __future__ import annotations

import json
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.robustness.faultpack import AuditRun, make_pack, run_audit, scorecard

REPORT_FILES = ("scorecard.json", "scorecard.md", "report.html", "junit.xml")


def endpoint_reasons(card: dict[str, Any]) -> dict[str, int]:
    reasons: dict[str, int] = {}
    for tier in card["tiers"]:
        for endpoint in tier["endpoints"]:
            for reason, n in endpoint["errors_by_reason"].items():
                reasons[reason] = reasons.get(reason, 0) + n
    return reasons


def test_a_target_that_exits_mid_tier_gives_not_ready_with_a_target_unavailable_finding(tmp_path: Path) -> None:
    # 6 warm-up requests, then the crash comes a second or so into the steady window.
    pack = make_pack(tmp_path / "pack", "crash", after=12)
    run = run_audit(pack, tmp_path / "reports")

    assert run.code == 1, run.output[-3000:]
    run_dir = run.run_dir()
    for name in REPORT_FILES:
        assert (run_dir / name).is_file(), name
    card = scorecard(run_dir)
    assert card["verdict"] == "NOT READY"
    assert card["partial"] is True
    # the tier was stopped, and what it measured before the crash was kept
    assert [t["customers"] for t in card["tiers"]] == [3]
    tier = card["tiers"][0]
    assert tier["requests"] > 0 and tier["p50_ms"] is not None
    assert "exited with code 3 at" in tier["reason"]
    down = [f for f in card["findings"] if f["category"] == "target-unavailable"]
    assert down, card["findings"]
    finding = down[0]
    assert finding["severity"] == "critical"
    assert "during the steady" in finding["detail"]
    assert "first refused connection at 20" in finding["detail"]  # names when: a UTC time
    assert finding["evidence"]["first_connection_error_at"].endswith("UTC")
    assert "crashing on /items" in (run_dir / "target.log").read_text()
    assert "NOT READY" in run.stdout


def failed_within_bounded_time(tmp_path: Path, fault: str) -> AuditRun:
    """Audit one small tier of a target with ``fault`` (1 s request timeout); it must end NOT
    READY (exit 1) within 40 s: warm-up 1 s + steady 3 s + stress 1 s, each drained for at most
    the timeout + 1 s."""
    pack = make_pack(tmp_path / "pack", fault, request_timeout_s=1.0)
    started = time.monotonic()
    run = run_audit(pack, tmp_path / "reports", "--tiers", "3")
    elapsed = time.monotonic() - started
    assert elapsed < 40, elapsed
    assert run.code == 1, run.output[-3000:]
    return run


@pytest.mark.slow
def test_a_hanging_target_is_judged_on_timeouts_within_a_bounded_time(tmp_path: Path) -> None:
    card = scorecard(failed_within_bounded_time(tmp_path, "hang").run_dir())
    assert card["verdict"] == "NOT READY"
    tier = card["tiers"][0]
    assert tier["status"] == "failed"
    reasons = endpoint_reasons(card)
    assert set(reasons) == {"timeout"}, reasons
    # no request waited much past its timeout: latency is bounded by request_timeout_s
    assert tier["max_ms"] < 1000 * 1.0 + 500, tier["max_ms"]
    assert any(f["category"] == "slo-errors" for f in card["findings"])


def test_garbage_answers_are_errors_with_their_reason_and_memory_stays_bounded(tmp_path: Path) -> None:
    # /items cycles: invalid JSON, text/html, a 50 MB body, a body dripped one byte per 0.2 s
    run = failed_within_bounded_time(tmp_path, "garbage")
    card = scorecard(run.run_dir())
    reasons = endpoint_reasons(card)
    assert {"invalid-json", "wrong-content-type", "oversized", "timeout"} <= set(reasons), reasons
    tier = card["tiers"][0]
    assert tier["errors"] == tier["requests"] > 0
    # A 50 MB body was never read whole: the generator stayed far below it, and on time.
    assert tier["generator"]["rss_max_mb"] < 200, tier["generator"]
    assert tier["generator"]["saturated"] is False, tier["generator"]
    assert tier["max_ms"] < 1000 * 1.0 + 500, tier["max_ms"]
    result = json.loads(next((run.run_dir() / "load").glob("tier-3/load-result.json")).read_text())
    assert result["error"] is None


def test_a_target_that_exits_at_start_fails_with_exit_3_its_output_and_command(tmp_path: Path) -> None:
    pack = make_pack(tmp_path / "pack", "exit-at-start")
    run = run_audit(pack, tmp_path / "reports", timeout_s=30)

    assert run.code == 3, run.output[-3000:]
    assert "exited before it became healthy" in run.stderr
    assert "fatal: cannot open database 'orders.db'" in run.stderr  # the tail of its output
    assert "faultserver.py --port" in run.stderr and "--mode exit-at-start" in run.stderr  # the command
    assert "Traceback" not in run.output


def test_a_target_that_never_becomes_healthy_fails_with_exit_3_after_its_ready_timeout(tmp_path: Path) -> None:
    pack = make_pack(tmp_path / "pack", "never-healthy")
    toml = (pack / "scenario.toml").read_text().replace("ready_timeout_s = 10", "ready_timeout_s = 2")
    (pack / "scenario.toml").write_text(toml)
    started = time.monotonic()
    run = run_audit(pack, tmp_path / "reports", timeout_s=30)

    assert time.monotonic() - started < 20
    assert run.code == 3, run.output[-3000:]
    assert "did not become healthy within 2 s" in run.stderr
    assert "HTTP 503" in run.stderr
    assert "waiting for the database migration lock" in run.stderr
    assert "--mode never-healthy" in run.stderr
    assert "Traceback" not in run.output


def test_an_unreachable_target_leaves_no_run_folder_and_no_credentials_folder(tmp_path: Path) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pack = make_pack(tmp_path / "pack", "ok")
    toml = (pack / "scenario.toml").read_text().replace("ready_timeout_s = 10", "ready_timeout_s = 1")
    (pack / "scenario.toml").write_text(toml)
    state_dirs = set(Path(tempfile.gettempdir()).glob("scaleready-state-*"))
    run = run_audit(pack, tmp_path / "reports", "--target", f"http://127.0.0.1:{port}", timeout_s=30)

    assert run.code == 3, run.output[-3000:]
    assert "did not become healthy within 1 s" in run.stderr
    assert not [p for p in (tmp_path / "reports").iterdir() if p.is_dir()], "no empty run folder"
    assert set(Path(tempfile.gettempdir()).glob("scaleready-state-*")) <= state_dirs
