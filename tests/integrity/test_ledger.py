"""harness.integrity.ledger: the append-only operation ledger the load writes and the checkers read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from harness.integrity import ledger as ledger_module
from harness.integrity.ledger import (
    LEDGER_DIR_ENV,
    Ledger,
    NullLedger,
    content_digest,
    outcome_of,
    read_ledger_dir,
    read_ledgers,
    shared_ledger,
)

BOOKING = {"practitioner_id": 3, "patient_id": 9, "start": "2030-01-07T09:00"}


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "ok"), (201, "ok"), (204, "ok"), (404, "fail"), (409, "fail"), (422, "fail"),
     (429, "fail"), (500, "unknown"), (503, "unknown"), (0, "unknown"), (None, "unknown"),
     (302, "unknown")],
)  # fmt: skip
def test_the_outcome_of_an_http_status(status: int | None, outcome: str) -> None:
    assert outcome_of(status) == outcome


def test_the_digest_is_canonical() -> None:
    assert content_digest({"a": 1, "b": "x"}) == content_digest({"b": "x", "a": 1})
    assert content_digest({"a": 1}) != content_digest({"a": 2})
    assert content_digest(None) is None


def test_a_record_reads_back_as_an_operation(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        ledger.record(
            customer=17, kind="booking", op="create", status=201, ident=8812,
            content=BOOKING, started=100.0, ended=100.5,
        )  # fmt: skip
        ledger.record(customer=17, kind="booking", op="delete", status=200, ident="8812", started=101.0)
    [create, delete] = read_ledgers(tmp_path)
    assert create.customer == 17 and create.kind == "booking" and create.op == "create"
    assert create.outcome == "ok" and create.status == 201 and create.ident == "8812"
    assert (create.started, create.ended) == (100.0, 100.5)
    assert create.content == BOOKING and create.digest == content_digest(BOOKING)
    assert delete.op == "delete" and delete.outcome == "ok" and delete.content is None


def test_an_explicit_outcome_wins_over_the_status(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        ledger.record(customer=1, kind="booking", op="create", outcome="unknown", status=201)
    assert read_ledgers(tmp_path)[0].outcome == "unknown"


def test_bad_op_or_outcome_is_refused(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        with pytest.raises(ValueError, match="op = 'insert'"):
            ledger.record(customer=1, kind="booking", op="insert", status=201)
        with pytest.raises(ValueError, match="outcome = 'maybe'"):
            ledger.record(customer=1, kind="booking", op="create", outcome="maybe")


def test_large_content_keeps_only_its_digest(tmp_path: Path) -> None:
    big = {"note": "x" * 5000}
    with Ledger.open(tmp_path) as ledger:
        ledger.record(customer=1, kind="booking", op="create", status=201, content=big)
    [op] = read_ledgers(tmp_path)
    assert op.content is None and op.digest == content_digest(big)


def test_records_are_buffered_and_flushed_after_the_interval(tmp_path: Path) -> None:
    now = [0.0]
    ledger = Ledger(tmp_path / "ledger-1-x.jsonl", flush_interval_s=1.0, monotonic=lambda: now[0])
    ledger.record(customer=1, kind="booking", op="create", status=201)
    assert read_ledgers(tmp_path) == []  # buffered
    now[0] = 1.5
    ledger.record(customer=2, kind="booking", op="create", status=201)
    assert [o.customer for o in read_ledgers(tmp_path)] == [1, 2]
    ledger.record(customer=3, kind="booking", op="create", status=201)
    ledger.close()
    assert [o.customer for o in read_ledgers(tmp_path)] == [1, 2, 3]
    ledger.record(customer=4, kind="booking", op="create", status=201)  # after close: dropped
    assert ledger.closed and len(read_ledgers(tmp_path)) == 3


def test_files_of_several_processes_merge_in_start_order(tmp_path: Path) -> None:
    a, b = Ledger.open(tmp_path), Ledger.open(tmp_path)
    assert a.path != b.path and a.path.name.startswith(f"ledger-{os.getpid()}-")
    a.record(customer=1, kind="booking", op="create", status=201, started=3.0, ended=3.1)
    b.record(customer=2, kind="booking", op="create", status=201, started=1.0, ended=1.1)
    a.record(customer=3, kind="booking", op="create", status=201, started=2.0, ended=2.1)
    a.close()
    b.close()
    assert [o.customer for o in read_ledgers(tmp_path)] == [2, 3, 1]


def test_leak_observations_are_kept_apart_from_operations(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        ledger.observe_leak(customer=4, foreign=[9, 2, 9], request="GET /patients", status=200, at=5.0)
        ledger.record(customer=4, kind="booking", op="create", status=201)
    contents = read_ledger_dir(tmp_path)
    assert len(contents.operations) == 1
    [leak] = contents.leaks
    assert (leak.customer, leak.foreign, leak.request, leak.at) == (4, (2, 9), "GET /patients", 5.0)


def test_a_partial_last_line_is_counted_not_raised(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        ledger.record(customer=1, kind="booking", op="create", status=201)
    with ledger.path.open("a") as f:
        f.write('{"t0": 1.0, "t1": 1.')  # a process killed mid-write
    contents = read_ledger_dir(tmp_path)
    assert len(contents.operations) == 1 and contents.bad_lines == 1 and contents.files == 1


def test_reading_is_bounded(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        for i in range(10):
            ledger.record(customer=i, kind="booking", op="create", status=201)
    contents = read_ledger_dir(tmp_path, max_lines=4)
    assert len(contents.operations) == 4 and contents.truncated


def test_a_missing_directory_reads_as_empty(tmp_path: Path) -> None:
    contents = read_ledger_dir(tmp_path / "nope")
    assert contents.operations == () and contents.files == 0


def test_concurrent_threads_lose_nothing(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path, flush_interval_s=0.0)  # flush on every record: worst case

    def write(worker: int) -> None:
        for i in range(500):
            ledger.record(customer=worker, kind="booking", op="create", status=201, ident=f"{worker}-{i}")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ledger.close()
    ops = read_ledgers(tmp_path)
    assert len(ops) == 4000 and len({o.ident for o in ops}) == 4000


def test_shared_ledger_is_a_null_ledger_outside_the_harness(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LEDGER_DIR_ENV, raising=False)
    monkeypatch.setattr(ledger_module, "_shared", None)
    ledger = shared_ledger()
    assert isinstance(ledger, NullLedger)
    ledger.record(customer=1, kind="booking", op="create", status=201)  # no-op, no error


def test_shared_ledger_opens_once_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LEDGER_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(ledger_module, "_shared", None)
    first = shared_ledger()
    assert isinstance(first, Ledger) and shared_ledger() is first
    first.record(customer=1, kind="booking", op="create", status=201)
    ledger_module.close_shared_ledger()
    assert len(read_ledgers(tmp_path)) == 1


def test_it_works_in_a_gevent_patched_process(tmp_path: Path) -> None:
    pytest.importorskip("gevent")
    script = textwrap.dedent(
        """
        from gevent import monkey
        monkey.patch_all()
        import gevent, sys
        from harness.integrity.ledger import shared_ledger, close_shared_ledger

        def user(n):
            for i in range(200):
                shared_ledger().record(customer=n, kind="booking", op="create", status=201, ident=f"{n}-{i}")
                gevent.sleep(0)

        gevent.joinall([gevent.spawn(user, n) for n in range(20)])
        close_shared_ledger()
        """
    )
    env = {**os.environ, LEDGER_DIR_ENV: str(tmp_path)}
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    ops = read_ledgers(tmp_path)
    assert len(ops) == 4000 and len({o.ident for o in ops}) == 4000


def test_lines_are_compact_json(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        ledger.record(customer=1, kind="booking", op="create", status=201, ident=5, content=BOOKING, started=1, ended=2)
    line = ledger.path.read_text().strip()
    assert json.loads(line)["id"] == "5" and ", " not in line
