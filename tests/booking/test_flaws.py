"""Each named flaw of the booking demo exists and does what its description says.

The audit must find these flaws from measurements alone (tests/test_selftest.py); these tests
pin down the flaws themselves, so that a missed detection is the harness's fault, not a flaw that
quietly stopped misbehaving. Every test compares the flawed service with the healthy one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from booking_demo import Demo, next_weekday

DemoFactory = Callable[[str], Demo]


def test_every_flaw_is_listed_by_the_service_and_the_pack() -> None:
    from booking_service.flaws import Flaw

    from harness.pack import load_pack

    pack = load_pack(Path(__file__).resolve().parents[2] / "scenarios" / "booking")
    assert sorted(pack.config.target.flaws) == sorted(f.value for f in Flaw)


# --- missing-index ----------------------------------------------------------------------------


def _search_plan(db_path: Path) -> str:
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM patients WHERE clinic_id = ? AND name_key LIKE ? "
            "ORDER BY name_key, id LIMIT 20",
            (1, "%an%"),
        ).fetchall()
    return " ".join(str(r[-1]) for r in rows)


@pytest.mark.parametrize(("flaw", "scans"), [("none", False), ("missing-index", True)])
def test_missing_index_makes_patient_search_scan_every_clinic(demo: DemoFactory, flaw: str, scans: bool) -> None:
    d = demo(flaw)
    mine, other = d.new_clinic(), d.new_clinic()
    mine.patient("Ada Lovelace")
    other.patient("Ada Byron")
    found = mine.get("/patients?q=ada").json()
    assert [p["name"] for p in found] == ["Ada Lovelace"]  # slow, but still correct
    plan = _search_plan(d.db_path)
    assert ("patients_clinic_name" not in plan) is scans, plan
    assert ("SCAN patients" in plan) is scans, plan


# --- n-plus-one -------------------------------------------------------------------------------


@pytest.fixture()
def store_for(tmp_path: Path) -> Iterator[Callable[[str], Any]]:
    """A Store over a fresh SQLite file, in this process (to count its queries)."""
    from booking_service.db import Database
    from booking_service.flaws import parse_flaws
    from booking_service.settings import Settings
    from booking_service.store import Store

    dbs: list[Database] = []

    def make(flaw: str) -> Any:
        settings = Settings(db_path=tmp_path / f"{flaw}.sqlite3", flaws=parse_flaws([flaw]),
                            state_dir=tmp_path)  # fmt: skip
        db = Database(settings)
        dbs.append(db)
        return Store(db, settings)

    yield make
    for db in dbs:
        db.close()


def _clinic_with_bookings(store: Any, n_bookings: int) -> tuple[Any, Any]:
    from booking_service import models
    from booking_service.store import _clinic

    day = next_weekday()
    with store.db.connection() as conn:
        out = store.create_clinic(conn, models.ClinicIn(name="Counting Clinic"))
        clinic = _clinic(conn.one("SELECT * FROM clinics WHERE id = ?", (out["id"],)))
        pid = store.create_practitioner(conn, clinic, models.PractitionerIn(name="Dr A", slot_minutes=30))["id"]
        patients = store.import_patients(conn, clinic, [models.PatientIn(name=f"P {i}") for i in range(5)])["ids"]
        for i in range(n_bookings):
            start = f"{day.isoformat()}T{9 + i // 2:02d}:{30 * (i % 2):02d}"
            store.create_booking(conn, clinic, models.BookingIn(
                practitioner_id=pid, patient_id=patients[i % 5], start=start))  # fmt: skip
    return clinic, day


def _queries_for_report(store: Any, clinic: Any, day: Any) -> tuple[int, dict[str, Any]]:
    statements: list[str] = []
    with store.db.connection() as conn:
        conn._conn.set_trace_callback(statements.append)
        try:
            report = store.daily_report(conn, clinic, day)
        finally:
            conn._conn.set_trace_callback(None)
    return len(statements), report


def test_n_plus_one_report_runs_a_query_per_booking_and_slot(store_for: Callable[[str], Any]) -> None:
    counts = {}
    for flaw in ("none", "n-plus-one"):
        store = store_for(flaw)
        few, day = _clinic_with_bookings(store, 2)
        many, _ = _clinic_with_bookings(store, 12)
        n_few, report_few = _queries_for_report(store, few, day)
        n_many, report_many = _queries_for_report(store, many, day)
        assert (report_few["bookings"], report_many["bookings"]) == (2, 12)  # same answer
        assert (report_few["patients_seen"], report_many["patients_seen"]) == (2, 5)
        counts[flaw] = (n_few, n_many)
    assert counts["none"][0] == counts["none"][1] <= 3  # a constant number of queries
    n_few, n_many = counts["n-plus-one"]
    assert n_many - n_few >= 3 * 10  # booking, practitioner and patient loaded one by one
    assert n_few > 16 + 5  # and one query per slot of the day, and one per patient of the clinic


# --- global-lock ------------------------------------------------------------------------------


def _blocked_patient_write(store: Any, blocker: Any, blocked: bool) -> None:
    """Start one write (a new patient) while ``blocker`` (a context manager) is held; assert it
    cannot finish inside the blocker when ``blocked``, and does at once otherwise."""
    from booking_service import models

    clinic, _day = _clinic_with_bookings(store, 0)
    done = threading.Event()

    def write() -> None:
        with store.db.connection() as conn:
            store.create_patient(conn, clinic, models.PatientIn(name="Grace Hopper"))
        done.set()

    writer = threading.Thread(target=write)
    with blocker:
        writer.start()
        # Bounded: healthy finishes in milliseconds; flawed cannot finish before the release.
        went_through = done.wait(0.5 if blocked else 10)
        assert went_through is not blocked
    writer.join(timeout=10)
    assert done.is_set()


@pytest.mark.parametrize(("flaw", "serialised"), [("none", False), ("global-lock", True)])
def test_global_lock_serialises_every_write_across_an_fsynced_audit_line(
    store_for: Callable[[str], Any], tmp_path: Path, flaw: str, serialised: bool
) -> None:
    store = store_for(flaw)
    # Another request holds the process-wide lock (as it does across its commit and fsync).
    _blocked_patient_write(store, store._write_lock, serialised)
    log = tmp_path / "audit.log"
    if serialised:
        lines = log.read_text().splitlines()
        assert len(lines) >= 3 and all(line.endswith(" commit") for line in lines)
    else:
        assert not log.exists()


@contextlib.contextmanager
def _open_read_transaction(db_path: Path, expected_journal: str) -> Iterator[None]:
    reader = sqlite3.connect(db_path, isolation_level=None)
    try:
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == expected_journal
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM patients").fetchone()  # holds a read snapshot
        yield
        reader.execute("COMMIT")
    finally:
        reader.close()


@pytest.mark.parametrize(("flaw", "waits_for_readers"), [("none", False), ("global-lock", True)])
def test_global_lock_commits_wait_until_no_reader_is_left(
    store_for: Callable[[str], Any], flaw: str, waits_for_readers: bool
) -> None:
    # The flawed service keeps SQLite's rollback journal: a commit needs every reader gone, and
    # it waits for them while holding the process-wide lock. With WAL, readers never block it.
    store = store_for(flaw)
    journal = "delete" if waits_for_readers else "wal"
    _blocked_patient_write(store, _open_read_transaction(store.settings.db_path, journal), waits_for_readers)


# --- double-booking ---------------------------------------------------------------------------


def _race_for_one_slot(d: Demo, attempts: int = 16, racers: int = 8, stop_at_double: bool = False) -> list[list[int]]:
    """Book each of up to `attempts` slots from `racers` threads at once; the statuses per slot."""
    t = d.new_clinic()
    pid, patient = t.practitioner(), t.patient()
    day = next_weekday(10)
    results = []
    with ThreadPoolExecutor(racers) as pool, t.client() as client:
        for i in range(attempts):
            minute = 9 * 60 + 30 * i  # 16 half-hour slots from 09:00
            start = f"{day.isoformat()}T{minute // 60:02d}:{minute % 60:02d}"
            body = {"practitioner_id": pid, "patient_id": patient, "start": start}
            barrier = threading.Barrier(racers)

            def book(body: dict[str, Any] = body, barrier: threading.Barrier = barrier) -> int:
                barrier.wait(timeout=10)
                return client.post("/bookings", json=body).status_code

            results.append(sorted(pool.map(lambda _: book(), range(racers))))
            if stop_at_double and results[-1].count(201) >= 2:
                break
    return results


def test_double_booking_lets_concurrent_bookings_of_one_slot_both_succeed(demo: DemoFactory) -> None:
    flawed = _race_for_one_slot(demo("double-booking"), stop_at_double=True)
    assert any(statuses.count(201) >= 2 for statuses in flawed), flawed
    healthy = _race_for_one_slot(demo("none"))
    assert all(statuses.count(201) == 1 and set(statuses) <= {201, 409} for statuses in healthy), healthy


# --- lost-update ------------------------------------------------------------------------------


def _concurrent_bookings(d: Demo, rounds: int = 4, racers: int = 8) -> tuple[int, int]:
    """Book distinct slots of one clinic from `racers` threads at once, `rounds` times; return
    (bookings acknowledged, the clinic's metered usage afterwards)."""
    t = d.new_clinic()
    pid, patient = t.practitioner(), t.patient()
    made = 0
    with ThreadPoolExecutor(racers) as pool, t.client() as client:
        for r in range(rounds):
            day = next_weekday(7 + r)
            barrier = threading.Barrier(racers)

            def book(i: int, day: Any = day, barrier: threading.Barrier = barrier) -> int:
                minute = 9 * 60 + 30 * i
                body = {"practitioner_id": pid, "patient_id": patient,
                        "start": f"{day.isoformat()}T{minute // 60:02d}:{minute % 60:02d}"}  # fmt: skip
                barrier.wait(timeout=10)
                return client.post("/bookings", json=body).status_code

            made += list(pool.map(book, range(racers))).count(201)
        usage = client.get("/clinic/usage").json()["bookings_made"]
    return made, usage


def test_lost_update_counts_concurrent_bookings_of_one_clinic_as_one(demo: DemoFactory) -> None:
    made, usage = _concurrent_bookings(demo("lost-update"))
    assert made == 32 and usage < made, (made, usage)
    made, usage = _concurrent_bookings(demo("none"))
    assert made == 32 and usage == made, (made, usage)


# --- tenant-leak ------------------------------------------------------------------------------


@pytest.mark.parametrize(("flaw", "leaks"), [("none", False), ("tenant-leak", True)])
def test_tenant_leak_search_returns_another_clinics_patient(demo: DemoFactory, flaw: str, leaks: bool) -> None:
    d = demo(flaw)
    victim, snoop = d.new_clinic(), d.new_clinic()
    victim.patient(f"Quentin {victim.marker}")
    found = snoop.get(f"/patients?q={victim.marker}").json()
    assert (len(found) == 1) is leaks, found
    if leaks:
        assert found[0]["clinic_marker"] == victim.marker  # the other clinic's data, labelled as such


# --- memory-leak ------------------------------------------------------------------------------


@pytest.mark.parametrize(("flaw", "leaks"), [("none", False), ("memory-leak", True)])
def test_memory_leak_keeps_every_response_it_served(demo: DemoFactory, flaw: str, leaks: bool) -> None:
    d = demo(flaw)
    t = d.new_clinic()
    for i in range(60):  # a ~16 KB practitioner list
        t.practitioner(name=f"Dr {i} " + "x" * 180)
    with t.client() as c:
        c.get("/practitioners")
        before = c.get("/stats").json()["rss_bytes"]
        for i in range(600):  # 600 distinct URLs (a cache-busting query string): ~10 MB of bodies
            assert c.get(f"/practitioners?page={i}").status_code == 200
        after = c.get("/stats").json()["rss_bytes"]
    grown_mb = (after - before) / 2**20
    if leaks:
        assert grown_mb > 6, grown_mb
    else:
        assert grown_mb < 4, grown_mb


# --- pool-exhaustion --------------------------------------------------------------------------


@pytest.mark.parametrize(("flaw", "fails"), [("none", False), ("pool-exhaustion", True)])
def test_pool_exhaustion_answers_503_only_under_concurrency(demo: DemoFactory, flaw: str, fails: bool) -> None:
    d = demo(flaw)
    t = d.new_clinic()
    assert t.post("/patients", {"name": "Alone Patient"}).status_code == 201  # fine on its own
    racers = 24
    statuses: list[int] = []
    with ThreadPoolExecutor(racers) as pool:
        for _burst in range(5):  # bounded: a burst may happen to interleave harmlessly
            barrier = threading.Barrier(racers)

            def create(i: int, barrier: threading.Barrier = barrier) -> int:
                with t.client() as c:
                    barrier.wait(timeout=10)
                    return c.post("/patients", json={"name": f"Busy Patient{i}"}).status_code

            statuses += pool.map(create, range(racers))
            if fails and 503 in statuses:
                break
    assert (503 in statuses) is fails, statuses
    assert set(statuses) <= {201, 503}


# --- crash-on-odd-input -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Zoë Ødegaard", "Cher"])
@pytest.mark.parametrize(("flaw", "crashes"), [("none", False), ("crash-on-odd-input", True)])
def test_crash_on_odd_input_is_a_500_on_a_valid_unusual_name(
    demo: DemoFactory, flaw: str, crashes: bool, name: str
) -> None:
    t = demo(flaw).new_clinic()
    assert t.post("/patients", {"name": "Ada Lovelace"}).status_code == 201
    assert t.post("/patients", {"name": name}).status_code == (500 if crashes else 201)


# --- functional-regression --------------------------------------------------------------------


@pytest.mark.parametrize(("flaw", "frees"), [("none", True), ("functional-regression", False)])
def test_functional_regression_cancel_no_longer_frees_the_slot(demo: DemoFactory, flaw: str, frees: bool) -> None:
    t = demo(flaw).new_clinic()
    pid, patient = t.practitioner(), t.patient()
    day = next_weekday(12)
    body = {"practitioner_id": pid, "patient_id": patient, "start": f"{day.isoformat()}T10:00"}
    first = t.post("/bookings", body)
    assert first.status_code == 201
    cancelled = t.post(f"/bookings/{first.json()['id']}/cancel", {})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    free = [s["start"] for s in t.get(f"/slots?practitioner_id={pid}&date={day.isoformat()}").json()["slots"]]
    assert (body["start"] in free) is frees
    assert t.post("/bookings", body).status_code == (201 if frees else 409)


# --- a downstream called badly: blocking-event-loop, downstream-slots ---------------------------


def _free_slot_burst(demo: Demo, racers: int) -> tuple[float, list[int]]:
    """``racers`` GET /slots released at once (one client each, made beforehand): the wall time
    from the release to the last answer, and the statuses."""
    t = demo.new_clinic()
    path = f"/slots?practitioner_id={t.practitioner()}&date={next_weekday(10).isoformat()}"
    clients = [t.client() for _ in range(racers)]
    barrier = threading.Barrier(racers + 1)
    try:
        for c in clients:
            assert c.get(path).status_code == 200  # connected and warm, alone it works

        def ask(c: Any) -> int:
            barrier.wait(timeout=10)
            return c.get(path).status_code

        with ThreadPoolExecutor(racers) as pool:
            futures = [pool.submit(ask, c) for c in clients]
            barrier.wait(timeout=10)
            started = time.perf_counter()
            statuses = [f.result(timeout=60) for f in futures]
            return time.perf_counter() - started, statuses
    finally:
        for c in clients:
            c.close()


def test_blocking_event_loop_answers_one_request_at_a_time(demo: DemoFactory) -> None:
    from booking_service.downstream import ROUND_TRIP_S

    racers = 12
    # The loop waits out each calendar round trip in turn: a lower bound, whatever the machine.
    wall_s, statuses = _free_slot_burst(demo("blocking-event-loop"), racers)
    assert statuses == [200] * racers
    assert wall_s >= racers * ROUND_TRIP_S * 0.95, wall_s
    # The same calendar called from worker threads (within its 8 slots) overlaps the waits.
    parallel_s, statuses = _free_slot_burst(demo("downstream-slots"), 8)
    assert statuses == [200] * 8
    assert parallel_s < 8 * ROUND_TRIP_S * 0.75, parallel_s


@pytest.mark.parametrize(("flaw", "fails"), [("none", False), ("downstream-slots", True)])
def test_downstream_slots_answer_503_when_every_slot_is_taken(demo: DemoFactory, flaw: str, fails: bool) -> None:
    from booking_service.downstream import ROUND_TRIP_S, SLOT_WAIT_S, SLOTS

    # Enough at once that the last ones would wait well past SLOT_WAIT_S for a slot.
    racers = SLOTS * (2 + round(2 * SLOT_WAIT_S / ROUND_TRIP_S))
    statuses: list[int] = []
    for _burst in range(3):  # bounded: a burst may arrive spread out enough to fit
        statuses += _free_slot_burst(demo(flaw), racers)[1]
        if fails and 503 in statuses:
            break
    assert (503 in statuses) is fails, statuses
    assert set(statuses) <= {200, 503}
