"""Single-user latency of the key endpoints (pytest-benchmark).

The harness compares these with the baseline run. Rounds are few so the gate takes seconds;
each round is one request (or one book + cancel pair) from a warm keep-alive client.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from conftest import Clinic, NewClinic, expect

ROUNDS = 30
WARMUP_ROUNDS = 3


@pytest.fixture(scope="module")
def busy_clinic(new_clinic: NewClinic, booking_day: date) -> dict[str, Any]:
    """A clinic with a little data: 3 practitioners, 200 patients, a half-booked day."""
    clinic = new_clinic()
    doctors = [clinic.practitioner() for _ in range(3)]
    rows = [{"name": f"Bench Patient {i:03d}"} for i in range(200)]
    ids = expect(clinic.client.post("/patients/import", json={"patients": rows}), 201)["ids"]
    for doctor in doctors:
        for slot, patient_id in zip(
            clinic.free_slots(doctor["id"], booking_day)[::2], ids, strict=False
        ):
            expect(clinic.book(doctor["id"], patient_id, slot), 201)
    return {"clinic": clinic, "doctors": doctors, "patient_ids": ids}


def test_latency_get_slots(benchmark: Any, busy_clinic: dict[str, Any], booking_day: date) -> None:
    clinic: Clinic = busy_clinic["clinic"]
    params = {"practitioner_id": busy_clinic["doctors"][0]["id"], "date": str(booking_day)}

    response = benchmark.pedantic(
        clinic.client.get, args=("/slots",), kwargs={"params": params},
        rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS,
    )  # fmt: skip
    assert len(expect(response, 200)["slots"]) == 8


def _free_slots_ahead(clinic: Clinic, doctor_id: int, first_day: date) -> Iterator[str]:
    """Free slot starts from `first_day` onwards, weekdays only, lazily fetched day by day."""
    for offset in range(400):
        day = first_day + timedelta(days=offset)
        if day.weekday() < 5:
            yield from clinic.free_slots(doctor_id, day)


def test_latency_post_booking_and_cancel(
    benchmark: Any, busy_clinic: dict[str, Any], booking_day: date
) -> None:
    clinic: Clinic = busy_clinic["clinic"]
    doctor_id = busy_clinic["doctors"][1]["id"]
    patient_id = busy_clinic["patient_ids"][-1]
    # every round books a slot nobody has used yet, so a cancel bug cannot turn this into 409s
    slots = _free_slots_ahead(clinic, doctor_id, booking_day + timedelta(days=7))
    statuses: list[tuple[int, int]] = []

    def setup() -> tuple[tuple[str], dict[str, Any]]:
        return (next(slots),), {}

    def book_and_cancel(start: str) -> None:
        booked = clinic.book(doctor_id, patient_id, start)
        cancelled = clinic.cancel(booked.json()["id"]) if booked.status_code == 201 else booked
        statuses.append((booked.status_code, cancelled.status_code))

    benchmark.pedantic(book_and_cancel, setup=setup, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS)
    assert set(statuses) == {(201, 200)}


def test_latency_search_patients(benchmark: Any, busy_clinic: dict[str, Any]) -> None:
    clinic: Clinic = busy_clinic["clinic"]
    queries = itertools.cycle(["patient 01", "BENCH", "7", "no such person"])

    def search() -> int:
        return clinic.client.get("/patients", params={"q": next(queries), "limit": 20}).status_code

    benchmark.pedantic(search, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS)
    assert len(clinic.search_patients("Bench Patient 01", limit=20)) == 10


def test_latency_daily_report(
    benchmark: Any, busy_clinic: dict[str, Any], booking_day: date
) -> None:
    clinic: Clinic = busy_clinic["clinic"]

    response = benchmark.pedantic(
        clinic.client.get, args=("/reports/daily",), kwargs={"params": {"date": str(booking_day)}},
        rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS,
    )  # fmt: skip
    assert expect(response, 200)["bookings"] == 24
