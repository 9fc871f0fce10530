"""The reports folder: a bad one fails before any load; two audits share one safely."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.files import check_writable
from tests.robustness.faultpack import (
    ROOT,
    audit_command,
    audit_env,
    make_pack,
    run_audit,
    scorecard,
)


@pytest.mark.parametrize(
    "where, message",
    [
        ("a-file", "a file with that name exists"),
        ("/proc/scaleready-reports", "cannot be created"),  # not writable, even for root
    ],
)
def test_an_unusable_reports_folder_fails_before_the_target_starts(tmp_path: Path, where: str, message: str) -> None:
    pack = make_pack(tmp_path / "pack", "ok")
    reports = tmp_path / where if not where.startswith("/") else Path(where)
    if where == "a-file":
        reports.write_text("not a folder")
    started = time.monotonic()
    run = run_audit(pack, reports, timeout_s=30)
    assert time.monotonic() - started < 15
    assert run.code == 2, run.output[-3000:]
    assert message in run.stderr and "--reports" in run.stderr
    assert "starting the target" not in run.output
    assert "Traceback" not in run.output


def test_a_nearly_full_disk_is_refused_up_front(tmp_path: Path) -> None:
    # A disk cannot be filled safely in a test; ask for more room than any disk has instead.
    with pytest.raises(ConfigError, match=r"MB free on its disk.*choose a folder on another disk"):
        check_writable(tmp_path, min_free_mb=10**12)


@pytest.mark.slow
def test_two_audits_at_once_on_one_reports_folder_keep_separate_runs_and_a_sound_history(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    packs = [make_pack(tmp_path / f"pack{i}", "ok") for i in range(2)]
    logs = [tmp_path / f"audit{i}.log" for i in range(2)]
    procs = []
    for pack, log in zip(packs, logs, strict=True):
        with open(log, "wb") as out:
            procs.append(subprocess.Popen(audit_command(pack, reports, "--tiers", "3"), stdout=out,
                                          stderr=subprocess.STDOUT, cwd=ROOT, env=audit_env()))  # fmt: skip
    try:
        codes = [p.wait(timeout=90) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    outputs = [log.read_text() for log in logs]
    run_dirs = sorted(p for p in reports.iterdir() if p.is_dir())
    assert len(run_dirs) == 2, outputs
    exit_for = {"READY": 0, "AT RISK": 0, "NOT READY": 1, "INCONCLUSIVE": 5}
    verdicts = {scorecard(d)["verdict"] for d in run_dirs}
    assert sorted(codes) == sorted(exit_for[str(scorecard(d)["verdict"])] for d in run_dirs), (codes, verdicts)
    ids = {scorecard(d)["run_id"] for d in run_dirs}
    assert ids == {d.name for d in run_dirs}
    for d in run_dirs:
        assert (d / "report.html").is_file() and (d / "junit.xml").is_file()
        assert not list(d.rglob("*.tmp")), "a half-written report file was left"
    lines = (reports / "history.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert {json.loads(line)["run_id"] for line in lines} == ids
    assert (reports / "LATEST").read_text().strip() in ids
    assert not list(reports.glob(".*.tmp"))
