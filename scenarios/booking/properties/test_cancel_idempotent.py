"""Property: cancelling a booking any number of times leaves the same state: cancelled, slot free."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from conftest import Clinic, NewClinic, expect, open_monday
from hypothesis import given
from hypothesis import strategies as st

DAY = open_monday(weeks_ahead=6)


@pytest.fixture(scope="module")
def clinic(new_clinic: NewClinic) -> Clinic:
    return new_clinic()


@given(
    cancels=st.integers(min_value=1, max_value=5),
    weekday=st.integers(min_value=0, max_value=4),
    slot=st.integers(min_value=0, max_value=15),
)
def test_cancel_is_idempotent_and_frees_the_slot(
    clinic: Clinic, cancels: int, weekday: int, slot: int
) -> None:
    day = DAY + timedelta(days=weekday)
    start = f"{day}T{9 + slot // 2:02d}:{30 * (slot % 2):02d}"
    doctor = clinic.practitioner()  # an empty diary for every example
    patient = clinic.patient()
    booked = expect(clinic.book(doctor["id"], patient["id"], start), 201)

    bodies: list[dict[str, Any]] = [
        expect(clinic.cancel(booked["id"]), 200) for _ in range(cancels)
    ]

    for body in bodies:
        assert body["status"] == "cancelled"
        assert {k: body[k] for k in ("id", "start", "end", "patient_id")} == {
            k: bodies[0][k] for k in ("id", "start", "end", "patient_id")
        }
    assert expect(clinic.client.get(f"/bookings/{booked['id']}"), 200)["status"] == "cancelled"
    assert start in clinic.free_slots(doctor["id"], day), f"{start} still taken after cancel"
    report = expect(clinic.client.get("/reports/daily", params={"date": str(day)}), 200)
    row = {r["practitioner_id"]: r for r in report["by_practitioner"]}.get(doctor["id"])
    assert row is None or row["bookings"] == 0
    expect(clinic.book(doctor["id"], patient["id"], start), 201)
