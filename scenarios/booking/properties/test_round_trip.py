"""Property: what a clinic writes is what it reads back, byte for byte, and search finds it."""

from __future__ import annotations

from typing import Any

from booking_strategies import valid_dates, valid_names
from conftest import NewClinic, expect
from hypothesis import given, note
from hypothesis import strategies as st

emails = st.builds(
    "{}@{}.test".format,
    st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True),
)
phones = st.from_regex(r"\+?[0-9][0-9 ]{5,15}[0-9]", fullmatch=True)

patients = st.fixed_dictionaries(
    {"name": valid_names},
    optional={"email": emails, "phone": phones, "birth_date": valid_dates},
)


@given(sent=patients)
def test_a_patient_reads_back_as_written(new_clinic: NewClinic, sent: dict[str, Any]) -> None:
    # A fresh clinic per example: search results then hold only this patient's matches.
    clinic = new_clinic()
    created = expect(clinic.client.post("/patients", json=sent), 201)
    read = expect(clinic.client.get(f"/patients/{created['id']}"), 200)
    note(f"created={created!r}")

    for key in ("name", "email", "phone", "birth_date"):
        assert created[key] == sent.get(key), f"POST echoed {key}={created[key]!r}"
        assert read[key] == sent.get(key), f"GET returned {key}={read[key]!r}"

    found = clinic.search_patients(sent["name"])
    assert created["id"] in [p["id"] for p in found], "searching the exact name missed it"


@given(rows=st.lists(patients, min_size=1, max_size=5))
def test_imported_patients_read_back_as_written(
    new_clinic: NewClinic, rows: list[dict[str, Any]]
) -> None:
    clinic = new_clinic()
    body = expect(clinic.client.post("/patients/import", json={"patients": rows}), 201)
    assert body["created"] == len(rows)
    assert len(body["ids"]) == len(rows)

    for patient_id, sent in zip(body["ids"], rows, strict=True):
        read = expect(clinic.client.get(f"/patients/{patient_id}"), 200)
        for key in ("name", "email", "phone", "birth_date"):
            assert read[key] == sent.get(key), f"GET returned {key}={read[key]!r}"
