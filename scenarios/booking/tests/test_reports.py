"""The daily report: bookings, cancellations and utilisation per practitioner."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from conftest import Clinic, expect


def test_daily_report_counts_bookings_and_cancellations(clinic: Clinic, booking_day: date) -> None:
    ada, bea = clinic.practitioner(name="Dr Ada"), clinic.practitioner(name="Dr Bea")
    patient = clinic.patient()
    made = [
        expect(clinic.book(ada["id"], patient["id"], f"{booking_day}T{hhmm}"), 201)
        for hhmm in ("09:00", "09:30", "10:00", "10:30")
    ]
    expect(clinic.book(bea["id"], patient["id"], f"{booking_day}T09:00"), 201)
    expect(clinic.cancel(made[0]["id"]), 200)
    # a booking on another day must not count
    expect(clinic.book(ada["id"], patient["id"], f"{booking_day + timedelta(days=1)}T09:00"), 201)

    report = expect(clinic.client.get("/reports/daily", params={"date": str(booking_day)}), 200)

    assert report["date"] == str(booking_day)
    assert report["bookings"] == 4  # active bookings
    assert report["cancelled"] == 1
    assert report["clinic_marker"] == clinic.marker
    rows = {row["practitioner_id"]: row for row in report["by_practitioner"]}
    assert rows[ada["id"]]["bookings"] == 3
    assert rows[ada["id"]]["name"] == "Dr Ada"
    assert rows[bea["id"]]["bookings"] == 1
    # utilisation: booked share of the day's 16 slots
    assert rows[ada["id"]]["utilisation"] == pytest.approx(3 / 16, abs=0.01)
    assert rows[bea["id"]]["utilisation"] == pytest.approx(1 / 16, abs=0.01)


def test_daily_report_of_an_empty_day_is_zero(clinic: Clinic, booking_day: date) -> None:
    report = expect(clinic.client.get("/reports/daily", params={"date": str(booking_day)}), 200)
    assert report["bookings"] == 0
    assert report["cancelled"] == 0


@pytest.mark.parametrize("day", ["2030-02-30", "soon", ""])
def test_daily_report_with_a_bad_date_is_4xx(clinic: Clinic, day: str) -> None:
    assert clinic.client.get("/reports/daily", params={"date": day}).status_code in (400, 422)
