"""The booking pack's integrity invariants (harness.integrity.declare says what each one means).

* A booking, once acknowledged, reads back with the same practitioner, patient and start.
* One active booking per practitioner slot (the unique key), even when two receptionists of a
  clinic book the same slot at the same moment.
* A cancelled booking stays cancelled.
* The clinic's metered usage (``GET /clinic/usage``, bookings made) counts every acknowledged
  booking: it grows by at least the bookings the load made for the clinic, however many were
  made at the same moment.
* Several people booking one clinic at the same moment (the overlap probe's
  ``@concurrent_write``): two on one slot get one booking and one 409, the others each a
  booking, and the usage counts every one.
* A clinic never sees another clinic's data: every representation carries ``clinic_marker``,
  so any other clinic's marker in a response is a leak; another clinic's booking ids are 404.

The load behaviours record bookings in the ledger as ``kind="booking"``: ``op="create"`` with
content ``{"practitioner_id", "patient_id", "start"}`` and the returned ``id``, and
``op="delete"`` for ``POST /bookings/{id}/cancel``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import httpx

from harness.pack_api import (
    Attempt,
    Operation,
    Read,
    concurrent_write,
    counter,
    isolation_reads,
    listing,
    readback,
    resource,
)

API_KEY_HEADER = "X-API-Key"
MAX_DAYS_LISTED = 20  # one GET /bookings?date= per day; more days are read back one by one
PROBE_DAYS_AHEAD = 40  # past the load's 30-day booking horizon, so the probe finds free slots
PROBE_DAYS_TRIED = 15  # days looked at for enough free slots (earlier tiers' probes took some)


def auth_headers(customer: Mapping[str, Any]) -> dict[str, str]:
    """How a clinic authenticates (the same as provision.py's)."""
    return {API_KEY_HEADER: str(customer["api_key"])}


booking = resource(
    "booking",
    stable_fields=("practitioner_id", "patient_id", "start"),
    unique_key=lambda b: (int(b["practitioner_id"]), str(b["start"])),
    is_active=lambda b: b.get("status", "active") == "active",
)


@readback("booking")
def read_booking(client: httpx.Client, customer: Mapping[str, Any], ident: str) -> dict[str, Any] | None:
    response = client.get(f"/bookings/{ident}", headers=auth_headers(customer))
    if response.status_code in (403, 404):
        return None
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


@listing("booking")
def list_bookings(
    client: httpx.Client, customer: Mapping[str, Any], operations: Sequence[Operation]
) -> list[dict[str, Any]]:
    days = sorted(
        {str(o.content["start"])[:10] for o in operations if o.content and o.content.get("start")}
    )
    found: list[dict[str, Any]] = []
    for day in days[:MAX_DAYS_LISTED]:
        response = client.get("/bookings", params={"date": day}, headers=auth_headers(customer))
        response.raise_for_status()
        found.extend(response.json())
    return found


@counter("booking", op="create")
def bookings_made(client: httpx.Client, customer: Mapping[str, Any]) -> int | None:
    """What the clinic's invoice counts: one per booking made (a cancellation does not undo it)."""
    response = client.get("/clinic/usage", headers=auth_headers(customer))
    if response.status_code != 200:
        return None
    return int(response.json()["bookings_made"])


@concurrent_write("booking", op="create")
def book_at_the_same_moment(client: httpx.Client, customer: Mapping[str, Any], attempt: Attempt) -> None:
    """Several people book one clinic at once: the first two take the same slot (exactly one may
    get it), every other attempt a slot of its own (each booking must count)."""
    practitioners, patients = customer.get("practitioners") or [], customer.get("patients") or []
    if not practitioners or not patients:
        return
    practitioner = practitioners[attempt.round % len(practitioners)]
    wanted = attempt.of - 1
    # Every attempt of the round reads the same free slots: none writes before all are ready.
    for day in _weekdays(PROBE_DAYS_AHEAD, PROBE_DAYS_TRIED):
        response = client.get("/slots", params={"practitioner_id": practitioner, "date": day},
                              headers=auth_headers(customer))  # fmt: skip
        response.raise_for_status()
        slots = response.json()["slots"]
        if len(slots) >= wanted:
            break
    else:
        return
    content = {"practitioner_id": practitioner, "patient_id": patients[attempt.position % len(patients)],
               "start": slots[max(0, attempt.position - 1)]["start"]}  # fmt: skip
    with attempt.write(content=content) as written:
        response = client.post("/bookings", json=content, headers=auth_headers(customer))
        ident = response.json().get("id") if response.status_code == 201 else None
        written.done(response.status_code, ident=ident)


def _weekdays(ahead: int, count: int, today: date | None = None) -> list[str]:
    start = (today or date.today()) + timedelta(days=ahead)
    days = (start + timedelta(days=k) for k in range(2 * count))
    return [d.isoformat() for d in days if d.weekday() < 5][:count]


@isolation_reads
def reads(customer: Mapping[str, Any]) -> list[Read]:
    """Searches broad enough that a missing tenant filter returns other clinics' patients."""
    day = _open_day()
    return [
        Read("/patients", {"q": "", "limit": 100}, name="GET /patients"),
        Read("/patients", {"q": "a", "limit": 100}, name="GET /patients?q=a"),
        Read("/patients", {"q": "e", "limit": 50}, name="GET /patients?q=e"),
        Read("/practitioners"),
        Read("/bookings", {"date": day}),
        Read("/reports/daily", {"date": day}),
        Read("/clinic"),
    ]


def _open_day(today: date | None = None) -> str:
    """A Monday two weeks ahead: open by default, and where load tends to book."""
    today = today or date.today()
    return (today + timedelta(days=14 - today.weekday())).isoformat()
