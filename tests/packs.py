"""Scaled-down copies of the bundled booking pack, for end-to-end audits that fit in `make test`.

The copy is the real pack (real service, real suites, real Locust personas); only its goal, its
per-customer rate and a `tiny` profile differ, so an audit of tiers 5 and 20 takes well under a
minute and can still come out READY honestly: capacity is judged against a goal of 20 customers,
and each of those customers is busy enough (4 actions/s) that a 5-second steady window holds
the hundreds of requests a p95 needs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BOOKING_PACK = REPO / "scenarios" / "booking"

TINY_PROFILE = """
[profiles.tiny]
parent = "quick"
description = "end-to-end tests: seconds per tier"
warmup_s = 1.0
steady_s = 5.0
stress_factors = [2.0, 4.0]
stress_step_s = 2.0
noise_floor_s = 1.0
probe_iterations = 10
probe_rate = 10.0
hypothesis_examples = 3
integrity_sample = 30
stage_timeout_s = 120.0
"""


def small_booking_pack(
    root: Path, *, goal: int = 20, rate: float = 4.0, extra_files: dict[str, str] | None = None
) -> Path:
    """Copy the booking pack to ``root/booking`` with goal ``goal``, ``rate`` actions/s per
    customer and a ``tiny`` profile."""
    pack = root / "booking"
    shutil.copytree(BOOKING_PACK, pack, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
    scenario = pack / "scenario.toml"
    text = scenario.read_text(encoding="utf-8")
    for line in ("goal = 5000", "peak_rps_per_customer = 0.045"):
        assert line in text, f"the booking pack no longer says {line!r}; update tests/packs.py"
    text = text.replace("goal = 5000", f"goal = {goal}")
    text = text.replace("peak_rps_per_customer = 0.045", f"peak_rps_per_customer = {rate}")
    scenario.write_text(text + TINY_PROFILE, encoding="utf-8")
    for rel, content in (extra_files or {}).items():
        (pack / rel).write_text(content, encoding="utf-8")
    return pack


@dataclass(frozen=True)
class AuditRun:
    exit_code: int
    output: str
    run_dir: Path | None

    @property
    def scorecard(self) -> dict[str, Any]:
        assert self.run_dir is not None, f"no run folder was written:\n{self.output}"
        return json.loads((self.run_dir / "scorecard.json").read_text(encoding="utf-8"))

    def categories(self) -> set[str]:
        return {f["category"] for f in self.scorecard["findings"]}


def run_audit_cli(pack: Path, reports: Path, *args: str, timeout_s: float = 240.0) -> AuditRun:
    """Run ``scaleready audit`` as a child process (real exit code, real signals)."""
    env = {**os.environ, "COLUMNS": "120"}
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "audit", str(pack), "--reports", str(reports), *args],
        capture_output=True, text=True, timeout=timeout_s, env=env, cwd=REPO,
    )  # fmt: skip
    runs = sorted(p for p in reports.glob("*") if (p / "scorecard.json").exists()) if reports.exists() else []
    return AuditRun(proc.returncode, proc.stdout + proc.stderr, runs[-1] if runs else None)
