"""The booking pack's integrity invariants (harness.integrity.declare says what each one means).

* A booking, once acknowledged, reads back with the same practitioner, patient and start.
* One active booking per practitioner slot (the unique key), even when two receptionists of a
  clinic book the same slot at the same moment.
* A cancelled booking stays cancelled.
* The clinic's metered usage (``GET /clinic/usage``, bookings made) counts every acknowledged
  booking: it grows by at least the bookings the load made for the clinic, however many were
  made at the same moment.
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

from harness.pack_api import Operation, Read, counter, isolation_reads, listing, readback, resource

API_KEY_HEADER = "X-API-Key"
MAX_DAYS_LISTED = 20  # one GET /bookings?date= per day; more days are read back one by one


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
