"""Signing up a clinic, and the API key every other endpoint requires."""

from __future__ import annotations

import httpx
import pytest
from conftest import Clinic, NewClinic, expect, unique


def test_health_is_public(http: httpx.Client) -> None:
    assert expect(http.get("/health"), 200) == {"status": "ok"}


def test_signup_returns_an_api_key_and_default_opening_hours(http: httpx.Client) -> None:
    name, marker = unique("Signup Clinic"), unique("sr-signup")
    body = expect(http.post("/clinics", json={"name": name, "marker": marker}), 201)

    assert isinstance(body["id"], int)
    assert body["name"] == name
    assert body["marker"] == marker
    assert isinstance(body["api_key"], str) and len(body["api_key"]) >= 16
    hours = body["opening_hours"]
    assert hours["mon"] == ["09:00", "17:00"]
    assert hours["fri"] == ["09:00", "17:00"]
    assert hours.get("sat") is None and hours.get("sun") is None


def test_each_signup_gets_its_own_key(new_clinic: NewClinic) -> None:
    first, second = new_clinic(), new_clinic()
    assert first.api_key != second.api_key
    assert first.id != second.id


def test_the_key_identifies_the_callers_clinic(clinic: Clinic) -> None:
    body = expect(clinic.client.get("/clinic"), 200)
    assert body["id"] == clinic.id
    assert body["name"] == clinic.name


@pytest.mark.parametrize(
    "path",
    [
        "/clinic",
        "/practitioners",
        "/patients",
        "/patients/1",
        "/bookings/1",
        "/bookings?date=2030-01-07",
    ],
)
@pytest.mark.parametrize("key", [None, "", "not-a-key"], ids=["missing", "empty", "wrong"])
def test_reads_without_a_valid_key_are_401(http: httpx.Client, path: str, key: str | None) -> None:
    headers = {} if key is None else {"X-API-Key": key}
    assert http.get(path, headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/practitioners", {"name": "Dr Nobody"}),
        ("/patients", {"name": "Nobody"}),
        ("/patients/import", {"patients": [{"name": "Nobody"}]}),
        ("/bookings", {"practitioner_id": 1, "patient_id": 1, "start": "2030-01-07T09:00"}),
        ("/bookings/1/cancel", None),
    ],
)
def test_writes_without_a_valid_key_are_401(http: httpx.Client, path: str, body: object) -> None:
    assert http.post(path, json=body).status_code == 401
    assert http.post(path, json=body, headers={"X-API-Key": "not-a-key"}).status_code == 401


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "x" * 201}, {"name": 42}, {"name": None}],
    ids=["missing-name", "empty-name", "name-too-long", "name-not-a-string", "name-null"],
)
def test_signup_validation_is_4xx(http: httpx.Client, body: dict[str, object]) -> None:
    assert http.post("/clinics", json=body).status_code in (400, 422)


def test_custom_opening_hours_are_kept(new_clinic: NewClinic) -> None:
    hours = {
        "mon": ["08:00", "12:00"], "tue": None, "wed": ["10:00", "18:00"], "thu": None,
        "fri": None, "sat": ["09:00", "13:00"], "sun": None,
    }  # fmt: skip
    clinic = new_clinic(opening_hours=hours)
    body = expect(clinic.client.get("/clinic"), 200)
    assert body["opening_hours"]["mon"] == ["08:00", "12:00"]
    assert body["opening_hours"]["sat"] == ["09:00", "13:00"]
    assert body["opening_hours"].get("tue") is None
