"""Property: a slot is never double-booked, and the service's view agrees with a simple model.

A state machine books, cancels and rebooks a handful of slots of one practitioner, one request
at a time, and keeps its own model of which slot is taken by which booking. After every step
the free slots the service reports must be exactly the model's. (The race that lets two
concurrent requests both win is the load stage's business; this catches the logic.)
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from conftest import Clinic, NewClinic, expect, open_monday
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

#: Few slots, so the machine often tries a taken one.
SLOTS = ["09:00", "09:30", "10:00", "16:30"]


class BookingMachine(RuleBasedStateMachine):
    clinic: Clinic
    day: date

    patients = Bundle("patients")
    bookings = Bundle("bookings")

    def __init__(self) -> None:
        super().__init__()
        self.taken: dict[str, int] = {}  # slot start -> active booking id
        self.status: dict[int, str] = {}  # booking id -> "active" | "cancelled"
        self.slot_of: dict[int, str] = {}  # booking id -> slot start

    @initialize(target=patients)
    def a_practitioner_and_patients(self) -> Any:
        # A new practitioner per run: an empty diary the model can start from.
        self.practitioner_id = self.clinic.practitioner()["id"]
        return multiple(*(self.clinic.patient()["id"] for _ in range(2)))

    @rule(target=bookings, patient_id=patients, slot=st.sampled_from(SLOTS))
    def book(self, patient_id: int, slot: str) -> Any:
        start = f"{self.day}T{slot}"
        response = self.clinic.book(self.practitioner_id, patient_id, start)
        if start in self.taken:
            assert response.status_code == 409, (
                f"booking {start} while booking {self.taken[start]} holds it -> "
                f"{response.status_code}: {response.text[:200]}"
            )
            return multiple()
        body = expect(response, 201)
        assert body["status"] == "active"
        self.taken[start] = body["id"]
        self.status[body["id"]] = "active"
        self.slot_of[body["id"]] = start
        return body["id"]

    @rule(booking_id=bookings)
    def cancel(self, booking_id: int) -> None:
        body = expect(self.clinic.cancel(booking_id), 200)
        assert body["status"] == "cancelled"
        if self.status[booking_id] == "active":
            del self.taken[self.slot_of[booking_id]]
        self.status[booking_id] = "cancelled"

    @rule(booking_id=bookings)
    def read_back(self, booking_id: int) -> None:
        body = expect(self.clinic.client.get(f"/bookings/{booking_id}"), 200)
        assert body["status"] == self.status[booking_id]
        assert body["start"] == self.slot_of[booking_id]

    @rule(booking_id=consumes(bookings))
    def forget(self, booking_id: int) -> None:
        """Drop a booking from the bundle, so later steps favour the remaining ones."""

    @invariant()
    def free_slots_match_the_model(self) -> None:
        if not hasattr(self, "practitioner_id"):
            return
        free = set(self.clinic.free_slots(self.practitioner_id, self.day))
        for slot in SLOTS:
            start = f"{self.day}T{slot}"
            if start in self.taken:
                assert start not in free, f"{start} is booked ({self.taken[start]}) but listed free"
            else:
                assert start in free, f"{start} is not booked but missing from free slots"


@pytest.fixture(scope="module")
def clinic(new_clinic: NewClinic) -> Clinic:
    return new_clinic()


def test_a_slot_is_never_double_booked(clinic: Clinic) -> None:
    class Machine(BookingMachine):
        pass

    Machine.clinic = clinic
    Machine.day = open_monday(weeks_ahead=4)
    # max_examples comes from the active profile (the harness sets it); steps are ours.
    run_state_machine_as_test(Machine, settings=settings(stateful_step_count=12))
