"""`scaleready compare` and `baseline pin`, and an audit's automatic comparison with its baseline."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.history.baseline import compare_with_baseline
from harness.history.store import DB_FILE, HistoryStore
from harness.report import load_schema
from harness.report.markdown import render_markdown
from harness.report.scorecard import build_scorecard
from tests.factories import T0, full_audit_record
from tests.nightly_runs import measured_record, metrics_of

BASE, SAME, SLOW, OTHER = "20261201-010000-0001", "20261201-020000-0002", "20261201-030000-0003", "20261201-040000-0004"


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    with HistoryStore(tmp_path) as store:
        for i, (run_id, slots, pack) in enumerate(((BASE, 2.0, "booking"), (SAME, 2.0, "booking"),
                                                   (SLOW, 2.6, "booking"), (OTHER, 2.0, "shop"))):  # fmt: skip
            store.add_run(metrics_of(measured_record(run_id, {"GET /slots": slots, "POST /bookings": 4.0}, seed=i,
                                                     pack=pack, finished_at=T0 + i)))  # fmt: skip
    return tmp_path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args])
    return result.exit_code, " ".join(result.output.split())


def test_compare_names_the_slower_endpoint_and_exits_1(reports: Path) -> None:
    code, out = _run("compare", BASE, SLOW, "--reports", str(reports))
    assert code == 1, out
    assert "2 slower and 0 faster beyond the noise" in out
    assert "Slower: - GET /slots's median service time at 500 customers" in out
    assert "POST /bookings" in out.split("Within the noise:")[1]


def test_compare_of_the_same_service_exits_0(reports: Path) -> None:
    code, out = _run("compare", BASE, SAME, "--reports", str(reports))
    assert code == 0 and "0 slower and 0 faster" in out


@pytest.mark.parametrize("a, b, message", [
    (BASE, "20991231-000000-ffff", "no run 20991231-000000-ffff in"),
    ("20991231-000000-ffff", BASE, "no run 20991231-000000-ffff in"),
    (BASE, OTHER, "is a run of pack booking and 20261201-040000-0004 of pack shop"),
    (BASE, BASE, "compared with itself says nothing: give two different runs"),
])  # fmt: skip
def test_bad_runs_are_one_sentence_exit_2_and_lose_nothing(reports: Path, a: str, b: str, message: str) -> None:
    before = (reports / DB_FILE).read_bytes()
    code, out = _run("compare", a, b, "--reports", str(reports))
    assert code == 2 and message in out and "Traceback" not in out
    assert (reports / DB_FILE).read_bytes() == before


def test_a_corrupt_database_is_exit_2_and_left_as_it_was(tmp_path: Path) -> None:
    (tmp_path / DB_FILE).write_bytes(b"garbage" * 64)
    code, out = _run("compare", BASE, SLOW, "--reports", str(tmp_path))
    assert code == 2 and "is not a readable history database" in out
    assert (tmp_path / DB_FILE).read_bytes() == b"garbage" * 64


def test_pin_makes_a_run_the_baseline(reports: Path) -> None:
    code, out = _run("baseline", "pin", SAME, "--reports", str(reports))
    assert code == 0 and f"Baseline of booking (quick): {SAME}" in out
    code, out = _run("baseline", "show", "--pack", "booking", "--profile", "quick", "--reports", str(reports))
    assert f"{SAME} (pinned)" in out
    code, out = _run("baseline", "show", "--pack", "booking", "--profile", "quick", "--unpin", "--reports", str(reports))
    assert f"{SLOW} (the last READY run)" in out


def test_an_audit_is_compared_with_the_last_ready_run_and_the_scorecard_says_so(reports: Path) -> None:
    new = measured_record("20261201-050000-0005", {"GET /slots": 2.6, "POST /bookings": 4.0}, seed=9)
    comparison = compare_with_baseline(reports, pack="booking", profile="quick", run_id=new.run_id, tiers=new.tiers)
    assert comparison is not None and comparison.baseline_run_id == SLOW
    assert comparison.regressions == ()  # as slow as the last READY run
    with HistoryStore(reports) as store:
        store.pin_baseline(BASE)
    comparison = compare_with_baseline(reports, pack="booking", profile="quick", run_id=new.run_id, tiers=new.tiers)
    assert comparison is not None and comparison.pinned and comparison.baseline_run_id == BASE
    assert {c.endpoint for c in comparison.regressions} == {"GET /slots"}
    card = build_scorecard(replace(full_audit_record(), baseline=comparison))
    jsonschema.Draft202012Validator(load_schema()).validate(json.loads(json.dumps(card)))
    assert card["baseline"]["regressions"][0]["endpoint"] == "GET /slots"
    md = render_markdown(replace(full_audit_record(), baseline=comparison))
    assert "## Against the baseline" in md and "pinned baseline `20261201-010000-0001`" in md


def test_no_baseline_yet_is_no_comparison(tmp_path: Path) -> None:
    new = measured_record("20261201-050000-0005", {"GET /slots": 2.0})
    assert compare_with_baseline(tmp_path, pack="booking", profile="quick", run_id=new.run_id, tiers=new.tiers) is None


@pytest.mark.parametrize("args", [
    ["compare", BASE, SLOW], ["history"], ["history", "--changes"], ["baseline", "pin", BASE],
    ["baseline", "show", "--pack", "booking", "--profile", "quick"],
])  # fmt: skip
def test_a_database_damaged_inside_is_exit_2_for_every_command_and_not_written(reports: Path, args: list[str]) -> None:
    path = reports / DB_FILE
    with HistoryStore(reports):  # closing the last connection folds the WAL into the file
        pass
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    assert len(data) >= 3 * page, "the fixture's database should span several pages"
    data[page:] = b"\xff" * (len(data) - page)  # the SQLite header and schema page intact, the tables not
    path.write_bytes(bytes(data))
    code, out = _run(*args, "--reports", str(reports))
    assert code == 2 and "is not a readable history database" in out and "Traceback" not in out, out
    assert path.read_bytes() == bytes(data)


def test_a_database_from_a_newer_harness_is_exit_2_and_untouched(reports: Path) -> None:
    import sqlite3

    from harness.history.store import SCHEMA_VERSION

    db = sqlite3.connect(reports / DB_FILE)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    before = (reports / DB_FILE).read_bytes()
    code, out = _run("compare", BASE, SLOW, "--reports", str(reports))
    assert code == 2 and "newer than this harness" in out and "upgrade scaleready" in out
    assert (reports / DB_FILE).read_bytes() == before


def test_a_run_without_samples_cannot_be_compared(reports: Path) -> None:
    from harness.records import RunMetrics, RunSummary

    old = "20261101-010000-0000"  # as a run imported from history.jsonl: a summary, no samples
    with HistoryStore(reports) as store:
        store.add_run(RunMetrics(RunSummary(run_id=old, pack="booking", profile="quick", finished_at=T0 - 9,
                                            verdict="READY"), {}, {}))  # fmt: skip
    code, out = _run("compare", old, BASE, "--reports", str(reports))
    assert code == 2 and f"{old} has no per-request samples" in out


def test_a_missing_reports_folder_is_exit_2(tmp_path: Path) -> None:
    code, out = _run("compare", BASE, SLOW, "--reports", str(tmp_path / "nowhere"))
    assert code == 2 and "no reports folder" in out
    assert not (tmp_path / "nowhere").exists()  # not created by asking
