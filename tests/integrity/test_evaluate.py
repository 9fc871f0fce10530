"""harness.integrity.evaluate: the pure checkers, on hand-made ledger histories and read-backs."""

from __future__ import annotations

from typing import Any

from harness.integrity.declare import resource
from harness.integrity.evaluate import evaluate_resource, final_state_duplicates, ledger_duplicates
from harness.integrity.ledger import Operation, content_digest

BOOKING = resource(
    "booking",
    stable_fields=("practitioner_id", "patient_id", "start"),
    unique_key=lambda b: (b["practitioner_id"], b["start"]),
    is_active=lambda b: b.get("status", "active") == "active",
)


def op(op_: str, outcome: str, ident: str | None, *, t0: float, t1: float, customer: int = 0, **content: Any) -> Operation:
    body = content or None
    return Operation(t0, t1, customer, "booking", op_, outcome, ident, content_digest(body), body, None)


def test_a_lost_update_is_found() -> None:
    history = [
        op("create", "ok", "1", t0=0, t1=1, practitioner_id=1, patient_id=1, start="a"),
        op("update", "ok", "1", t0=2, t1=3, practitioner_id=1, patient_id=2, start="a"),
    ]
    stale = {"id": 1, "practitioner_id": 1, "patient_id": 1, "start": "a", "status": "active"}
    found = evaluate_resource(BOOKING, history, stale)
    assert found is not None and found.kind == "lost-write"
    assert evaluate_resource(BOOKING, history, {**stale, "patient_id": 2}) is None


def test_concurrent_updates_may_end_either_way() -> None:
    history = [
        op("create", "ok", "1", t0=0, t1=1, practitioner_id=1, patient_id=1, start="a"),
        op("update", "ok", "1", t0=2, t1=4, practitioner_id=1, patient_id=2, start="a"),
        op("update", "ok", "1", t0=3, t1=5, practitioner_id=1, patient_id=3, start="a"),
    ]
    base = {"id": 1, "practitioner_id": 1, "start": "a"}
    assert evaluate_resource(BOOKING, history, {**base, "patient_id": 2}) is None
    assert evaluate_resource(BOOKING, history, {**base, "patient_id": 3}) is None
    assert evaluate_resource(BOOKING, history, {**base, "patient_id": 1}) is not None


def test_an_unknown_update_after_an_acknowledged_create_mixes_to_half_written() -> None:
    history = [
        op("create", "ok", "1", t0=0, t1=1, practitioner_id=1, patient_id=1, start="a"),
        op("update", "unknown", "1", t0=2, t1=3, practitioner_id=2, patient_id=2, start="a"),
    ]
    base = {"id": 1, "start": "a"}
    assert evaluate_resource(BOOKING, history, {**base, "practitioner_id": 1, "patient_id": 1}) is None
    assert evaluate_resource(BOOKING, history, {**base, "practitioner_id": 2, "patient_id": 2}) is None
    found = evaluate_resource(BOOKING, history, {**base, "practitioner_id": 1, "patient_id": 2})
    assert found is not None and found.kind == "half-written"


def test_overlapping_create_and_cancel_of_one_slot_are_explained() -> None:
    # b started before a's cancel completed but after it was sent: the cancel may have come first.
    ops = [
        op("create", "ok", "a", t0=0, t1=1, practitioner_id=1, patient_id=1, start="s"),
        op("delete", "ok", "a", t0=5, t1=7),
        op("create", "ok", "b", t0=6, t1=8, practitioner_id=1, patient_id=2, start="s"),
    ]
    assert ledger_duplicates(ops, {"booking": BOOKING}) == []


def test_a_cancel_sent_after_the_second_booking_was_acknowledged_does_not_excuse_it() -> None:
    ops = [
        op("create", "ok", "a", t0=0, t1=1, practitioner_id=1, patient_id=1, start="s"),
        op("create", "ok", "b", t0=0.5, t1=2, practitioner_id=1, patient_id=2, start="s"),
        op("delete", "ok", "a", t0=5, t1=6),
    ]
    [v] = ledger_duplicates(ops, {"booking": BOOKING})
    assert v.kind == "duplicate" and v.identifiers == ("a", "b") and v.first_seen == 2


def test_one_id_handed_out_to_two_customers_is_a_duplicate() -> None:
    ops = [
        op("create", "ok", "7", t0=0, t1=1, customer=1, practitioner_id=1, patient_id=1, start="s"),
        op("create", "ok", "7", t0=0, t1=1, customer=2, practitioner_id=2, patient_id=2, start="t"),
    ]
    [v] = ledger_duplicates(ops, {"booking": BOOKING})
    assert v.identifiers == ("7",) and v.customer == "1,2" and "handed out" in v.detail


def test_final_state_ignores_cancelled_bookings() -> None:
    active = {"id": 1, "practitioner_id": 1, "start": "s", "status": "active"}
    cancelled = {"id": 2, "practitioner_id": 1, "start": "s", "status": "cancelled"}
    assert final_state_duplicates(BOOKING, [(0, active), (0, cancelled), (0, active)]) == []
    [v] = final_state_duplicates(BOOKING, [(0, active), (0, {**cancelled, "status": "active"})])
    assert v.identifiers == ("1", "2")
