"""The named flaws the demo service can be started with.

Each flaw is a realistic mistake a team makes as a service grows, written as ordinary code on
the path it affects (grep for ``Flaw.`` to find every branch). None is an injected sleep: the
symptom the audit must see comes from what the code does with real data, real locks and real
connections. (The one wait is the round trip of the emulated downstream that blocking-event-loop
and downstream-slots call: the remote's time, not the mistake; see booking_service.downstream.)

Flaws are chosen at start (``--flaw NAME``, repeatable, or ``BOOKING_FLAW=NAME[,NAME]``) and
frozen in `Settings`; the code branches on ``settings.has(Flaw.X)``.
"""

from __future__ import annotations

import difflib
from enum import StrEnum


class Flaw(StrEnum):
    MISSING_INDEX = "missing-index"
    N_PLUS_ONE = "n-plus-one"
    GLOBAL_LOCK = "global-lock"
    DOUBLE_BOOKING = "double-booking"
    TENANT_LEAK = "tenant-leak"
    MEMORY_LEAK = "memory-leak"
    POOL_EXHAUSTION = "pool-exhaustion"
    CRASH_ON_ODD_INPUT = "crash-on-odd-input"
    FUNCTIONAL_REGRESSION = "functional-regression"
    # A downstream called badly (booking_service.downstream): an event loop that waits for it,
    # and a fixed number of call slots.
    BLOCKING_EVENT_LOOP = "blocking-event-loop"
    DOWNSTREAM_SLOTS = "downstream-slots"
    LOST_UPDATE = "lost-update"


#: What each flaw does, and what an audit should eventually see (also printed by ``--list-flaws``).
DESCRIPTIONS: dict[Flaw, str] = {
    Flaw.MISSING_INDEX: "patient search has no (clinic_id, name) index and lower()s the column: "
    "every search scans all clinics' patients -> latency grows with the data",
    Flaw.N_PLUS_ONE: "the daily report runs one query per practitioner, per slot, per booking and "
    "per patient (each a scan: no index on bookings.patient_id) -> the report endpoint breaks its "
    "SLO as the data grows",
    Flaw.GLOBAL_LOCK: "every write takes one process-wide lock held across the transaction, the "
    "commit (SQLite's rollback journal: it waits for readers to finish) and an fsync'd audit-log "
    "append -> throughput stops growing with concurrency",
    Flaw.DOUBLE_BOOKING: "booking checks the slot is free, then inserts; no unique index "
    "-> concurrent bookings of one slot both succeed",
    Flaw.TENANT_LEAK: "patient search forgets the clinic filter -> other clinics' patients leak",
    Flaw.MEMORY_LEAK: "GET responses are memoised per URL and data version and never evicted "
    "-> RSS grows with requests",
    Flaw.POOL_EXHAUSTION: "4 database connections, each held for the whole request, and a write "
    "takes a second one for its audit row while holding the first; a request waits 0.25 s for one, "
    "then fails 503 -> 5xx only under concurrent load",
    Flaw.CRASH_ON_ODD_INPUT: "creating a patient builds ASCII-only 'F.L.' initials for the audit "
    "trail -> 500 on a non-ASCII or one-word name",
    Flaw.FUNCTIONAL_REGRESSION: "cancelling records cancelled_at but leaves the booking active in "
    "the slot index -> a cancelled slot can never be booked again",
    Flaw.BLOCKING_EVENT_LOOP: "free slots and booking consult the practitioners' external calendar "
    "(25 ms away) from an async dependency with a synchronous client: the event loop waits for it "
    "-> the service handles one request at a time, its CPU mostly idle",
    Flaw.DOWNSTREAM_SLOTS: "free slots and booking consult the external calendar through 8 call "
    "slots (the provider's per-account limit), waiting 50 ms for one, then 503 -> errors instead "
    "of slowness once the load needs more than 8 calls at once",
    Flaw.LOST_UPDATE: "the clinic's metered usage (bookings made, for the invoice) is read when a "
    "booking starts and written back plus one after the insert, not incremented in the database "
    "-> two bookings of one clinic at once count as one",
}

#: Names that mean "no flaw" (the harness passes ``{flaw}`` as "none" when healthy).
HEALTHY_NAMES = frozenset({"", "none", "healthy"})


class UnknownFlawError(ValueError):
    """A flaw name that is not one of `Flaw`."""


def parse_flaws(names: list[str] | tuple[str, ...]) -> frozenset[Flaw]:
    """``["n-plus-one", "none", "tenant-leak,memory-leak"]`` -> the set of flaws named.

    Raises `UnknownFlawError` naming the value, the known flaws and the closest match.
    """
    flaws: set[Flaw] = set()
    known = [f.value for f in Flaw]
    for item in names:
        for raw in item.split(","):
            name = raw.strip().lower()
            if name in HEALTHY_NAMES:
                continue
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise UnknownFlawError(
                    f"unknown flaw '{raw.strip()}'.{hint} Known flaws: {', '.join(known)} "
                    "(or 'none' for the healthy service)."
                )
            flaws.add(Flaw(name))
    return frozenset(flaws)
