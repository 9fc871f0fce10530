"""The invoicing pack's integrity invariants.

* An invoice, once acknowledged, reads back with the same client and amount.
* A job, once acknowledged, reads back (as its submitter) with the same payload.
* A company never sees another company's invoices, jobs or account: each carries the company's
  marker, and another company's invoice ids are 404. The public feed, which carries every
  company's marker by design, is declared public: its responses are not scanned.
* A company's invoice meter (``invoices_raised``) grows by one for every invoice acknowledged,
  also when its staff raise invoices at the same moment (``@concurrent_write``: the overlap
  probe sends them together).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from provision import auth_headers

from harness.pack_api import (
    Attempt,
    Read,
    concurrent_write,
    counter,
    isolation_reads,
    public,
    readback,
    resource,
)

__all__ = ["auth_headers"]

invoice = resource("invoice", stable_fields=("client", "amount_cents"))
job = resource("job", stable_fields=("payload",))
feed = public("GET /feed")  # every company reads every company's posts


def _read(client: httpx.Client, customer: Mapping[str, Any], path: str) -> dict[str, Any] | None:
    response = client.get(path, headers=auth_headers(customer))
    if response.status_code in (403, 404):
        return None
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


@readback("invoice")
def read_invoice(client: httpx.Client, customer: Mapping[str, Any], ident: str) -> dict[str, Any] | None:
    return _read(client, customer, f"/invoices/{ident}")


@readback("job")
def read_job(client: httpx.Client, customer: Mapping[str, Any], ident: str) -> dict[str, Any] | None:
    return _read(client, customer, f"/jobs/{ident}")


@counter("invoice", op="create")
def invoices_raised(client: httpx.Client, customer: Mapping[str, Any]) -> int | None:
    """The company's metered usage: one per invoice raised."""
    company = _read(client, customer, "/company")
    return None if company is None else int(company["invoices_raised"])


@concurrent_write("invoice", op="create")
def raise_at_the_same_moment(client: httpx.Client, customer: Mapping[str, Any], attempt: Attempt) -> None:
    """A company's staff raise invoices at once (month end): each must be stored and counted."""
    content = {"client": f"Client {attempt.round}-{attempt.position}", "amount_cents": 1_000 + attempt.position}
    with attempt.write(content=content) as written:
        response = client.post("/invoices", json=content, headers=auth_headers(customer))
        ident = response.json().get("id") if response.status_code == 201 else None
        written.done(response.status_code, ident=ident)


@isolation_reads
def reads(customer: Mapping[str, Any]) -> list[Read]:
    return [Read("/invoices", {"limit": 100}, name="GET /invoices"), Read("/company")]
