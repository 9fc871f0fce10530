"""The booking pack's personas, as plain Locust users.

Run by scaleready, each task execution is one iteration started at its scheduled time; run with
``locust -f scenarios/booking/locustfile.py --host http://127.0.0.1:8000`` (and
``SCALEREADY_CUSTOMERS`` pointing at a provisioned customers file) it is ordinary Locust.

Every request names its endpoint with a stable ``name`` ("GET /slots", "GET /bookings/{id}")
so statistics group by endpoint, not by URL. A 409 on ``POST /bookings`` (slot already taken)
is the service answering correctly, not an error.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from harness.pack_api import CustomerUser, task

SEARCH_TERMS = ("an", "ma", "jo", "li", "el", "sa", "th", "ro", "ka", "mi")
HORIZON_DAYS = 30
SOON_DAYS = 3  # "as soon as possible": the next few days
NEXT_AVAILABLE = 0.5
DOUBLE_SUBMIT = 0.1  # online patients who double-click "Book"
DOUBLE_SUBMIT_TIMEOUT_S = 30.0  # bounded wait for both clicks (requests time out before this)


def open_day(rng: Any = random, horizon: int = HORIZON_DAYS) -> dt.date:
    """A random weekday in the next ``horizon`` days."""
    today = dt.date.today()
    for _ in range(50):
        day = today + dt.timedelta(days=rng.randint(1, horizon))
        if day.weekday() < 5:
            return day
    return today + dt.timedelta(days=(7 - today.weekday()) % 7 or 7)


def _booking_day() -> dt.date:
    """Half the bookings are for the next few open days, the rest anywhere in the horizon."""
    return open_day(horizon=SOON_DAYS) if random.random() < NEXT_AVAILABLE else open_day()


class _ClinicUser(CustomerUser):
    abstract = True

    def _as(self, customer: dict[str, Any]) -> dict[str, str]:
        return {"X-API-Key": customer["api_key"]}

    def _free_slot(self, customer: dict[str, Any], practitioner: int, day: dt.date) -> str | None:
        with self.client.get(
            f"/slots?practitioner_id={practitioner}&date={day.isoformat()}",
            headers=self._as(customer), name="GET /slots", catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}")
                return None
            try:
                slots = resp.json().get("slots", [])
            except ValueError:
                resp.failure("invalid-json")
                return None
        if not slots:
            return None
        # Half the people take the first slot offered ("next available"), the rest pick one:
        # popular slots are where two people book the same slot at the same moment.
        return slots[0]["start"] if random.random() < NEXT_AVAILABLE else random.choice(slots)["start"]

    def _book(self, customer: dict[str, Any], practitioner: int, patient: int, start: str) -> int | None:
        """POST /bookings; 201 -> the new id, 409 (slot taken) -> None and counted as success.

        Every attempt goes into the operation ledger, so the integrity checks can tell an
        acknowledged booking that went missing, or one slot booked twice.
        """
        content = {"practitioner_id": practitioner, "patient_id": patient, "start": start}
        booking: int | None = None
        # The intent goes into the ledger before the request: cut off in flight, it is unknown.
        with self.write("booking", "create", content=content, customer=customer) as pending, self.client.post(
            "/bookings", json=content, headers=self._as(customer), name="POST /bookings", catch_response=True,
        ) as resp:
            status = resp.status_code or None
            if resp.status_code == 409:
                resp.success()
            elif resp.status_code not in (200, 201):
                resp.failure(f"status {resp.status_code}")
            else:
                try:
                    booking = int(resp.json()["id"])
                except (ValueError, KeyError, TypeError):
                    resp.failure("invalid-json")
                    status = None  # acknowledged, but we cannot tell what: its effect is unknown
            pending.done(status, ident=booking)
        return booking

    def _cancel(self, customer: dict[str, Any], booking: int) -> None:
        """POST /bookings/{id}/cancel; 409 (already cancelled) is a correct answer."""
        with self.write("booking", "delete", ident=booking, customer=customer) as pending, self.client.post(
            f"/bookings/{booking}/cancel", headers=self._as(customer), name="POST /bookings/{id}/cancel",
            catch_response=True,
        ) as resp:
            if resp.status_code == 409:
                resp.success()
            pending.done(resp.status_code or None)


class ClinicAdmin(_ClinicUser):
    """The clinic's manager: daily report, the team, the day's bookings."""

    weight = 1

    @task(2)
    def daily_report(self) -> None:
        c = self.customer()
        day = open_day().isoformat()
        self.client.get(f"/reports/daily?date={day}", headers=self._as(c), name="GET /reports/daily")

    @task(1)
    def practitioners(self) -> None:
        c = self.customer()
        self.client.get("/practitioners", headers=self._as(c), name="GET /practitioners")

    @task(2)
    def bookings_of_the_day(self) -> None:
        c = self.customer()
        day = open_day().isoformat()
        self.client.get(f"/bookings?date={day}", headers=self._as(c), name="GET /bookings?date")


class Receptionist(_ClinicUser):
    """Front desk: find a patient, look at slots, book for them, sometimes cancel."""

    weight = 5

    @task(3)
    def search_patient(self) -> None:
        c = self.customer()
        self.client.get(
            f"/patients?q={random.choice(SEARCH_TERMS)}&limit=20", headers=self._as(c), name="GET /patients?q"
        )

    @task(1)
    def view_patient(self) -> None:
        c = self.customer()
        if c.get("patients"):
            pid = random.choice(c["patients"])
            self.client.get(f"/patients/{pid}", headers=self._as(c), name="GET /patients/{id}")

    @task(4)
    def book_for_patient(self) -> None:
        c = self.customer()
        if not c.get("practitioners") or not c.get("patients"):
            return
        practitioner = random.choice(c["practitioners"])
        day = _booking_day()
        start = self._free_slot(c, practitioner, day)
        if start is None:
            return
        booking = self._book(c, practitioner, random.choice(c["patients"]), start)
        if booking is not None and random.random() < 0.2:
            self._cancel(c, booking)

    @task(1)
    def cancel_existing(self) -> None:
        c = self.customer()
        if c.get("bookings"):
            self._cancel(c, random.choice(c["bookings"]))


class OnlinePatient(_ClinicUser):
    """A patient booking online: free slots of a practitioner on a day, book one, view it."""

    weight = 4

    @task(3)
    def book_online(self) -> None:
        c = self.customer()
        if not c.get("practitioners") or not c.get("patients"):
            return
        practitioner = random.choice(c["practitioners"])
        day = _booking_day()
        start = self._free_slot(c, practitioner, day)
        if start is None:
            return
        patient = random.choice(c["patients"])
        if random.random() < DOUBLE_SUBMIT:
            booking = self._book_twice(c, practitioner, patient, start)
        else:
            booking = self._book(c, practitioner, patient, start)
        if booking is not None:
            self.client.get(f"/bookings/{booking}", headers=self._as(c), name="GET /bookings/{id}")

    def _book_twice(self, customer: dict[str, Any], practitioner: int, patient: int, start: str) -> int | None:
        """The patient double-clicks "Book": the same booking sent twice at once. Exactly one may
        succeed (the other is a 409); both are in the ledger, so two acknowledged bookings of one
        slot show up as a duplicate."""
        import gevent  # Locust runs on gevent; only needed when the pack runs under Locust

        clicks = [gevent.spawn(self._book, customer, practitioner, patient, start) for _ in range(2)]
        gevent.joinall(clicks, timeout=DOUBLE_SUBMIT_TIMEOUT_S)
        return next((g.value for g in clicks if g.value is not None), None)

    @task(2)
    def browse_slots(self) -> None:
        c = self.customer()
        if c.get("practitioners"):
            self._free_slot(c, random.choice(c["practitioners"]), open_day())

    @task(1)
    def clinic_info(self) -> None:
        c = self.customer()
        self.client.get("/clinic", headers=self._as(c), name="GET /clinic")
