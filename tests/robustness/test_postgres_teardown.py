"""A profile with ``database = "postgresql"``: the server the harness starts for the target is gone
after the audit, whether it succeeded, the target failed to start, or Ctrl-C stopped it.

Every process the audit started (the target, its worker processes, the PostgreSQL server and its
backends) is recorded while the audit runs and must not be alive afterwards; no throwaway data
directory may be left.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from harness.database import find_postgres_bin
from tests.robustness.faultpack import (
    ROOT,
    make_pack,
    run_audit,
    scenario_toml,
    scorecard,
    start_audit,
)

pytestmark = pytest.mark.skipif(find_postgres_bin() is None, reason="PostgreSQL is not installed")

POSTGRES_PROFILE = 'database = "postgresql"\n        target_env = { WEB_CONCURRENCY = "2" }'
BOOKING_TINY = """
[profiles.tiny-postgres]
parent = "postgres"
warmup_s = 1
steady_s = 20
stress_factors = [2.0]
stress_step_s = 1
noise_floor_s = 0
probe_iterations = 0
margin_repeats = 0
target_env = { WEB_CONCURRENCY = "2" }
"""


def _data_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("scaleready-pg-*"))


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _alive(procs: list[psutil.Process]) -> list[str]:
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(" ".join(proc.cmdline()))
        except psutil.NoSuchProcess:
            pass
    return left


def _wait_for(predicate, timeout_s: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _postgres_among(procs: list[psutil.Process]) -> bool:
    names = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            names.append(proc.name())
    return "postgres" in names


@pytest.mark.slow
def test_a_finished_audit_leaves_no_server_and_names_it_in_the_report(tmp_path: Path) -> None:
    before = _data_dirs()
    run = run_audit(make_pack(tmp_path / "pack", extra=POSTGRES_PROFILE), tmp_path / "reports", "--tiers", "3")
    card = scorecard(run.run_dir())
    # finished (READY, NOT READY, or INCONCLUSIVE on a busy machine), not cut short
    assert run.code in (0, 1, 5) and card["partial"] is False, run.output[-3000:]
    assert card["target"]["database"].startswith("PostgreSQL 1"), card["target"]  # type: ignore[index]
    assert "database system is shut down" in (run.run_dir() / "postgres.log").read_text()
    assert _data_dirs() - before == set()  # (another audit's server may come and go meanwhile)


def test_a_target_that_fails_to_start_still_has_its_server_torn_down(tmp_path: Path) -> None:
    before = _data_dirs()
    run = run_audit(make_pack(tmp_path / "pack", toml=scenario_toml("exit-at-start", extra=POSTGRES_PROFILE)),
                    tmp_path / "reports", "--tiers", "3")  # fmt: skip
    assert run.code not in (0, 1), run.output[-3000:]
    assert "Traceback" not in run.output
    log = next((tmp_path / "reports").glob("*/postgres.log")).read_text()
    assert "database system is shut down" in log
    assert _data_dirs() - before == set()  # (another audit's server may come and go meanwhile)


def test_ctrl_c_during_the_load_stops_the_demo_s_workers_and_the_server(tmp_path: Path) -> None:
    # The booking demo itself, at the production shape: 2 uvicorn workers on PostgreSQL.
    pack = tmp_path / "booking"
    shutil.copytree(ROOT / "scenarios" / "booking", pack, ignore=shutil.ignore_patterns("__pycache__"))
    (pack / "scenario.toml").write_text((pack / "scenario.toml").read_text() + BOOKING_TINY)
    reports = tmp_path / "reports"
    before = _data_dirs()
    audit = start_audit(pack, reports, "--profile", "tiny-postgres", "--only", "tiers", "--tiers", "5",
                        log=tmp_path / "audit.log")  # fmt: skip
    try:
        _wait_for(lambda: any(reports.glob("*/load/tier-5/load-plan.json")), 90, "the load to start")
        started = _descendants(audit.pid)
        assert _postgres_among(started), [p.name() for p in started]
        workers = [p for p in started if "multiprocessing" in " ".join(p.cmdline())]
        assert len(workers) >= 2, "the demo runs as several worker processes"
        audit.send_signal(signal.SIGINT)
        code = audit.wait(timeout=40)
    finally:
        if audit.poll() is None:
            audit.kill()
            audit.wait(timeout=10)
    output = (tmp_path / "audit.log").read_text()
    assert code == 5, output[-3000:]
    assert "Traceback" not in output
    _wait_for(lambda: not _alive(started), 10, f"no leftover process: {_alive(started)}")
    assert _data_dirs() - before == set()  # (another audit's server may come and go meanwhile)
