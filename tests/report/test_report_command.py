"""`scaleready report RUN`: redraw an earlier run's report.html from its scorecard.json (and print
it to PDF); exit 2 with one sentence when the run or Chromium is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.history import LATEST_FILE
from harness.report import write_reports
from harness.report.pdf import CHROMIUM_ENV
from tests.factories import full_audit_record

RUN_ID = "20261123-101500-ab12"


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    (folder / RUN_ID).mkdir(parents=True)
    write_reports(full_audit_record("AT RISK"), folder / RUN_ID)
    (folder / LATEST_FILE).write_text(RUN_ID + "\n")
    return folder


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["report", *args], env=env)
    return result.exit_code, result.output


@pytest.mark.parametrize("run", [RUN_ID, "latest", "folder"])
def test_report_redraws_the_html_from_the_scorecard(reports: Path, run: str) -> None:
    html = reports / RUN_ID / "report.html"
    written = html.read_text(encoding="utf-8")
    html.write_text("an older report", encoding="utf-8")
    code, output = invoke(str(reports / RUN_ID) if run == "folder" else run, "--reports", str(reports))
    assert code == 0, output
    assert html.read_text(encoding="utf-8") == written  # the audit's own bytes, from scorecard.json alone
    assert "Report:" in output


def test_a_missing_run_is_exit_2_in_one_sentence(reports: Path) -> None:
    code, output = invoke("20990101-000000-beef", "--reports", str(reports))
    assert code == 2
    assert output.strip().startswith("scaleready: no run 20990101-000000-beef in")
    assert RUN_ID in output and "Traceback" not in output


def test_a_run_without_a_scorecard_is_exit_2(reports: Path) -> None:
    (reports / RUN_ID / "scorecard.json").unlink()
    code, output = invoke(RUN_ID, "--reports", str(reports))
    assert code == 2 and "no scorecard.json" in output


def test_a_scorecard_of_another_major_version_is_refused(reports: Path) -> None:
    path = reports / RUN_ID / "scorecard.json"
    card = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**card, "schema_version": "2.0"}), encoding="utf-8")
    code, output = invoke(RUN_ID, "--reports", str(reports))
    assert code == 2 and "scorecard schema 2.0" in output


def test_pdf_without_chromium_is_exit_2_and_says_how_to_install_it(reports: Path, tmp_path: Path) -> None:
    code, output = invoke(RUN_ID, "--reports", str(reports), "--pdf",
                          env={CHROMIUM_ENV: str(tmp_path / "no-chromium-here")})  # fmt: skip
    assert code == 2 and CHROMIUM_ENV in output
    code, output = invoke(RUN_ID, "--reports", str(reports), "--pdf", env={"PATH": str(tmp_path)})
    assert code == 2 and "apt-get install chromium" in output
    assert not (reports / RUN_ID / "report.pdf").exists()


def test_audit_pdf_without_chromium_fails_before_the_audit_starts(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["audit", "scenarios/booking", "--pdf", "--reports", str(tmp_path / "r")],
                                env={"PATH": str(tmp_path)})  # fmt: skip
    assert result.exit_code == 2 and "apt-get install chromium" in result.output
    assert not (tmp_path / "r").exists()
