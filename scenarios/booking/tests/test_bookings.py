"""The booking flow: free slots, booking, double booking, cancelling, validation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
from conftest import Clinic, expect

Row = dict[str, Any]


def test_an_open_day_offers_every_slot_of_opening_hours(
    clinic: Clinic, practitioner: Row, booking_day: date
) -> None:
    body = expect(
        clinic.client.get(
            "/slots", params={"practitioner_id": practitioner["id"], "date": str(booking_day)}
        ),
        200,
    )
    assert body["date"] == str(booking_day)
    assert body["practitioner_id"] == practitioner["id"]
    starts = [slot["start"] for slot in body["slots"]]
    assert len(starts) == 16  # 09:00–17:00 in 30-minute slots
    assert starts[0] == f"{booking_day}T09:00"
    assert starts[-1] == f"{booking_day}T16:30"
    assert body["slots"][0]["end"] == f"{booking_day}T09:30"


def test_a_closed_day_has_no_slots(clinic: Clinic, practitioner: Row, closed_day: date) -> None:
    assert clinic.free_slots(practitioner["id"], closed_day) == []


def test_booking_flow(clinic: Clinic, practitioner: Row, patient: Row, booking_day: date) -> None:
    start = clinic.free_slots(practitioner["id"], booking_day)[3]

    booked = expect(
        clinic.book(practitioner["id"], patient["id"], start, note="first visit ✓"), 201
    )
    assert booked["status"] == "active"
    assert booked["start"] == start
    assert booked["end"] == f"{booking_day}T11:00"
    assert booked["note"] == "first visit ✓"
    assert booked["clinic_marker"] == clinic.marker

    assert start not in clinic.free_slots(practitioner["id"], booking_day)
    read = expect(clinic.client.get(f"/bookings/{booked['id']}"), 200)
    assert read == booked
    listed = expect(clinic.client.get("/bookings", params={"date": str(booking_day)}), 200)
    assert [b["id"] for b in listed] == [booked["id"]]


def test_double_booking_a_slot_is_409(
    clinic: Clinic, practitioner: Row, patient: Row, booking_day: date
) -> None:
    other = clinic.patient()
    start = f"{booking_day}T11:00"
    expect(clinic.book(practitioner["id"], patient["id"], start), 201)

    assert clinic.book(practitioner["id"], other["id"], start).status_code == 409
    assert clinic.book(practitioner["id"], patient["id"], start).status_code == 409
    listed = expect(
        clinic.client.get(
            "/bookings", params={"date": str(booking_day), "practitioner_id": practitioner["id"]}
        ),
        200,
    )
    assert len([b for b in listed if b["status"] == "active"]) == 1


def test_the_same_time_with_another_practitioner_is_fine(
    clinic: Clinic, practitioner: Row, patient: Row, booking_day: date
) -> None:
    other = clinic.practitioner()
    start = f"{booking_day}T11:00"
    expect(clinic.book(practitioner["id"], patient["id"], start), 201)
    expect(clinic.book(other["id"], patient["id"], start), 201)


def test_cancel_frees_the_slot(
    clinic: Clinic, practitioner: Row, patient: Row, booking_day: date
) -> None:
    start = f"{booking_day}T14:30"
    booked = expect(clinic.book(practitioner["id"], patient["id"], start), 201)

    cancelled = expect(clinic.cancel(booked["id"]), 200)
    assert cancelled["status"] == "cancelled"
    assert expect(clinic.client.get(f"/bookings/{booked['id']}"), 200)["status"] == "cancelled"
    assert start in clinic.free_slots(practitioner["id"], booking_day)

    rebooked = expect(clinic.book(practitioner["id"], clinic.patient()["id"], start), 201)
    assert rebooked["id"] != booked["id"]
    assert start not in clinic.free_slots(practitioner["id"], booking_day)


def test_cancel_is_idempotent(
    clinic: Clinic, practitioner: Row, patient: Row, booking_day: date
) -> None:
    start = f"{booking_day}T09:30"
    booked = expect(clinic.book(practitioner["id"], patient["id"], start), 201)

    first = expect(clinic.cancel(booked["id"]), 200)
    for _ in range(3):
        again = expect(clinic.cancel(booked["id"]), 200)
        assert again["status"] == "cancelled"
        assert again["start"] == first["start"]
    assert start in clinic.free_slots(practitioner["id"], booking_day)


def test_cancel_of_an_unknown_booking_is_404(clinic: Clinic) -> None:
    assert clinic.cancel(999999999).status_code == 404


@pytest.mark.parametrize(
    ("start", "why"),
    [
        ("T09:10", "not aligned to a 30-minute slot"),
        ("T08:30", "before opening"),
        ("T17:00", "at closing time"),
        ("T23:30", "after closing"),
    ],
)
def test_a_time_that_is_not_a_slot_is_422(
    clinic: Clinic, practitioner: Row, patient: Row, booking_day: date, start: str, why: str
) -> None:
    response = clinic.book(practitioner["id"], patient["id"], f"{booking_day}{start}")
    assert response.status_code in (400, 422), why


def test_booking_on_a_closed_day_is_422(
    clinic: Clinic, practitioner: Row, patient: Row, closed_day: date
) -> None:
    response = clinic.book(practitioner["id"], patient["id"], f"{closed_day}T10:00")
    assert response.status_code in (400, 422)


@pytest.mark.parametrize(
    "change",
    [
        {"start": "2030-02-30T09:00"},
        {"start": "not a time"},
        {"start": "2030-01-07 25:00"},
        {"start": 1893916800},
        {"start": None},
        {"practitioner_id": "one"},
        {"patient_id": [1]},
        {"practitioner_id": None},
    ],
    ids=[
        "impossible-date", "garbage-start", "hour-25", "start-int", "start-null",
        "practitioner-text", "patient-list", "practitioner-null",
    ],
)  # fmt: skip
def test_malformed_booking_is_4xx(
    clinic: Clinic, practitioner: Row, patient: Row, booking_day: date, change: Row
) -> None:
    body = {
        "practitioner_id": practitioner["id"],
        "patient_id": patient["id"],
        "start": f"{booking_day}T10:00",
        **change,
    }
    assert clinic.client.post("/bookings", json=body).status_code in (400, 422)


@pytest.mark.parametrize("missing", ["practitioner_id", "patient_id", "start"])
def test_booking_with_a_missing_field_is_4xx(
    clinic: Clinic, practitioner: Row, patient: Row, booking_day: date, missing: str
) -> None:
    body = {
        "practitioner_id": practitioner["id"],
        "patient_id": patient["id"],
        "start": f"{booking_day}T10:00",
    }
    del body[missing]
    assert clinic.client.post("/bookings", json=body).status_code in (400, 422)


@pytest.mark.parametrize(
    "change",
    [
        {"date": "2030-13-01"},
        {"date": "yesterday"},
        {"date": ""},
        {"date": None},
        {"practitioner_id": "x"},
        {"practitioner_id": None},
    ],
    ids=["month-13", "word", "empty-date", "no-date", "practitioner-text", "no-practitioner"],
)
def test_malformed_slot_queries_are_4xx(
    clinic: Clinic, practitioner: Row, booking_day: date, change: dict[str, str | None]
) -> None:
    query = {"practitioner_id": practitioner["id"], "date": str(booking_day), **change}
    query = {key: value for key, value in query.items() if value is not None}
    assert clinic.client.get("/slots", params=query).status_code in (400, 422)


def test_booking_an_unknown_patient_or_practitioner_is_404(
    clinic: Clinic, practitioner: Row, patient: Row, booking_day: date
) -> None:
    start = f"{booking_day}T10:00"
    assert clinic.book(practitioner["id"], 999999999, start).status_code == 404
    assert clinic.book(999999999, patient["id"], start).status_code == 404


@pytest.mark.concurrency
def test_concurrent_bookings_of_one_slot_have_one_winner(
    clinic: Clinic, practitioner: Row, booking_day: date
) -> None:
    """Several clients race for the same slot: exactly one gets 201, the rest 409."""
    patients = [clinic.patient() for _ in range(8)]
    start = f"{booking_day + timedelta(days=1)}T10:00"

    barrier = threading.Barrier(len(patients), timeout=10)

    def attempt(patient: Row) -> int:
        barrier.wait()  # all requests leave together
        return clinic.book(practitioner["id"], patient["id"], start).status_code

    with ThreadPoolExecutor(max_workers=len(patients)) as pool:
        statuses = sorted(pool.map(attempt, patients))

    assert statuses == [201] + [409] * (len(patients) - 1)
