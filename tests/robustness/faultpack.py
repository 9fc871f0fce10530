"""A throwaway pack around tests/faultserver.py, and a way to run a real audit on it.

Audits run as subprocesses (``python -m harness.cli audit ...``) so exit codes, signals and
process trees are the real ones. The ``tiny`` profile keeps one audit to a few seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAULTSERVER = ROOT / "tests" / "faultserver.py"
AUDIT_TIMEOUT_S = 90.0

PROVISION = '''\
"""Provisioning for the fault pack: one POST per customer."""
import httpx


async def create_customer(client: httpx.AsyncClient, index, rng, marker):
    response = await client.post("/customers", json={"index": index, "marker": marker})
    response.raise_for_status()
    return response.json()


def auth_headers(customer):
    return {"X-API-Key": customer["api_key"], "Authorization": "Bearer " + customer["token"]}
'''

LOCUSTFILE = '''\
"""The fault pack's one persona: GET /items, checked like a real pack checks its answers."""
from harness.pack_api import CustomerUser, task


class Shopper(CustomerUser):
    @task
    def items(self):
        c = self.customer()
        headers = {
            "X-API-Key": c["api_key"],
            "Authorization": "Bearer " + c["token"],
            "Cookie": "session=" + c["token"],
        }
        with self.client.get("/items", headers=headers, name="GET /items", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure("status %s" % resp.status_code)
                return
            if not (resp.headers.get("content-type") or "").startswith("application/json"):
                resp.failure("wrong-content-type")
                return
            try:
                resp.json()
            except ValueError:
                resp.failure("invalid-json")
'''


@dataclass(frozen=True)
class AuditRun:
    code: int
    stdout: str
    stderr: str
    reports: Path

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def run_dirs(self) -> list[Path]:
        return sorted(p for p in self.reports.iterdir() if p.is_dir()) if self.reports.is_dir() else []

    def run_dir(self) -> Path:
        dirs = self.run_dirs()
        assert len(dirs) == 1, (dirs, self.output[-3000:])
        return dirs[0]


def scenario_toml(mode: str, *, after: int = 0, request_timeout_s: float = 2.0,
                  extra_target: str = "", extra: str = "", steady_s: float = 3.0) -> str:  # fmt: skip
    start = f"{{python}} {FAULTSERVER} --port {{port}} --mode {mode} --after {after}"
    return textwrap.dedent(
        f"""\
        tiers = [3, 6]

        [pack]
        name = "faulty"

        [target]
        start = "{start}"
        health_path = "/health"
        ready_timeout_s = 10
        request_timeout_s = {request_timeout_s}
        {extra_target}

        [customers]
        peak_rps_per_customer = 2
        goal = 6
        provision_concurrency = 4

        [slo]
        p95_ms = 500
        p99_ms = 1000

        [suite]
        regression = ""
        properties = ""
        invariants = ""

        [profiles.tiny]
        parent = "quick"
        warmup_s = 1
        steady_s = {steady_s}
        stress_factors = [2.0]
        stress_step_s = 1
        noise_floor_s = 0
        probe_iterations = 0
        margin_repeats = 0
        hypothesis_examples = 3
        {extra}
        """
    )


def make_pack(folder: Path, mode: str = "ok", *, toml: str | None = None, **kwargs: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.toml").write_text(toml or scenario_toml(mode, **kwargs), encoding="utf-8")  # type: ignore[arg-type]
    (folder / "provision.py").write_text(PROVISION, encoding="utf-8")
    (folder / "locustfile.py").write_text(LOCUSTFILE, encoding="utf-8")
    return folder


def audit_command(pack: Path, reports: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "audit", str(pack), "--profile", "tiny",
            "--reports", str(reports), "--seed", "7", *args]  # fmt: skip


def audit_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["COLUMNS"] = "400"  # so a message is not wrapped across lines
    return env


def run_audit(pack: Path, reports: Path, *args: str, timeout_s: float = AUDIT_TIMEOUT_S) -> AuditRun:
    proc = subprocess.run(audit_command(pack, reports, *args), capture_output=True, text=True,
                          timeout=timeout_s, cwd=ROOT, env=audit_env(), check=False)  # fmt: skip
    return AuditRun(proc.returncode, proc.stdout, proc.stderr, reports)


def start_audit(pack: Path, reports: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """The audit as a running process (stdout and stderr to ``log``), for signal tests."""
    with open(log, "wb") as out:
        return subprocess.Popen(audit_command(pack, reports, *args), stdout=out, stderr=subprocess.STDOUT,
                                cwd=ROOT, env=audit_env())  # fmt: skip


def scorecard(run_dir: Path) -> dict[str, object]:
    import json

    return json.loads((run_dir / "scorecard.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]
