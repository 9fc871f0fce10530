"""Property: whatever clinic A writes, clinic B can neither find nor read nor use it."""

from __future__ import annotations

from typing import Any

import pytest
from booking_strategies import valid_names
from conftest import Clinic, NewClinic, expect, open_monday
from hypothesis import given
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def tenants(new_clinic: NewClinic) -> dict[str, Any]:
    a, b = new_clinic(), new_clinic()
    a_doctor, a_patient = a.practitioner(), a.patient()
    day = open_monday(weeks_ahead=5)
    a_booking = expect(a.book(a_doctor["id"], a_patient["id"], f"{day}T09:00"), 201)
    b.patient(name="B's own patient")
    b_doctor = b.practitioner()
    return {
        "a": a, "b": b, "a_doctor": a_doctor, "a_booking": a_booking, "b_doctor": b_doctor,
        "day": day,
    }  # fmt: skip


def assert_only_own(clinic: Clinic, rows: list[dict[str, Any]], foreign_id: int) -> None:
    assert foreign_id not in [row["id"] for row in rows], (
        f"{clinic.marker} sees patient {foreign_id}"
    )
    markers = {row.get("clinic_marker") for row in rows}
    assert markers <= {clinic.marker}, f"{clinic.marker} sees rows of {markers - {clinic.marker}}"


@given(
    name=valid_names,
    query=st.sampled_from(["exact", "upper", "prefix", "empty"]),
)
def test_a_patient_of_one_clinic_is_invisible_to_another(
    tenants: dict[str, Any], name: str, query: str
) -> None:
    a: Clinic = tenants["a"]
    b: Clinic = tenants["b"]
    theirs = a.patient(name=name)
    q = {"exact": name, "upper": name.upper(), "prefix": name[:3], "empty": ""}[query]

    assert_only_own(b, b.search_patients(q), theirs["id"])
    assert b.client.get(f"/patients/{theirs['id']}").status_code == 404
    listed = expect(b.client.get("/patients", params={"limit": 100}), 200)
    assert_only_own(b, listed, theirs["id"])
    # nor can B book A's patient with B's own practitioner
    start = f"{tenants['day']}T10:00"
    assert b.book(tenants["b_doctor"]["id"], theirs["id"], start).status_code == 404


@given(what=st.sampled_from(["booking", "cancel", "slots", "book-practitioner", "bookings-list"]))
def test_a_booking_of_one_clinic_is_invisible_to_another(
    tenants: dict[str, Any], what: str
) -> None:
    b: Clinic = tenants["b"]
    booking, doctor, day = tenants["a_booking"], tenants["a_doctor"], tenants["day"]
    if what == "booking":
        assert b.client.get(f"/bookings/{booking['id']}").status_code == 404
    elif what == "cancel":
        assert b.cancel(booking["id"]).status_code == 404
    elif what == "slots":
        params = {"practitioner_id": doctor["id"], "date": str(day)}
        assert b.client.get("/slots", params=params).status_code == 404
    elif what == "book-practitioner":
        patient = b.patient()
        assert b.book(doctor["id"], patient["id"], f"{day}T11:00").status_code == 404
    else:
        listed = expect(b.client.get("/bookings", params={"date": str(day)}), 200)
        assert booking["id"] not in [row["id"] for row in listed]
    a: Clinic = tenants["a"]
    assert expect(a.client.get(f"/bookings/{booking['id']}"), 200)["status"] == "active"
