"""Tenant isolation: one clinic never sees or touches another clinic's data."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from conftest import Clinic, NewClinic, expect, unique


@pytest.fixture
def other(new_clinic: NewClinic) -> Clinic:
    return new_clinic()


def test_another_clinics_patient_is_404_and_absent_from_search(
    clinic: Clinic, other: Clinic
) -> None:
    name = unique("Private Patient")
    theirs = other.patient(name=name)
    clinic.patient(name=unique("Own Patient"))

    assert clinic.client.get(f"/patients/{theirs['id']}").status_code == 404
    assert clinic.search_patients(name) == []
    assert clinic.search_patients(name.upper()) == []
    listing = expect(clinic.client.get("/patients", params={"limit": 100}), 200)
    assert theirs["id"] not in {p["id"] for p in listing}
    assert {p["clinic_marker"] for p in listing} <= {clinic.marker}
    # ...while its owner still finds it
    assert [p["id"] for p in other.search_patients(name)] == [theirs["id"]]


def test_another_clinics_booking_is_404_and_cannot_be_cancelled(
    clinic: Clinic, other: Clinic, booking_day: date
) -> None:
    doctor, patient = other.practitioner(), other.patient()
    theirs = expect(other.book(doctor["id"], patient["id"], f"{booking_day}T10:00"), 201)

    assert clinic.client.get(f"/bookings/{theirs['id']}").status_code == 404
    assert clinic.cancel(theirs["id"]).status_code == 404
    assert expect(other.client.get(f"/bookings/{theirs['id']}"), 200)["status"] == "active"
    listed = expect(clinic.client.get("/bookings", params={"date": str(booking_day)}), 200)
    assert theirs["id"] not in {b["id"] for b in listed}


def test_another_clinics_practitioner_and_patient_cannot_be_booked(
    clinic: Clinic, other: Clinic, booking_day: date
) -> None:
    own_doctor, own_patient = clinic.practitioner(), clinic.patient()
    their_doctor, their_patient = other.practitioner(), other.patient()
    start = f"{booking_day}T11:00"

    assert clinic.book(their_doctor["id"], own_patient["id"], start).status_code == 404
    assert clinic.book(own_doctor["id"], their_patient["id"], start).status_code == 404
    response = clinic.client.get(
        "/slots", params={"practitioner_id": their_doctor["id"], "date": str(booking_day)}
    )
    assert response.status_code == 404
    listed: list[dict[str, Any]] = expect(clinic.client.get("/practitioners"), 200)
    assert [p["id"] for p in listed] == [own_doctor["id"]]


def test_reports_count_only_the_callers_bookings(
    clinic: Clinic, other: Clinic, booking_day: date
) -> None:
    doctor, patient = other.practitioner(), other.patient()
    expect(other.book(doctor["id"], patient["id"], f"{booking_day}T10:00"), 201)

    report = expect(clinic.client.get("/reports/daily", params={"date": str(booking_day)}), 200)
    assert report["bookings"] == 0
    assert report["clinic_marker"] == clinic.marker
