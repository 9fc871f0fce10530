"""`scaleready history`: the runs as a table, a metric over time as a PNG, bad input as exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.history.store import HistoryStore
from tests.factories import T0
from tests.nightly_runs import measured_record, metrics_of


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    with HistoryStore(tmp_path) as store:
        for i, ms in enumerate((2.0, 2.1, 3.0)):
            record = measured_record(f"20261201-0{i}0000-000{i}", {"GET /slots": ms}, seed=i, capacity=9000.0 - i * 1000,
                                     finished_at=T0 + i, options={"commit": f"c0ffee{i}"})  # fmt: skip
            store.add_run(metrics_of(record))
    return tmp_path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["history", *args])
    return result.exit_code, result.output


def _said(out: str) -> str:
    return " ".join(out.split())  # the console wraps long sentences


def test_the_table_lists_each_run_with_the_metric(reports: Path) -> None:
    code, out = _run("--reports", str(reports), "--metric", "service_p50", "--endpoint", "GET /slots")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["run", "finished", "(UTC)"]
    assert "service_p50 @ 500 GET /slots" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["20261201-000000-0000", "20261201-010000-0001", "20261201-020000-0002"]
    assert "c0ffee2" in lines[3] and float(lines[3].split()[-1]) == pytest.approx(3.0, rel=0.05)


def test_capacity_is_a_whole_run_metric(reports: Path) -> None:
    code, out = _run("--reports", str(reports), "--metric", "capacity", "--limit", "2")
    assert code == 0, out
    assert out.splitlines()[1].split()[-1] == "8,000" and len(out.splitlines()) == 3


def test_plot_writes_a_png(reports: Path, tmp_path: Path) -> None:
    png = tmp_path / "p95.png"
    code, out = _run("--reports", str(reports), "--plot", str(png))
    assert code == 0, out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [
    (["--metric", "thruput"], "did you mean"),
    (["--pack", "shop"], "no runs of pack shop"),
])  # fmt: skip
def test_bad_input_is_one_sentence_and_exit_2(reports: Path, args: list[str], message: str) -> None:
    code, out = _run("--reports", str(reports), *args)
    assert code == 2 and message in _said(out) and "Traceback" not in out


def test_a_folder_without_reports_is_exit_2(tmp_path: Path) -> None:
    code, out = _run("--reports", str(tmp_path / "nothing"))
    assert code == 2 and "run an audit first" in _said(out)
    assert not (tmp_path / "nothing").exists()


@pytest.fixture
def series(tmp_path: Path) -> Path:
    """Eight nightly runs; GET /slots 30 % slower from the fifth, at commit c0ffee4."""
    rng = np.random.default_rng(5)
    with HistoryStore(tmp_path) as store:
        for i in range(8):
            slots = (2.6 if i >= 4 else 2.0) * float(rng.normal(1.0, 0.02))
            record = measured_record(f"20261201-0{i}0000-000{i}", {"GET /slots": slots, "POST /bookings": 4.0},
                                     seed=i, finished_at=T0 + i, verdict="AT RISK" if i >= 4 else "READY",
                                     options={"commit": f"c0ffee{i}"})  # fmt: skip
            store.add_run(metrics_of(record))
    return tmp_path


def test_changes_lists_where_the_series_moved_with_the_commit_range(series: Path) -> None:
    code, out = _run("--reports", str(series), "--changes")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "Change points of booking (quick), newest first:"
    moved = [line for line in lines[2:] if "GET /slots" in line and "service_p50" in line]
    assert len(moved) == 1 and moved[0].split()[:2] == ["20261201-040000-0004", "20261201-030000-0003"]
    assert "c0ffee3..c0ffee4" in moved[0] and "+3" in moved[0]
    assert not [line for line in lines[2:] if "POST /bookings" in line]


def test_no_change_says_so(reports: Path) -> None:
    code, out = _run("--reports", str(reports), "--changes")
    assert code == 0 and "No change points in the last 3 runs of booking (quick)" in _said(out)


def test_an_audit_carries_its_change_points_and_series_into_its_reports(series: Path) -> None:
    from dataclasses import replace

    import jsonschema

    from harness.history.baseline import with_history
    from harness.report import load_schema
    from harness.report.html import render_html
    from harness.report.markdown import render_markdown
    from harness.report.scorecard import build_scorecard
    from tests.factories import full_audit_record

    new = measured_record("20261201-090000-0009", {"GET /slots": 2.6, "POST /bookings": 4.0}, seed=9)
    past = with_history(series, pack="booking", profile="quick", run_id=new.run_id, tiers=new.tiers, capacity=None)
    assert [c.run_id for c in past.change_points if c.endpoint == "GET /slots"] == ["20261201-040000-0004"]
    assert past.series is not None and len(past.series.points) == 9 and past.series.points[-1].run_id == new.run_id
    record = replace(full_audit_record(), baseline=past.baseline, change_points=past.change_points, history=past.series)
    card = build_scorecard(record)
    jsonschema.Draft202012Validator(load_schema()).validate(card)
    assert "## Changes over the nightly series" in render_markdown(record)
    html = render_html(record)
    assert 'id="history"' in html and "Change points" in html and "20261201-040000-0004" in html
