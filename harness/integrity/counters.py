"""The pack's ``@counter`` values per customer, read before a tier's load and after it.

A counter (bookings made, orders placed) must grow by at least the acknowledged writes the
ledger holds for it; :func:`harness.integrity.evaluate.lost_increments` judges the difference.
The readings before the load are taken here, on the integrity checker's bounded session; the
readings after, by :func:`harness.integrity.check.check_tier`, which is given these.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from harness.credentials import CredentialRefresher
from harness.errors import ConfigError
from harness.integrity.declare import Invariants, load_invariants
from harness.integrity.session import Session
from harness.pacing import RequestPacer

__all__ = ["CounterReadings", "counted_customers", "read_counter_values", "read_counters"]


@dataclass(frozen=True)
class CounterReadings:
    """Each ``@counter``'s value as each customer read it: ``values[(counter name, index)]``."""

    values: Mapping[tuple[str, int], int] = field(default_factory=dict)
    note: str = ""  # why some or all could not be read


def counted_customers(customers: Sequence[Mapping[str, Any]], sample: int) -> list[Mapping[str, Any]]:
    """The customers whose counters are read: the first ``sample`` by index, which under a Zipf
    popularity are the busiest (the ones whose writes overlap most)."""
    return sorted(customers, key=lambda c: int(c["index"]))[: max(0, sample)]


def read_counter_values(
    inv: Invariants, session: Session, customers: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, int], int]:
    """Read every counter as every customer given; a value that cannot be read is left out."""
    values: dict[tuple[str, int], int] = {}
    for counter in inv.counters:
        for customer in customers:
            ok, result = session.call(f"@counter {counter.name}", counter.read, session.client, customer)
            if ok and isinstance(result, int) and not isinstance(result, bool):
                values[(counter.name, int(customer["index"]))] = result
            elif session.stopped:
                return values
    return values


def read_counters(
    invariants: str | Path | ModuleType | Invariants,
    *,
    base_url: str,
    customers: Sequence[Mapping[str, Any]],
    sample: int,
    request_timeout_s: float,
    time_budget_s: float = 30.0,
    transport: httpx.BaseTransport | None = None,
    pacer: RequestPacer | None = None,
    credentials: CredentialRefresher | None = None,
) -> CounterReadings:
    """The counters before a tier's load (empty when the pack declares none). Never raises for
    the target's or the pack's errors: what could not be read is not judged afterwards.
    ``credentials`` refresh a customer's after a 401 to a read made as them."""
    try:
        inv = load_invariants(invariants)
    except ConfigError as exc:
        return CounterReadings(note=str(exc))
    chosen = counted_customers(customers, sample)
    if not inv.counters or not chosen:
        return CounterReadings()
    session = Session(base_url, request_timeout_s, 1, time.monotonic() + time_budget_s,
                      max_requests=len(inv.counters) * len(chosen) + 10, transport=transport, pacer=pacer,
                      credentials=credentials, customers=chosen)  # type: ignore[arg-type]  # fmt: skip
    try:
        values = read_counter_values(inv, session, chosen)
    finally:
        session.close()
    return CounterReadings(values=values, note="; ".join(session.notes()))
