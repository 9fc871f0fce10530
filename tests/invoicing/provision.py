"""Provisioning for the invoicing pack: one company, a bearer token and a few invoices.

Four requests and ``INVOICES`` more per company: sign-up, a token, the invoices, one job on the
shared work queue. The record keeps the api key (it buys tokens) and the token with the unix
time it expires.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import httpx

INVOICES = 5
_CLIENTS = ["Acme Ltd", "Globex", "Initech", "Umbrella plc", "Hooli", "Vandelay Industries", "Stark & Co"]


def auth_headers(customer: Mapping[str, Any]) -> dict[str, str]:
    """How a request is sent as this company (invariants.py imports it)."""
    return {"Authorization": f"Bearer {customer['token']}"}


def _expect(response: httpx.Response, status: int, what: str, index: int) -> Any:
    if response.status_code != status:
        raise RuntimeError(
            f"company {index}: {what}: {response.request.method} {response.request.url.path} "
            f"returned {response.status_code} (expected {status}): {response.text[:300]}"
        )
    return response.json()


async def create_customer(client: httpx.AsyncClient, index: int, rng: random.Random, marker: str) -> dict[str, Any]:
    """Create company number ``index`` through the API and return its JSON-serialisable record."""
    name = f"Company {index:05d}"
    company = _expect(await client.post("/companies", json={"name": name, "marker": marker}), 201, "sign-up", index)
    token = _expect(
        await client.post("/tokens", headers={"X-API-Key": company["api_key"]}), 201, "token", index
    )  # fmt: skip
    record: dict[str, Any] = {
        "id": company["id"], "name": name, "marker": marker, "api_key": company["api_key"],
        "token": token["token"], "token_expires_at": token["expires_at"],
    }  # fmt: skip
    invoices = []
    for n in range(INVOICES):
        body = {"client": rng.choice(_CLIENTS), "amount_cents": rng.randrange(1_000, 500_000)}
        created = _expect(await client.post("/invoices", json=body, headers=auth_headers(record)),
                          201, f"invoice {n}", index)  # fmt: skip
        invoices.append(created["id"])
    job = _expect(await client.post("/jobs", json={"payload": f"export {name}"}, headers=auth_headers(record)),
                  201, "job", index)  # fmt: skip
    return {**record, "invoices": invoices, "jobs": [job["id"]]}
