"""Patients: create, read back, search by name, bulk import, validation."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Clinic, expect, unique


def test_created_patient_reads_back_unchanged(clinic: Clinic) -> None:
    sent = {
        "name": "Zoë Ångström-Núñez 山田",
        "email": "zoe@example.test",
        "phone": "+33 1 23 45 67 89",
        "birth_date": "1984-02-29",
    }
    created = clinic.patient(**sent)
    read = expect(clinic.client.get(f"/patients/{created['id']}"), 200)

    for key, value in sent.items():
        assert created[key] == value
        assert read[key] == value
    assert read["id"] == created["id"]
    assert read["clinic_marker"] == clinic.marker


def test_optional_fields_may_be_omitted(clinic: Clinic) -> None:
    created = clinic.patient(name="Only A Name")
    assert created["email"] is None
    assert created["birth_date"] is None


def test_unknown_patient_is_404(clinic: Clinic) -> None:
    assert clinic.client.get("/patients/999999999").status_code == 404


def test_search_finds_by_case_insensitive_substring(clinic: Clinic) -> None:
    tag = unique("Quartz").lower()
    wanted = clinic.patient(name=f"Margaret {tag} Hamilton")
    clinic.patient(name=f"Grace {tag}-other Hopper")
    clinic.patient(name="Unrelated Person")

    found = clinic.search_patients(f"MARGARET {tag.upper()}")
    assert [p["id"] for p in found] == [wanted["id"]]

    both = {p["id"] for p in clinic.search_patients(tag)}
    assert wanted["id"] in both and len(both) == 2


def test_search_respects_limit(clinic: Clinic) -> None:
    tag = unique("Limit")
    for i in range(5):
        clinic.patient(name=f"{tag} {i}")
    assert len(clinic.search_patients(tag, limit=3)) == 3


def test_search_without_a_match_is_an_empty_list(clinic: Clinic) -> None:
    clinic.patient()
    assert clinic.search_patients(unique("nobody-has-this-name")) == []


def test_import_creates_every_patient(clinic: Clinic) -> None:
    tag = unique("Imported")
    rows = [{"name": f"{tag} {i}", "email": f"p{i}@example.test"} for i in range(25)]
    body = expect(clinic.client.post("/patients/import", json={"patients": rows}), 201)

    assert body["created"] == 25
    assert len(body["ids"]) == 25 and len(set(body["ids"])) == 25
    read = expect(clinic.client.get(f"/patients/{body['ids'][7]}"), 200)
    assert read["name"] == f"{tag} 7"
    assert len(clinic.search_patients(tag, limit=100)) == 25


def test_import_over_500_patients_is_rejected(clinic: Clinic) -> None:
    rows = [{"name": f"Too many {i}"} for i in range(501)]
    assert clinic.client.post("/patients/import", json={"patients": rows}).status_code in (
        400,
        413,
        422,
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 201},
        {"name": 12345},
        {"name": ["a", "list"]},
        {"name": "Bad Date", "birth_date": "1990-02-30"},
        {"name": "Bad Date", "birth_date": "29/02/1990"},
        {"name": "Bad Date", "birth_date": 19900101},
        {"name": "Bad Email", "email": 7},
    ],
    ids=[
        "missing-name", "empty-name", "name-too-long", "name-int", "name-list",
        "birth-date-impossible", "birth-date-format", "birth-date-int", "email-int",
    ],
)  # fmt: skip
def test_invalid_patient_is_4xx(clinic: Clinic, body: dict[str, Any]) -> None:
    assert clinic.client.post("/patients", json=body).status_code in (400, 422)


def test_malformed_json_is_4xx(clinic: Clinic) -> None:
    response = clinic.client.post(
        "/patients", content=b'{"name": "unterminated', headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422)
