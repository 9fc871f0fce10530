"""Provisioning for the invoicing pack: one company, a bearer token and a few invoices.

Three requests and ``INVOICES`` more per company: sign-up, a token, the invoices, one job on
the shared work queue. The record keeps the api key (it buys tokens) and the token with the unix
time it expires (``credentials_expire_at``): ``refresh_credentials`` buys a new one before then,
or after a 401.
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


def _token(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    return {"token": body["token"], "credentials_expire_at": body["expires_at"]}


def refresh_credentials(client: httpx.Client, customer: Mapping[str, Any]) -> dict[str, Any]:
    """A fresh bearer token for the company (its api key never expires)."""
    response = client.post("/tokens", headers={"X-API-Key": customer["api_key"]})
    response.raise_for_status()
    return _token(response)


async def create_customer(client: httpx.AsyncClient, index: int, rng: random.Random, marker: str) -> dict[str, Any]:
    """Create company number ``index`` through the API and return its JSON-serialisable record."""
    name = f"Company {index:05d}"
    company = _expect(await client.post("/companies", json={"name": name, "marker": marker}), 201, "sign-up", index)
    token = await client.post("/tokens", headers={"X-API-Key": company["api_key"]})
    _expect(token, 201, "token", index)
    record: dict[str, Any] = {
        "id": company["id"], "name": name, "marker": marker, "api_key": company["api_key"], **_token(token),
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
