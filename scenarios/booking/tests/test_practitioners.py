"""Practitioners: create and list."""

from __future__ import annotations

import pytest
from conftest import Clinic, expect


def test_practitioner_defaults_to_30_minute_slots(clinic: Clinic) -> None:
    created = clinic.practitioner(name="Dr Default")
    assert created["slot_minutes"] == 30
    assert created["clinic_marker"] == clinic.marker


def test_practitioners_list_holds_the_clinics_practitioners(clinic: Clinic) -> None:
    made = [
        clinic.practitioner(name="Dr Ada", specialty="cardiology"),
        clinic.practitioner(name="Dr Bea", slot_minutes=15),
    ]
    listed = expect(clinic.client.get("/practitioners"), 200)

    assert sorted(p["id"] for p in listed) == sorted(p["id"] for p in made)
    by_id = {p["id"]: p for p in listed}
    assert by_id[made[0]["id"]]["specialty"] == "cardiology"
    assert by_id[made[1]["id"]]["slot_minutes"] == 15


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": 3}, {"name": "Dr Zero", "slot_minutes": 0},
     {"name": "Dr Text", "slot_minutes": "thirty"}, {"name": "Dr Neg", "slot_minutes": -30}],
    ids=["missing-name", "empty-name", "name-int", "zero-slot", "slot-text", "negative-slot"],
)  # fmt: skip
def test_invalid_practitioner_is_4xx(clinic: Clinic, body: dict[str, object]) -> None:
    assert clinic.client.post("/practitioners", json=body).status_code in (400, 422)
