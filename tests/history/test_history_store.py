"""The history database: what a run keeps, migrations, two writers at once, a corrupt file."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from harness import history
from harness.history.store import DB_FILE, SCHEMA_VERSION, HistoryError, HistoryStore
from tests.factories import T0
from tests.nightly_runs import measured_record, metrics_of


def _add(reports: Path, run_id: str, **kwargs: object) -> None:
    with HistoryStore(reports) as store:
        store.add_run(metrics_of(measured_record(run_id, {"GET /slots": 2.0, "POST /bookings": 4.0}, **kwargs)))  # type: ignore[arg-type]


def test_a_run_keeps_its_percentiles_samples_and_where_it_came_from(tmp_path: Path) -> None:
    record = measured_record("20261201-010000-0001", {"GET /slots": 2.0, "POST /bookings": 4.0}, capacity=9000.0,
                             options={"commit": "abc123", "branch": "main", "label": "nightly", "flaw": None})
    with HistoryStore(tmp_path) as store:
        store.add_run(metrics_of(record))
        got = store.metrics(record.run_id)
    assert (got.run.pack, got.run.profile, got.run.verdict) == ("booking", "quick", "READY")
    assert (got.run.commit, got.run.branch, got.run.label) == ("abc123", "main", "nightly")
    assert got.run.capacity == 9000.0
    assert got.values[(0, "*", "capacity")] == 9000.0
    assert got.values[(500, "GET /slots", "service_p50")] == pytest.approx(2.0, rel=0.05)
    assert got.values[(500, "POST /bookings", "p95")] > got.values[(500, "POST /bookings", "p50")]
    assert got.values[(500, "*", "throughput")] == 100.0
    buckets = got.samples[(500, "GET /slots", "service")]
    assert sum(c for _, c in buckets) == 2000  # every request of the steady window
    assert len(got.samples[(500, "*", "windows")]) == 4  # one p95 per time window


def test_the_database_is_in_wal_mode_at_the_current_schema(tmp_path: Path) -> None:
    _add(tmp_path, "20261201-010000-0001")
    db = sqlite3.connect(tmp_path / DB_FILE)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_database_from_a_newer_harness_is_refused_untouched(tmp_path: Path) -> None:
    _add(tmp_path, "20261201-010000-0001")
    db = sqlite3.connect(tmp_path / DB_FILE)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(HistoryError, match="newer than this harness"):
        HistoryStore(tmp_path)


def test_a_corrupt_database_is_one_sentence_and_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / DB_FILE
    path.write_bytes(b"this is not sqlite" * 100)
    before = path.read_bytes()
    with pytest.raises(HistoryError, match="not a readable history database") as info:
        HistoryStore(tmp_path)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == before


def test_history_jsonl_is_imported_once(tmp_path: Path) -> None:
    record = measured_record("20261130-010000-00aa", {"GET /slots": 2.0})
    history.record_run(tmp_path, record)
    for _ in range(2):
        with HistoryStore(tmp_path) as store:
            runs = store.runs()
    assert [(r.run_id, r.source, r.verdict) for r in runs] == [("20261130-010000-00aa", "history.jsonl", "READY")]
    history.record_run(tmp_path, measured_record("20261130-020000-00ab", {"GET /slots": 2.0}))
    with HistoryStore(tmp_path) as store:
        assert len(store.runs()) == 1  # later lines come with their audit's own add_run


def _finish(args: tuple[str, int]) -> None:
    folder, i = args
    for j in range(5):
        _add(Path(folder), f"20261201-01{i:02d}{j:02d}-{i:04x}", finished_at=T0 + i * 100 + j)


def test_audits_finishing_at_once_all_land(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_finish, [(str(tmp_path), i) for i in range(4)])
    with HistoryStore(tmp_path) as store:
        runs = store.runs()
        assert len(runs) == 20
        assert all(store.metrics(r.run_id).samples for r in runs)


def test_the_baseline_is_the_last_ready_run_unless_one_is_pinned(tmp_path: Path) -> None:
    _add(tmp_path, "20261201-010000-0001", finished_at=T0 + 1)
    _add(tmp_path, "20261201-020000-0002", finished_at=T0 + 2)
    _add(tmp_path, "20261201-030000-0003", finished_at=T0 + 3, verdict="NOT READY")
    _add(tmp_path, "20261201-040000-0004", finished_at=T0 + 4, profile="standard")
    with HistoryStore(tmp_path) as store:
        assert store.baseline_for("booking", "quick").run_id == "20261201-020000-0002"  # type: ignore[union-attr]
        assert store.baseline_for("booking", "quick", before="20261201-020000-0002").run_id == "20261201-010000-0001"  # type: ignore[union-attr]
        store.pin_baseline("20261201-010000-0001")
        assert store.baseline_for("booking", "quick").run_id == "20261201-010000-0001"  # type: ignore[union-attr]
        assert store.unpin_baseline("booking", "quick")
        assert store.baseline_for("booking", "nightly") is None


def test_a_missing_run_names_the_newest(tmp_path: Path) -> None:
    _add(tmp_path, "20261201-010000-0001")
    with HistoryStore(tmp_path) as store, pytest.raises(HistoryError, match="newest is 20261201-010000-0001"):
        store.run("20991231-000000-ffff")


def test_a_series_is_oldest_first_with_the_runs_that_have_it(tmp_path: Path) -> None:
    for i in range(3):
        _add(tmp_path, f"20261201-0{i}0000-000{i}", finished_at=T0 + 10 - i)  # finished in reverse
    with HistoryStore(tmp_path) as store:
        series = store.series("service_p50", pack="booking", tier=500, endpoint="GET /slots")
    assert [r.run_id for r, _ in series] == ["20261201-020000-0002", "20261201-010000-0001", "20261201-000000-0000"]
    assert json.dumps([v for _, v in series])
