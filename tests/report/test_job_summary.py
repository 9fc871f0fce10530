"""The nightly job's summary on the CI run's page ($GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.history.baseline import compare_with_baseline
from harness.history.store import HistoryStore
from harness.report.job_summary import job_summary, new_findings, write_job_summary
from harness.report.scorecard import build_scorecard
from tests.factories import T0, finding, full_audit_record
from tests.nightly_runs import measured_record, metrics_of

BASE = "20261201-010000-0001"


def _card(**overrides: object) -> dict[str, Any]:
    return json.loads(json.dumps(build_scorecard(full_audit_record(**overrides))))


def _slower_than_baseline(tmp_path: Path) -> dict[str, Any]:
    with HistoryStore(tmp_path) as store:
        store.add_run(metrics_of(measured_record(BASE, {"GET /slots": 2.0, "POST /bookings": 4.0}, finished_at=T0)))
    new = measured_record("20261201-020000-0002", {"GET /slots": 2.6, "POST /bookings": 4.0}, seed=3)
    comparison = compare_with_baseline(tmp_path, pack="booking", profile="quick", run_id=new.run_id, tiers=new.tiers)
    assert comparison is not None
    return json.loads(json.dumps(build_scorecard(replace(full_audit_record("AT RISK"), baseline=comparison))))


def test_the_summary_has_the_verdict_the_tiers_and_the_regressions(tmp_path: Path) -> None:
    card = _slower_than_baseline(tmp_path)
    text = job_summary(card, report="reports/x/report.html")
    assert text.splitlines()[2].startswith("**Verdict: AT RISK**")
    assert "| Customers | Arrivals/s | Achieved req/s | p95 | p99 | Errors | Status |" in text
    assert "Latency is measured from" not in text  # the report explains that; the job page stays short
    slower = text.split("Slower:")[1]
    assert "GET /slots at 500 customers" in slower and "POST /bookings" not in slower
    assert f"Compared with `{BASE}`" in text and "report: `reports/x/report.html`" in text


def test_only_findings_the_baseline_did_not_have_are_new() -> None:
    old = finding(tier=500, endpoint="GET /slots")
    fresh = finding("error-rate", title="POST /bookings fails at 5000 customers", tier=5000, endpoint="POST /bookings")
    card = _card(findings=[old, fresh])
    baseline = _card(findings=[old])
    assert [f["id"] for f in new_findings(card, baseline)] == [fresh.id]
    text = job_summary(card, baseline)
    section = text.split("## New findings")[1].split("##")[0]
    assert "POST /bookings fails at 5000 customers" in section and "GET /items is too slow" not in section
    assert [f["id"] for f in new_findings(card, None)] == [old.id, fresh.id]  # no baseline: all are new


def test_a_run_without_a_baseline_says_so() -> None:
    text = job_summary(_card(findings=[]))
    assert "New findings (no baseline yet)" in text and "None: nothing in this run needs attention." in text
    assert "No baseline to compare with yet" in text


def test_it_is_appended_to_the_file_the_environment_names_and_nowhere_without_it(tmp_path: Path) -> None:
    page = tmp_path / "summary.md"
    page.write_text("an earlier step's summary\n")
    assert write_job_summary(_card(), environ={"GITHUB_STEP_SUMMARY": str(page)}) == page
    text = page.read_text()
    assert text.startswith("an earlier step's summary\n") and "**Verdict: READY**" in text
    assert write_job_summary(_card(), environ={}) is None


def test_an_audit_in_ci_reads_its_baseline_scorecard_for_the_new_findings(tmp_path: Path, monkeypatch: Any) -> None:
    from rich.console import Console

    from harness.cli import _job_summary

    card = _slower_than_baseline(tmp_path)
    fresh = finding("error-rate", title="POST /bookings fails at 5000 customers", tier=5000, endpoint="POST /bookings")
    card["findings"] = [_card(findings=[fresh])["findings"][0], *card["findings"]]
    baseline = dict(_card(), run_id=BASE, findings=card["findings"][1:])
    for run_id, scorecard in ((card["run_id"], card), (BASE, baseline)):
        (tmp_path / run_id).mkdir(exist_ok=True)
        (tmp_path / run_id / "scorecard.json").write_text(json.dumps(scorecard))
    page = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(page))
    _job_summary(Console(), tmp_path / card["run_id"] / "scorecard.json", tmp_path)
    section = page.read_text().split("## New findings")[1].split("## ")[0]
    assert f"(baseline `{BASE}`)" in section
    assert section.count("- **") == 1 and "POST /bookings fails" in section  # only what the baseline lacked
