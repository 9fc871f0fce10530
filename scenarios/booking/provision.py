"""Customer provisioning for the booking pack: one clinic with its staff, patients and bookings.

The harness calls `create_customer` for each customer index it has not provisioned yet, many at
once, with `rng` seeded per index so the same index always gets the same data. Seven requests
per customer: sign-up, two practitioners, one patient import, three bookings.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import httpx

PRACTITIONERS = 2
# A small practice's patient list. Fewer would hide what grows with the data: at 1000 clinics a
# search that scans every clinic's patients reads 150k rows instead of one clinic's 150.
PATIENTS = 150
BOOKINGS = 3
BOOKING_HORIZON_DAYS = 30

_TOWNS = [
    "Ashford", "Bexley", "Camden", "Dorking", "Ealing", "Frome", "Harrow", "Ilford", "Kendal",
    "Leeds", "Malvern", "Newbury", "Oxford", "Penrith", "Reading", "Salford", "Truro", "Wells",
]  # fmt: skip
_KINDS = ["Family Practice", "Physiotherapy", "Dental Care", "Health Centre", "Osteopathy", "Clinic"]
_SPECIALTIES = ["general practice", "physiotherapy", "dentistry", "osteopathy", "dermatology", "nursing"]
_FIRST = [
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Noah", "Oliver", "George", "Arthur", "Leo", "Harry",
    "Oscar", "Freya", "Grace", "Jack", "Sophie", "Mohammed", "Priya", "Aisha", "Daniel", "Emily",
    "Zoë", "José", "Søren", "Chloé", "Łukasz", "Anaïs", "Björn", "Siobhán", "Renée", "Nguyễn",
]  # fmt: skip
_LAST = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Khan",
    "Evans", "Thomas", "Roberts", "Walker", "Wright", "Green", "Hall", "Wood", "Clarke", "Hughes",
    "Müller", "García", "O'Brien", "Kowalczyk", "Dubois", "Ødegaard", "Ng", "Fernández",
]  # fmt: skip
_DOCTOR_FIRST = ["Sarah", "James", "Helen", "Rajesh", "Anna", "Tom", "Fatima", "Michael", "Claire"]


def auth_headers(customer: dict[str, Any]) -> dict[str, str]:
    """How a request is sent as this customer: the harness replays server errors seen under load
    with these headers (without them every replay is a 401 and proves nothing)."""
    return {"X-API-Key": str(customer["api_key"])}


def _expect(response: httpx.Response, status: int, what: str, index: int) -> Any:
    if response.status_code != status:
        raise RuntimeError(
            f"customer {index}: {what}: {response.request.method} {response.request.url.path} "
            f"returned {response.status_code} (expected {status}): {response.text[:300]}"
        )
    return response.json()


def _ascii(text: str) -> str:
    return text.encode("ascii", "ignore").decode().replace("'", "").lower()


def _patient(rng: random.Random, index: int, n: int) -> dict[str, Any]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 80))
    return {
        "name": f"{first} {last}",
        "email": f"{_ascii(first)}.{_ascii(last)}.{index}.{n}@example.test",
        "phone": f"+44 7{rng.randrange(100, 999)} {rng.randrange(100000, 999999)}",
        "birth_date": born.isoformat(),
    }


def _booking_starts(rng: random.Random, today: date) -> list[tuple[int, str]]:
    """Three distinct (practitioner number, start) pairs on weekdays in the next 30 days,
    on the default Mon-Fri 09:00-17:00 hours and 30-minute grid."""
    weekdays = [
        d for d in (today + timedelta(days=k) for k in range(1, BOOKING_HORIZON_DAYS + 1))
        if d.weekday() < 5
    ]  # fmt: skip
    chosen: set[tuple[int, str]] = set()
    while len(chosen) < BOOKINGS:
        day = rng.choice(weekdays)
        minute = 9 * 60 + 30 * rng.randrange(16)
        chosen.add((rng.randrange(PRACTITIONERS), f"{day.isoformat()}T{minute // 60:02d}:{minute % 60:02d}"))
    return sorted(chosen)


async def create_customer(
    client: httpx.AsyncClient, index: int, rng: random.Random, marker: str
) -> dict[str, Any]:
    """Create customer number `index` through the API and return a JSON-serialisable record."""
    clinic_name = f"Clinic {index:05d} {rng.choice(_TOWNS)} {rng.choice(_KINDS)}"
    clinic = _expect(
        await client.post("/clinics", json={"name": clinic_name, "marker": marker}),
        201, "sign-up", index,
    )  # fmt: skip
    headers = auth_headers(clinic)

    practitioners = []
    for n in range(PRACTITIONERS):
        body = {
            "name": f"Dr {rng.choice(_DOCTOR_FIRST)} {rng.choice(_LAST)}",
            "specialty": rng.choice(_SPECIALTIES),
            "slot_minutes": 30,
        }
        created = _expect(
            await client.post("/practitioners", json=body, headers=headers),
            201, f"practitioner {n}", index,
        )  # fmt: skip
        practitioners.append(created["id"])

    patients = [_patient(rng, index, n) for n in range(PATIENTS)]
    imported = _expect(
        await client.post("/patients/import", json={"patients": patients}, headers=headers),
        201, "patient import", index,
    )  # fmt: skip
    patient_ids: list[int] = imported["ids"]

    bookings = []
    for practitioner_n, start in _booking_starts(rng, date.today()):
        body = {
            "practitioner_id": practitioners[practitioner_n],
            "patient_id": rng.choice(patient_ids),
            "start": start,
            "note": rng.choice([None, "first visit", "follow-up", "annual check"]),
        }
        created = _expect(
            await client.post("/bookings", json=body, headers=headers),
            201, f"booking {start}", index,
        )  # fmt: skip
        bookings.append(created["id"])

    return {
        "index": index,
        "id": clinic["id"],
        "name": clinic_name,
        "api_key": clinic["api_key"],
        "marker": marker,
        "practitioners": practitioners,
        "patients": patient_ids,
        "patient_names": [p["name"] for p in patients],
        "bookings": bookings,
    }
