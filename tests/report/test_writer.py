"""Writing a run's reports: all four files, each atomically, the scorecard first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.report import write_reports
from tests.factories import full_audit_record


def test_write_reports_writes_the_four_reports(tmp_path: Path) -> None:
    record = full_audit_record("NOT READY")
    paths = write_reports(record, tmp_path)
    assert {p.name for p in paths.all()} == {"scorecard.json", "scorecard.md", "report.html",
                                            "junit.xml"}
    assert json.loads(paths.scorecard_json.read_text())["verdict"] == "NOT READY"
    assert paths.scorecard_md.read_text().startswith("**Verdict: NOT READY**")
    assert "<!DOCTYPE html>" in paths.report_html.read_text()
    assert paths.junit_xml.read_text().startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.all())


def test_a_renderer_bug_still_leaves_the_scorecard_and_the_other_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.report.html

    def broken(record: object) -> str:
        raise ValueError("a bug in the HTML renderer")

    monkeypatch.setattr(harness.report.html, "render_html", broken)
    with pytest.raises(RuntimeError, match=r"could not render report.html .*scorecard.json"):
        write_reports(full_audit_record(), tmp_path)
    assert json.loads((tmp_path / "scorecard.json").read_text(encoding="utf-8"))["verdict"]
    assert (tmp_path / "scorecard.md").stat().st_size > 0
    assert (tmp_path / "junit.xml").stat().st_size > 0
    assert "a bug in the HTML renderer" in (tmp_path / "report-errors.txt").read_text(encoding="utf-8")
    assert not (tmp_path / "report.html").exists()
