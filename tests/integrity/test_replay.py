"""A leak suspected under load is replayed before it is reported (harness.integrity.replay).

Each test writes the suspicion the load engine would have recorded into a ledger, serves the
loopback job desk (``shared_queue``) and runs the integrity check over real HTTP: what the
replays as the credited customer and as the data's owner bring back decides the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.integrity.ledger import Ledger
from harness.integrity.replay import CONCURRENT_PAIRS, SUSPICIONS_PER_REQUEST
from harness.records import IntegrityResult
from tests.integrity.shared_queue import INVARIANTS, Desk, check_desk, customers, serve

CUSTOMERS = customers(4)
RECEIPT = "GET /jobs/{id}/receipt"

def suspect(folder: Path, *leaks: dict[str, Any]) -> Path:
    """A ledger holding what the load engine records when a response carries a foreign marker."""
    with Ledger.open(folder) as ledger:
        for leak in leaks:
            ledger.observe_leak(status=200, at=100.0, **leak)
    return folder


def check(tmp_path: Path, url: str, ledger: Path, invariants: str = INVARIANTS,
          people: list[dict[str, Any]] = CUSTOMERS) -> IntegrityResult:  # fmt: skip
    return check_desk(tmp_path, url, ledger, people, invariants)


def finished(desk: Desk, submitter: int, worker: int) -> int:
    ident = desk.submit(submitter)
    desk.queue.remove(ident)
    desk.jobs[ident].update(done=True, worker=worker)
    return ident


def receipt_suspected(folder: Path, desk: Desk) -> Path:
    """Customer 2 finished customer 1's job; its receipt (read with 1's key) was credited to 2."""
    job = finished(desk, submitter=1, worker=2)
    return suspect(folder, {"customer": 2, "foreign": [1], "request": RECEIPT, "method": "GET",
                            "url": f"/jobs/{job}/receipt"})  # fmt: skip


def test_a_receipt_its_worker_cannot_read_is_checked_and_not_reported(tmp_path: Path) -> None:
    desk = Desk()
    ledger = receipt_suspected(tmp_path / "ledger", desk)
    with serve(desk) as url:
        result = check(tmp_path, url, ledger)
    assert result.violations == () and result.status == "passed"
    replay = result.leak_replay
    assert replay is not None
    assert (replay.suspected, replay.confirmed, replay.not_confirmed, replay.unverified) == (1, 0, 1, 0)
    assert desk.requests[RECEIPT] == replay.requests == 2 + 2 * CONCURRENT_PAIRS
    [said] = replay.findings
    assert said.startswith(f"{RECEIPT}: checked by replay and not confirmed")
    assert "as customer 2" in said and "404 (refused)" in said and "as customer 1, whose marker it carried, 200" in said
    assert "as_customer" in said  # the fix: credit the request to the submitter
    assert "checked and not confirmed (not reported)" in result.note
    assert result.checks["isolation-replay"] == replay.requests


def mine_suspected(tmp_path: Path, desk: Desk, owners: tuple[int, ...]) -> IntegrityResult:
    """Customer 0's GET /mine carried the markers of ``owners`` under load; check it by replay."""
    for customer in (0, *owners):
        desk.submit(customer)
    ledger = suspect(tmp_path / "ledger", {"customer": 0, "foreign": list(owners), "request": "GET /mine",
                                           "method": "GET", "url": "/mine"})  # fmt: skip
    with serve(desk) as url:
        return check(tmp_path, url, ledger)


def test_a_list_that_forgets_its_filter_is_confirmed_by_replay(tmp_path: Path) -> None:
    desk = Desk(leaky=True)
    result = mine_suspected(tmp_path, desk, owners=(1, 2))
    assert result.status == "failed"
    [v] = result.violations
    assert (v.kind, v.check, v.customer) == ("isolation-leak", "isolation-under-load", "0")
    assert "confirmed by replay" in v.detail
    assert "replayed as customer 0, GET /mine answered 200 with the markers of customer(s) 1, 2" in v.detail
    assert result.leak_replay is not None and result.leak_replay.confirmed == 1
    assert desk.requests["GET /mine"] == 1  # confirmed by the first replay: no more needed


def test_a_leak_to_the_owner_of_the_marker_is_a_leak_too(tmp_path: Path) -> None:
    desk = Desk(leaky_for=frozenset({1}))  # only customer 1's list forgets the filter
    result = mine_suspected(tmp_path, desk, owners=(1,))
    [v] = result.violations
    assert "replayed as customer 1, whose marker it carried, GET /mine answered 200 with the markers of customer(s) 0" in v.detail


def test_a_leak_only_overlapping_requests_show_is_confirmed_by_replaying_them_together(tmp_path: Path) -> None:
    desk = Desk(shared_context=True)
    result = mine_suspected(tmp_path, desk, owners=(1,))
    [v] = result.violations
    assert "confirmed by replay" in v.detail and "at once" in v.detail, v.detail
    assert result.leak_replay is not None and result.leak_replay.confirmed == 1


def test_a_write_is_not_replayed_and_its_suspicion_is_reported_saying_so(tmp_path: Path) -> None:
    desk = Desk()
    ledger = suspect(tmp_path / "ledger", {"customer": 3, "foreign": [1], "request": "POST /jobs",
                                           "method": "POST", "url": "/jobs"})  # fmt: skip
    with serve(desk) as url:
        result = check(tmp_path, url, ledger)
    [v] = result.violations
    assert "not confirmed by replay" in v.detail and "a POST is not replayed" in v.detail
    assert desk.requests == {} and desk.jobs == {}  # nothing was sent again, nothing created
    assert result.leak_replay is not None and result.leak_replay.unverified == 1


def test_without_auth_headers_a_suspicion_cannot_be_replayed_and_is_reported(tmp_path: Path) -> None:
    desk = Desk()
    ledger = receipt_suspected(tmp_path / "ledger", desk)
    with serve(desk) as url:
        result = check(tmp_path, url, ledger, invariants="NOTHING = None\n")
    [v] = result.violations
    assert "no auth_headers(customer)" in v.detail
    assert RECEIPT not in desk.requests


def test_replays_are_bounded_however_many_customers_are_suspected(tmp_path: Path) -> None:
    people = customers(60)
    desk = Desk()
    jobs = [finished(desk, submitter=i, worker=(i + 1) % 60) for i in range(60)]
    ledger = suspect(tmp_path / "ledger", *(
        {"customer": (i + 1) % 60, "foreign": [i], "request": RECEIPT, "method": "GET", "url": f"/jobs/{job}/receipt"}
        for i, job in enumerate(jobs)
    ))  # fmt: skip
    with serve(desk) as url:
        result = check(tmp_path, url, ledger, people=people)
    replay = result.leak_replay
    assert replay is not None and (replay.suspected, replay.not_confirmed) == (60, 60)
    assert desk.requests[RECEIPT] == SUSPICIONS_PER_REQUEST * (2 + 2 * CONCURRENT_PAIRS)
    assert result.violations == ()
    assert f"60 suspicion(s), {SUSPICIONS_PER_REQUEST} replayed" in replay.findings[0]
