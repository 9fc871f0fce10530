"""Run ids, run folders, history.jsonl and LATEST: safe when audits finish at the same moment."""

from __future__ import annotations

import json
import multiprocessing
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness import history
from harness.errors import HarnessError
from tests.factories import T0, capacity_estimate, full_audit_record


def test_a_run_id_is_the_utc_start_time_and_a_suffix() -> None:
    assert history.new_run_id(datetime(2026, 11, 23, 10, 15, tzinfo=UTC), token="ab12") == (
        "20261123-101500-ab12")
    plus2 = timezone(timedelta(hours=2))
    assert history.new_run_id(datetime(2026, 11, 23, 12, 15, tzinfo=plus2), token="ab12") == (
        "20261123-101500-ab12")
    assert re.fullmatch(r"20231114-221320-[0-9a-f]{4}", history.new_run_id(T0))


def test_run_ids_made_in_the_same_second_differ() -> None:
    ids = {history.new_run_id(T0) for _ in range(1000)}
    assert len(ids) == 1000


def test_a_run_folder_is_never_shared(tmp_path: Path) -> None:
    run_dir = history.create_run_dir(tmp_path / "reports", "20261123-101500-ab12")
    assert run_dir.is_dir() and run_dir.parent == tmp_path / "reports"
    with pytest.raises(HarnessError, match="already exists"):
        history.create_run_dir(tmp_path / "reports", "20261123-101500-ab12")


def test_a_run_id_must_be_a_plain_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        history.create_run_dir(tmp_path, "../escape")


def test_record_run_appends_a_line_and_points_latest_at_it(tmp_path: Path) -> None:
    record = full_audit_record("READY")
    entry = history.record_run(tmp_path, record)
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {
        "run_id": "20261123-101500-ab12", "pack": "booking", "profile": "standard",
        "verdict": "READY", "ready_up_to": 5000, "predicted_customers": 8200,
        "finished_at": "2023-11-14T22:23:20.000Z", "started_at": "2023-11-14T22:13:20.000Z",
        "partial": False, "headroom": 1.64,
    }
    assert history.read_history(tmp_path) == [entry]
    assert history.latest_run_id(tmp_path) == "20261123-101500-ab12"
    assert (tmp_path / "LATEST").read_text() == "20261123-101500-ab12\n"


def test_latest_names_the_run_that_finished_last_whatever_the_order_of_recording(
    tmp_path: Path,
) -> None:
    later = replace(full_audit_record(), run_id="20261123-101500-0002", finished_at=T0 + 900)
    earlier = replace(full_audit_record(), run_id="20261123-101500-0001", finished_at=T0 + 800)
    history.record_run(tmp_path, later)
    history.record_run(tmp_path, earlier)
    assert history.latest_run_id(tmp_path) == "20261123-101500-0002"
    assert [e.run_id for e in history.read_history(tmp_path)] == [
        "20261123-101500-0002", "20261123-101500-0001"]


def test_no_history_yet(tmp_path: Path) -> None:
    assert history.read_history(tmp_path) == []
    assert history.latest_run_id(tmp_path) is None


def test_a_torn_line_from_a_crash_is_skipped_and_not_glued_to_the_next(tmp_path: Path) -> None:
    (tmp_path / "history.jsonl").write_text('{"run_id": "20261123-0900')  # no newline: a crash
    record = replace(full_audit_record(), capacity=capacity_estimate(None))
    history.record_run(tmp_path, record)
    entries = history.read_history(tmp_path)
    assert [e.run_id for e in entries] == ["20261123-101500-ab12"]
    assert entries[0].predicted_customers is None


def _finish(args: tuple[str, int]) -> None:
    folder, i = args
    record = replace(full_audit_record(), run_id=f"20261123-101500-{i:04x}",
                     finished_at=T0 + 600 + i)
    history.record_run(Path(folder), record)


def test_audits_finishing_at_once_lose_no_line(tmp_path: Path) -> None:
    n = 24
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        pool.map(_finish, [(str(tmp_path), i) for i in range(n)])
    raw = (tmp_path / "history.jsonl").read_text().splitlines()
    assert len(raw) == n and all(json.loads(line) for line in raw)
    assert {e.run_id for e in history.read_history(tmp_path)} == {
        f"20261123-101500-{i:04x}" for i in range(n)}
    assert history.latest_run_id(tmp_path) == f"20261123-101500-{n - 1:04x}"
    leftovers = [p.name for p in tmp_path.iterdir()
                 if p.name not in ("history.jsonl", "LATEST", ".history.lock")]
    assert leftovers == []
