"""The practitioners' external calendar: a downstream service, and two ways of calling it badly.

Two flaws make free-slot search and booking consult each clinic's external calendar (the
practitioners' own agendas, kept by a calendar provider) before they answer. The healthy
service does not call it at all, so its measurements stay what they were.

The calendar itself is emulated in the process: a remote call's round trip is time the service
waits for and does not control, so it is a wait of `ROUND_TRIP_S` here, the one place a flaw
path waits on purpose. The mistakes are in how the service calls it, and they are ordinary code:

* ``blocking-event-loop``: the check is an ``async`` dependency that calls the synchronous
  client ("it is one quick HTTP call"), so the event loop waits for the calendar and every
  other request of the process waits with it: the service handles one request at a time while
  its CPU idles.
* ``downstream-slots``: the provider allows `SLOTS` calls at once per account; the client
  takes one of `SLOTS` permits, waits `SLOT_WAIT_S` for one, then gives up with a 503. Fine at a
  small load; past it, requests fail instead of slowing down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from booking_service.flaws import Flaw
from booking_service.settings import Settings

#: The calendar provider's answer time, as measured from the service ("about 25 ms away").
ROUND_TRIP_S = 0.025
#: downstream-slots: the provider's concurrent-call limit per account ...
SLOTS = 8
#: ... and how long a request waits for a free one before answering 503.
SLOT_WAIT_S = 0.05

__all__ = ["Calendar", "CalendarBusy", "SlotLimitedCalendar", "calendar_dependencies"]


class CalendarBusy(Exception):
    """downstream-slots: every call slot to the calendar provider is taken (answered as 503)."""


class Calendar:
    """The emulated provider, called synchronously: returns the clinic's busy periods (none)."""

    def __init__(self, round_trip_s: float = ROUND_TRIP_S) -> None:
        self.round_trip_s = round_trip_s

    def busy_periods(self, clinic_id: int) -> list[tuple[str, str]]:
        time.sleep(self.round_trip_s)  # the remote's round trip: see the module's docstring
        return []


class SlotLimitedCalendar:
    """downstream-slots: "the provider allows 8 calls at once, so we hold one of 8 permits"."""

    def __init__(self, calendar: Calendar, slots: int = SLOTS, wait_s: float = SLOT_WAIT_S) -> None:
        self._calendar, self._slots, self._wait_s = calendar, slots, wait_s
        self._permits = threading.BoundedSemaphore(slots)

    def busy_periods(self, clinic_id: int) -> list[tuple[str, str]]:
        if not self._permits.acquire(timeout=self._wait_s):
            raise CalendarBusy(f"the calendar provider's {self._slots} call slots are all in use")
        try:
            return self._calendar.busy_periods(clinic_id)
        finally:
            self._permits.release()


def calendar_dependencies(settings: Settings, caller: Callable[..., Any]) -> list[Any]:
    """The FastAPI dependencies that consult the calendar before free-slot search and booking
    (``caller`` resolves the request's clinic), or [] for a service without these flaws."""
    from fastapi import Depends

    calendar = Calendar()
    if settings.has(Flaw.BLOCKING_EVENT_LOOP):

        async def consult_on_the_loop(clinic: Any = Depends(caller)) -> None:  # noqa: B008
            # async "because the handler is quick", with the synchronous client: the event
            # loop stops for the whole round trip.
            calendar.busy_periods(clinic.id)

        return [Depends(consult_on_the_loop)]
    if settings.has(Flaw.DOWNSTREAM_SLOTS):
        limited = SlotLimitedCalendar(calendar)

        def consult_in_a_thread(clinic: Any = Depends(caller)) -> None:  # noqa: B008
            limited.busy_periods(clinic.id)  # a worker thread: the loop is free, the slots are not

        return [Depends(consult_in_a_thread)]
    return []
