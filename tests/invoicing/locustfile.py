"""The invoicing pack's personas, as plain Locust users.

Every request names its endpoint (``name=``) so statistics group by endpoint, not by URL.
A worker takes jobs that any company submitted; it reads nothing of the submitter's but the job
itself (``company_id``, ``payload``), and a receipt is read by the company that submitted the
job, in a task that picked that company (``self.customer()`` attributes the requests after it).
The public feed carries every company's marker, so the load only posts to it.
"""

from __future__ import annotations

import random
from typing import Any

from provision import auth_headers

from harness.pack_api import CustomerUser, task

CLIENTS = ("Acme Ltd", "Globex", "Initech", "Umbrella plc", "Hooli")


class Accountant(CustomerUser):
    """Raises invoices and looks them up."""

    weight = 3

    @task(3)
    def raise_invoice(self) -> None:
        c = self.customer()
        content = {"client": random.choice(CLIENTS), "amount_cents": random.randrange(1_000, 500_000)}
        invoice: int | None = None
        with self.write("invoice", "create", content=content, customer=c) as pending, self.client.post(
            "/invoices", json=content, headers=auth_headers(c), name="POST /invoices", catch_response=True,
        ) as resp:
            status = resp.status_code or None
            if resp.status_code == 201:
                try:
                    invoice = int(resp.json()["id"])
                except (ValueError, KeyError, TypeError):
                    resp.failure("invalid-json")
                    status = None  # acknowledged, but we cannot tell what: its effect is unknown
            pending.done(status, ident=invoice)
        if invoice is not None:
            self.client.get(f"/invoices/{invoice}", headers=auth_headers(c), name="GET /invoices/{id}")

    @task(2)
    def list_invoices(self) -> None:
        c = self.customer()
        self.client.get("/invoices?limit=20", headers=auth_headers(c), name="GET /invoices")

    @task(1)
    def post_news(self) -> None:
        c = self.customer()
        self.client.post("/feed", json={"text": f"{c['name']} ships faster"}, headers=auth_headers(c),
                         name="POST /feed")  # fmt: skip


class Worker(CustomerUser):
    """Submits jobs to the shared queue, works on anyone's, reads its own company's receipts."""

    weight = 2

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._submitted: dict[int, list[int]] = {}  # company index -> jobs it submitted

    @task(2)
    def submit_job(self) -> None:
        c = self.customer()
        content = {"payload": f"reconcile {random.randrange(10_000)}"}
        with self.write("job", "create", content=content, customer=c) as pending, self.client.post(
            "/jobs", json=content, headers=auth_headers(c), name="POST /jobs", catch_response=True,
        ) as resp:
            job = resp.json().get("id") if resp.status_code == 201 else None
            pending.done(resp.status_code or None, ident=job)
        if job is not None:
            self._submitted.setdefault(int(c["index"]), []).append(int(job))

    @task(2)
    def work(self) -> None:
        c = self.customer()
        with self.client.post("/jobs/take", headers=auth_headers(c), name="POST /jobs/take",
                              catch_response=True) as resp:  # fmt: skip
            job = resp.json() if resp.status_code == 200 else None
        if job is not None:
            self.client.post(f"/jobs/{job['id']}/finish", json={"result": "ok"}, headers=auth_headers(c),
                             name="POST /jobs/{id}/finish")  # fmt: skip

    @task(1)
    def read_receipt(self) -> None:
        c = self.customer()
        jobs = self._submitted.get(int(c["index"])) or c.get("jobs") or []
        if not jobs:
            return
        with self.client.get(f"/jobs/{random.choice(jobs)}/receipt", headers=auth_headers(c),
                             name="GET /jobs/{id}/receipt", catch_response=True) as resp:  # fmt: skip
            if resp.status_code == 404:  # not finished yet: a correct answer
                resp.success()
