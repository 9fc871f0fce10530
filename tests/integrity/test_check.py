"""harness.integrity.check: check_tier end to end, on hand-made ledgers and a fake booking API.

The fake API (an ``httpx.MockTransport``) speaks the demo service's booking API closely enough
for the booking pack's own invariants.py to run against it, and each test breaks it on purpose.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from harness.credentials import CredentialRefresher
from harness.integrity.check import check_tier
from harness.integrity.counters import read_counters
from harness.integrity.declare import Read, invariant, isolation_reads, load_invariants, violation
from harness.integrity.ledger import Ledger
from harness.pacing import RequestPacer
from harness.records import IntegrityResult

PACK_INVARIANTS = Path(__file__).resolve().parents[2] / "scenarios" / "booking" / "invariants.py"
TOKEN = "srmt01"
DAY = "2030-01-07"


def marker(index: int) -> str:
    return f"{TOKEN}c{index:06d}"


CUSTOMERS = [{"index": i, "marker": marker(i), "api_key": f"key-{i}"} for i in range(6)]


class FakeBookingApi:
    """An in-memory booking API for a few clinics, with switches that break it."""

    def __init__(self) -> None:
        self.bookings: dict[int, dict[str, Any]] = {}
        self.owner: dict[int, int] = {}
        self.patients = {i: [{"id": 100 + i, "name": f"Patient {i}a", "clinic_marker": marker(i)}] for i in range(6)}
        self.usage = dict.fromkeys(range(6), 3)  # bookings made: 3 each at provisioning
        self.leaky_search = False
        self.ignore_owner_on_read = False
        self.down = False
        self.expired_keys: set[str] = set()  # refused with a 401, though no record says they expire
        self.requests = 0
        self._lock = threading.Lock()

    def add(self, ident: int, clinic: int, practitioner: int, patient: int, start: str, status: str = "active") -> None:
        self.bookings[ident] = {
            "id": ident, "practitioner_id": practitioner, "patient_id": patient, "start": start,
            "status": status, "clinic_marker": marker(clinic),
        }  # fmt: skip
        self.owner[ident] = clinic

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests += 1
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        key = request.headers.get("X-API-Key", "")
        clinic = int(key.split("-")[1]) if key.startswith("key-") else None
        if clinic is None or key in self.expired_keys:
            return httpx.Response(401)
        path = request.url.path
        if path == "/clinic/usage":
            return httpx.Response(200, json={"bookings_made": self.usage[clinic], "clinic_marker": marker(clinic)})
        if m := re.fullmatch(r"/bookings/(\d+)", path):
            ident = int(m.group(1))
            found = self.bookings.get(ident)
            if found is None or (self.owner[ident] != clinic and not self.ignore_owner_on_read):
                return httpx.Response(404, json={"detail": "not found"})
            return httpx.Response(200, json=found)
        if path == "/bookings":
            day = request.url.params.get("date", "")
            rows = [b for i, b in self.bookings.items() if self.owner[i] == clinic and b["start"].startswith(day)]
            return httpx.Response(200, json=rows)
        if path == "/patients":
            if self.leaky_search:
                rows = [p for ps in self.patients.values() for p in ps]
            else:
                rows = self.patients[clinic]
            return httpx.Response(200, json=rows)
        return httpx.Response(200, json={"clinic_marker": marker(clinic)})


@pytest.fixture
def api() -> FakeBookingApi:
    return FakeBookingApi()


@pytest.fixture
def ledger_dir(tmp_path: Path) -> Path:
    return tmp_path / "ledger"


def write_ledger(folder: Path, *records: dict[str, Any]) -> None:
    with Ledger.open(folder) as ledger:
        for r in records:
            ledger.record(**r)


def create(customer: int, ident: int | None, practitioner: int, patient: int, start: str, *, status: int = 201, at: float = 100.0, took: float = 0.1) -> dict[str, Any]:
    return {
        "customer": customer, "kind": "booking", "op": "create", "status": status, "ident": ident,
        "content": {"practitioner_id": practitioner, "patient_id": patient, "start": start},
        "started": at, "ended": at + took,
    }  # fmt: skip


def cancel(customer: int, ident: int, *, status: int = 200, at: float = 200.0) -> dict[str, Any]:
    return {"customer": customer, "kind": "booking", "op": "delete", "status": status, "ident": ident, "started": at, "ended": at + 0.05}


def check(api: FakeBookingApi, ledger_dir: Path, invariants: Any = PACK_INVARIANTS, **options: Any) -> IntegrityResult:
    ledger_dir.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"sample": 100, "request_timeout_s": 2.0, "concurrency": 8, "customers": CUSTOMERS,
                              **options}  # fmt: skip
    return check_tier(
        invariants, base_url="http://target.test", ledger_dir=ledger_dir,
        transport=httpx.MockTransport(api.handle), **kwargs,
    )  # fmt: skip


# --- check_tier end to end on the fake API -------------------------------------------------------


def test_a_healthy_target_passes_and_says_what_it_checked(api: FakeBookingApi, ledger_dir: Path) -> None:
    for i in range(6):
        api.add(10 + i, i, practitioner=i, patient=100 + i, start=f"{DAY}T09:00")
    api.add(20, 0, practitioner=0, patient=100, start=f"{DAY}T10:00", status="cancelled")
    write_ledger(
        ledger_dir,
        *(create(i, 10 + i, i, 100 + i, f"{DAY}T09:00") for i in range(6)),
        create(0, 20, 0, 100, f"{DAY}T10:00"),
        cancel(0, 20),
        create(1, None, 1, 101, f"{DAY}T09:00", status=409),  # refused: nothing happened
    )
    result = check(api, ledger_dir)
    assert result.status == "passed", result
    assert result.violations == ()
    assert result.checks["set"] == 6 and result.checks["deleted"] == 1
    assert result.checks["unique"] >= 9 and result.checks["isolation"] > 0
    assert result.checked > 9  # 9 operations plus every read made


@pytest.mark.parametrize("refreshed", [False, True])
def test_keys_that_stop_working_without_a_stated_expiry_are_refreshed_on_the_first_401(
    api: FakeBookingApi, ledger_dir: Path, refreshed: bool
) -> None:
    for i in range(6):
        api.add(10 + i, i, practitioner=i, patient=100 + i, start=f"{DAY}T09:00")
    write_ledger(ledger_dir, *(create(i, 10 + i, i, 100 + i, f"{DAY}T09:00") for i in range(6)))
    customers = [dict(c) for c in CUSTOMERS]
    api.expired_keys = {c["api_key"] for c in customers}
    issued: list[int] = []

    def new_key(client: httpx.Client, customer: Mapping[str, Any]) -> dict[str, Any]:
        issued.append(customer["index"])
        return {"api_key": f"key-{customer['index']}-r{len(issued)}"}

    refresher = CredentialRefresher(new_key, httpx.Client, auth_headers=lambda c: {"X-API-Key": c["api_key"]})
    result = check(api, ledger_dir, customers=customers, credentials=refresher if refreshed else None)
    if refreshed:
        assert result.status == "passed", result
        assert result.checks["set"] == 6
        assert sorted(issued) == list(range(6))  # each customer once, however many reads it made
    else:
        # Every read as another customer was refused, as isolation wants, but no write was verified.
        assert result.status == "error", result
        assert "none of the 6 acknowledged writes sampled could be read back" in result.note
        assert "401" in result.note


def test_every_read_of_the_check_takes_a_slot_of_the_packs_max_rps(api: FakeBookingApi, ledger_dir: Path) -> None:
    for i in range(6):
        api.add(10 + i, i, practitioner=i, patient=100 + i, start=f"{DAY}T09:00")
    write_ledger(ledger_dir, *(create(i, 10 + i, i, 100 + i, f"{DAY}T09:00") for i in range(6)))
    pacer = RequestPacer(2000.0)
    result = check(api, ledger_dir, pacer=pacer)
    assert result.status == "passed", result
    assert api.requests > 0 and pacer.requests == api.requests


def test_an_acknowledged_booking_that_is_gone_is_a_lost_write(api: FakeBookingApi, ledger_dir: Path) -> None:
    api.add(10, 0, practitioner=1, patient=100, start=f"{DAY}T09:00")
    write_ledger(ledger_dir, create(0, 10, 1, 100, f"{DAY}T09:00"), create(0, 11, 1, 100, f"{DAY}T09:30", at=150.0))
    result = check(api, ledger_dir)
    assert result.status == "failed"
    [v] = result.violations
    assert (v.kind, v.customer, v.identifiers, v.check) == ("lost-write", "0", ("11",), "set")
    assert v.first_seen == pytest.approx(150.1)


def test_an_acknowledged_booking_with_other_content_is_a_lost_write(api: FakeBookingApi, ledger_dir: Path) -> None:
    api.add(10, 0, practitioner=1, patient=999, start=f"{DAY}T09:00")
    write_ledger(ledger_dir, create(0, 10, 1, 100, f"{DAY}T09:00"))
    [v] = check(api, ledger_dir).violations
    assert v.kind == "lost-write" and "999" in v.detail and "100" in v.detail


def test_unknown_outcomes_raise_no_false_alarm(api: FakeBookingApi, ledger_dir: Path) -> None:
    api.add(11, 0, practitioner=1, patient=100, start=f"{DAY}T09:30")  # applied despite the 504
    write_ledger(
        ledger_dir,
        create(0, 10, 1, 100, f"{DAY}T09:00", status=502),  # absent: fine
        create(0, 11, 1, 100, f"{DAY}T09:30", status=504),  # present, same content: fine
        create(0, None, 1, 100, f"{DAY}T10:00", status=0),  # timed out, no id: nothing to read
    )
    result = check(api, ledger_dir)
    assert result.status == "passed" and result.violations == ()


def test_an_unknown_write_present_with_other_content_is_half_written(api: FakeBookingApi, ledger_dir: Path) -> None:
    api.add(11, 0, practitioner=1, patient=555, start=f"{DAY}T09:30")
    write_ledger(ledger_dir, create(0, 11, 1, 100, f"{DAY}T09:30", status=500))
    [v] = check(api, ledger_dir).violations
    assert (v.kind, v.identifiers) == ("half-written", ("11",))


def test_two_active_bookings_of_one_slot_are_one_duplicate(api: FakeBookingApi, ledger_dir: Path) -> None:
    api.add(10, 2, practitioner=7, patient=102, start=f"{DAY}T11:00")
    api.add(11, 2, practitioner=7, patient=103, start=f"{DAY}T11:00")
    write_ledger(
        ledger_dir,
        create(2, 10, 7, 102, f"{DAY}T11:00", at=100.0, took=0.2),
        create(2, 11, 7, 103, f"{DAY}T11:00", at=100.05, took=0.3),
    )
    result = check(api, ledger_dir)
    assert result.status == "failed"
    [v] = result.violations  # the ledger and the read-back agree: reported once
    assert (v.kind, v.identifiers, v.customer, v.check) == ("duplicate", ("10", "11"), "2", "unique")
    assert v.first_seen == pytest.approx(100.35)  # when the second booking was acknowledged


def test_a_slot_booked_again_after_a_cancel_is_not_a_duplicate(api: FakeBookingApi, ledger_dir: Path) -> None:
    api.add(10, 2, practitioner=7, patient=102, start=f"{DAY}T11:00", status="cancelled")
    api.add(11, 2, practitioner=7, patient=103, start=f"{DAY}T11:00")
    write_ledger(
        ledger_dir,
        create(2, 10, 7, 102, f"{DAY}T11:00", at=100.0),
        cancel(2, 10, at=101.0),
        create(2, 11, 7, 103, f"{DAY}T11:00", at=102.0),
    )
    assert check(api, ledger_dir).violations == ()


def test_an_acknowledged_cancel_that_comes_back_is_resurrected(api: FakeBookingApi, ledger_dir: Path) -> None:
    api.add(10, 3, practitioner=7, patient=103, start=f"{DAY}T11:00")  # active again
    write_ledger(ledger_dir, create(3, 10, 7, 103, f"{DAY}T11:00"), cancel(3, 10, at=150.0))
    [v] = check(api, ledger_dir).violations
    assert (v.kind, v.identifiers, v.check) == ("resurrected", ("10",), "deleted")
    assert v.first_seen == pytest.approx(150.05)


def test_a_cancel_of_unknown_outcome_may_or_may_not_have_happened(api: FakeBookingApi, ledger_dir: Path) -> None:
    api.add(10, 3, practitioner=7, patient=103, start=f"{DAY}T11:00")
    write_ledger(ledger_dir, create(3, 10, 7, 103, f"{DAY}T11:00"), cancel(3, 10, status=503))
    assert check(api, ledger_dir).violations == ()


def test_other_clinics_patients_in_a_search_are_a_leak(api: FakeBookingApi, ledger_dir: Path) -> None:
    api.leaky_search = True
    result = check(api, ledger_dir)
    assert result.status == "failed"
    leaks = [v for v in result.violations if v.kind == "isolation-leak"]
    assert leaks and all(v.check == "isolation" for v in leaks)
    first = leaks[0]
    own = int(first.customer)
    assert marker(own) not in first.identifiers and all(m.startswith(TOKEN) for m in first.identifiers)
    assert "GET /patients" in first.detail


def test_reading_another_clinics_booking_by_id_is_a_leak(api: FakeBookingApi, ledger_dir: Path) -> None:
    api.ignore_owner_on_read = True
    for i in range(6):
        api.add(10 + i, i, practitioner=i, patient=100 + i, start=f"{DAY}T09:00")
    write_ledger(ledger_dir, *(create(i, 10 + i, i, 100 + i, f"{DAY}T09:00") for i in range(6)))
    result = check(api, ledger_dir, sample=40)
    leaks = [v for v in result.violations if v.kind == "isolation-leak"]
    assert leaks and "should have been refused" in leaks[0].detail


def test_leaks_seen_during_the_load_are_reported_with_counts(api: FakeBookingApi, ledger_dir: Path) -> None:
    with Ledger.open(ledger_dir) as ledger:
        ledger.observe_leak(customer=1, foreign=[4], request="GET /patients", status=200, at=50.0)
        ledger.observe_leak(customer=1, foreign=[5], request="GET /patients", status=200, at=51.0)
    result = check(api, ledger_dir)
    [v] = result.violations
    assert (v.kind, v.check, v.customer, v.first_seen) == ("isolation-leak", "isolation-under-load", "1", 50.0)
    assert v.identifiers == (marker(4), marker(5)) and "2 time(s)" in v.detail
    assert result.checks["isolation-under-load"] == 2


def test_an_unreachable_target_is_an_error_not_an_exception(api: FakeBookingApi, ledger_dir: Path) -> None:
    api.down = True
    write_ledger(ledger_dir, *(create(i, 10 + i, i, 100 + i, f"{DAY}T09:00") for i in range(6)))
    result = check(api, ledger_dir, sample=500)
    assert result.status == "error" and result.violations == ()
    assert "unreachable" in result.note and "ConnectError" in result.note
    assert api.requests < 40  # it gave up early instead of trying every read


def test_the_time_budget_bounds_the_check(api: FakeBookingApi, ledger_dir: Path) -> None:
    write_ledger(ledger_dir, *(create(i % 6, 10 + i, i, 100, f"{DAY}T09:00") for i in range(50)))
    result = check(api, ledger_dir, time_budget_s=0.0)
    assert "time budget" in result.note and api.requests == 0


def test_an_empty_ledger_still_checks_isolation_and_says_so(api: FakeBookingApi, ledger_dir: Path) -> None:
    result = check(api, ledger_dir)
    assert result.status == "passed" and result.checks["isolation"] > 0
    assert "holds no operations" in result.note


def test_no_customers_is_skipped(api: FakeBookingApi, ledger_dir: Path) -> None:
    result = check_tier(PACK_INVARIANTS, base_url="http://x", customers=[], ledger_dir=ledger_dir, sample=5, request_timeout_s=1)
    assert result.status == "skipped"


def test_a_broken_invariants_file_is_an_error_result(tmp_path: Path, api: FakeBookingApi, ledger_dir: Path) -> None:
    broken = tmp_path / "invariants.py"
    broken.write_text("import nothing_here\n")
    result = check(api, ledger_dir, invariants=broken)
    assert result.status == "error" and "ModuleNotFoundError" in result.note and "line 1" in result.note


def module_with(**attrs: Any) -> ModuleType:
    module = ModuleType("fake_invariants")
    module.__dict__.update(attrs)
    return module


def test_custom_invariants_run_within_the_budget_and_their_failures_are_notes(
    api: FakeBookingApi, ledger_dir: Path
) -> None:
    @invariant
    def reports_add_up(operations: Any, api_: Any) -> list[Any]:
        response = api_.get(api_.customers[0], "/reports/daily", params={"date": DAY})
        assert response.status_code == 200
        return [violation("lost-write", 0, ["report"], "the report lost a booking")]

    @invariant(name="explodes")
    def broken(operations: Any, api_: Any) -> list[Any]:
        raise RuntimeError("pack bug")

    @isolation_reads
    def reads(customer: Any) -> list[Read]:
        return [Read("/clinic")]

    inv = load_invariants(module_with(a=reports_add_up, b=broken, reads=reads, auth_headers=lambda c: {"X-API-Key": c["api_key"]}))
    result = check(api, ledger_dir, invariants=inv)
    [v] = result.violations
    assert (v.check, v.detail) == ("reports_add_up", "the report lost a booking")
    assert "explodes" in result.note and "RuntimeError: pack bug" in result.note
    assert result.checks["reports_add_up"] == 1 and result.checks["explodes"] == 1


def test_a_leak_in_the_last_declared_read_is_found_when_the_sample_is_smaller_than_every_read(
    api: FakeBookingApi, ledger_dir: Path
) -> None:
    api.leaky_search = True

    @isolation_reads
    def reads(customer: Any) -> list[Read]:
        return [Read("/clinic"), Read("/clinic/usage"), Read("/bookings", {"date": DAY}), Read("/patients")]

    inv = load_invariants(module_with(reads=reads, auth_headers=lambda c: {"X-API-Key": c["api_key"]}))
    # 6 customers x 4 reads = 24, but only 6 reads in the budget: the search must be among them.
    result = check(api, ledger_dir, invariants=inv, sample=6)
    assert result.checks["isolation"] == 6
    assert any(v.kind == "isolation-leak" for v in result.violations), result


def test_the_result_serialises(api: FakeBookingApi, ledger_dir: Path) -> None:
    api.leaky_search = True
    result = check(api, ledger_dir)
    json.dumps([v.__dict__ for v in result.violations])


# --- @counter: a count must grow by the acknowledged writes it counts ---------------------------


def counters_now(api: FakeBookingApi, sample: int = 100) -> Any:
    return read_counters(PACK_INVARIANTS, base_url="http://target.test", customers=CUSTOMERS, sample=sample,
                         request_timeout_s=2.0, transport=httpx.MockTransport(api.handle))  # fmt: skip


def test_a_count_that_grew_by_less_than_the_acknowledged_writes_is_a_lost_update(
    api: FakeBookingApi, ledger_dir: Path
) -> None:
    before = counters_now(api)
    assert before.values[("bookings_made", 0)] == 3 and len(before.values) == 6
    # Three bookings of clinic 0, two of them in flight at once; the count says two were made.
    for ident, start in ((10, "09:00"), (11, "09:30"), (12, "10:00")):
        api.add(ident, 0, practitioner=0, patient=100, start=f"{DAY}T{start}")
    write_ledger(ledger_dir, create(0, 10, 0, 100, f"{DAY}T09:00", at=100.0),
                 create(0, 11, 0, 100, f"{DAY}T09:30", at=100.05), create(0, 12, 0, 100, f"{DAY}T10:00", at=300.0))  # fmt: skip
    api.usage[0] = 5
    result = check(api, ledger_dir, counters_before=before)
    assert result.status == "failed"
    [v] = result.violations
    assert (v.kind, v.customer, v.check) == ("lost-write", "0", "counter")
    assert "grew by 2 (3 -> 5)" in v.detail and "3 acknowledged creates" in v.detail
    assert "1 are missing" in v.detail and "2 of the writes overlapped" in v.detail
    assert v.first_seen == pytest.approx(100.0)
    assert result.checks["counter"] == 6


def test_a_count_that_kept_up_passes_and_unknown_or_refused_writes_are_not_owed(
    api: FakeBookingApi, ledger_dir: Path
) -> None:
    before = counters_now(api, sample=2)
    assert sorted(i for _, i in before.values) == [0, 1]  # the first by index: the busiest
    api.add(10, 0, practitioner=0, patient=100, start=f"{DAY}T09:00")
    write_ledger(ledger_dir, create(0, 10, 0, 100, f"{DAY}T09:00"),
                 create(0, None, 0, 100, f"{DAY}T09:30", status=409),  # refused: nothing happened
                 create(1, None, 1, 101, f"{DAY}T09:00", status=0))  # unknown: may not have happened
    api.usage[0] = 4
    api.usage[1] = 5  # more than the ledger says (an unknown write, a replay): not judged
    result = check(api, ledger_dir, counters_before=before)
    assert result.status == "passed", result
    assert result.checks["counter"] == 2


def test_without_readings_before_the_load_no_count_is_judged(api: FakeBookingApi, ledger_dir: Path) -> None:
    api.add(10, 0, practitioner=0, patient=100, start=f"{DAY}T09:00")
    write_ledger(ledger_dir, create(0, 10, 0, 100, f"{DAY}T09:00"))
    api.usage[0] = 0
    result = check(api, ledger_dir)
    assert result.status == "passed" and "counter" not in result.checks
