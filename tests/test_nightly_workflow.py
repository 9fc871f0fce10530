"""The nightly CI workflow (.github/workflows/nightly.yml): valid, and made of the commands a
person runs locally, so a failing night can be reproduced by typing what the job typed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"


def _steps() -> list[dict[str, Any]]:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    return [step for job in jobs.values() for step in job["steps"]]


def _schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    # check-jsonschema's vendored copy of SchemaStore's GitHub workflow schema: no network
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(path)], capture_output=True, text=True, timeout=120)  # fmt: skip


def test_the_workflow_is_valid_against_the_github_workflow_schema() -> None:
    result = _schema_check(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest", 1))
    assert _schema_check(broken).returncode == 1


def test_it_runs_every_night_and_on_demand() -> None:
    triggers = yaml.safe_load(WORKFLOW.read_text())[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["schedule"][0]["cron"] and "workflow_dispatch" in triggers


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))


def test_every_step_that_does_work_is_a_local_command() -> None:
    runs = [s["run"].strip() for s in _steps() if "run" in s]
    assert "make test-nightly" in runs and any(r.startswith("make loadtest") for r in runs)
    for command in runs:
        if command.startswith("make "):
            assert command.split()[1] in _make_targets(), command
        elif command.startswith(".venv/bin/scaleready "):
            args = command.split()[1:]
            assert CliRunner().invoke(main, [*args[:1], "--help"]).exit_code == 0, command
        else:  # only plumbing: naming the run folder for the artifact
            assert command.startswith("echo ") and "GITHUB_OUTPUT" in command, command


def test_the_reports_folder_is_restored_and_saved_and_the_report_uploaded() -> None:
    by_action = {s["uses"].split("@")[0]: s for s in _steps() if "uses" in s}
    restore, save = by_action["actions/cache/restore"], by_action["actions/cache/save"]
    assert restore["with"]["path"] == save["with"]["path"] == "reports"
    assert save["with"]["key"].startswith(restore["with"]["restore-keys"].strip())
    assert save["if"] == "always()"  # a failing night is history too
    upload = by_action["actions/upload-artifact"]
    assert upload["with"]["path"].startswith("reports/") and "always()" in upload["if"]


def test_the_audit_step_passes_options_the_audit_accepts() -> None:
    step = next(s for s in _steps() if s.get("run", "").startswith("make loadtest"))
    options = re.findall(r"--[a-z-]+", step["run"])
    assert options == ["--profile", "--strict"]
    help_text = CliRunner().invoke(main, ["audit", "--help"]).output
    assert all(o in help_text for o in options)
