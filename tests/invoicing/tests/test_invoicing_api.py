"""The invoicing service's regression suite: what each company can do, and what it cannot see."""

from __future__ import annotations

import httpx
from conftest import NewCompany, expect


def test_an_invoice_reads_back_as_written(new_company: NewCompany) -> None:
    a = new_company()
    created = expect(a.client.post("/invoices", json={"client": "Acme Ltd", "amount_cents": 1250}), 201)
    read = expect(a.client.get(f"/invoices/{created['id']}"), 200)
    assert (read["client"], read["amount_cents"], read["company_marker"]) == ("Acme Ltd", 1250, a.marker)
    assert created["id"] in [i["id"] for i in expect(a.client.get("/invoices"), 200)]


def test_another_companys_invoice_is_not_found(new_company: NewCompany) -> None:
    a, b = new_company(), new_company()
    created = expect(a.client.post("/invoices", json={"client": "Globex", "amount_cents": 99}), 201)
    expect(b.client.get(f"/invoices/{created['id']}"), 404)
    assert a.marker not in b.client.get("/invoices", params={"limit": 100}).text


def test_a_request_without_a_valid_token_is_refused(target_url: str) -> None:
    assert httpx.get(f"{target_url}/company", timeout=10).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert httpx.get(f"{target_url}/company", headers=bad, timeout=10).status_code == 401
    assert httpx.post(f"{target_url}/tokens", headers={"X-API-Key": "wrong"}, timeout=10).status_code == 401


def test_the_public_feed_shows_every_companys_posts(new_company: NewCompany) -> None:
    a, b = new_company(), new_company()
    post = expect(a.client.post("/feed", json={"text": "we are hiring"}), 201)
    seen = {p["id"]: p for p in expect(b.client.get("/feed", params={"limit": 100}), 200)}
    assert seen[post["id"]]["company_marker"] == a.marker


def test_a_job_done_by_another_company_has_its_receipt_with_the_submitter(new_company: NewCompany) -> None:
    submitter, worker = new_company(), new_company()
    job = expect(submitter.client.post("/jobs", json={"payload": "export"}), 201)
    expect(submitter.client.get(f"/jobs/{job['id']}/receipt"), 404)  # not done yet
    # Take jobs until this one comes up: other tests' and the load's jobs share the queue.
    for _ in range(1000):
        taken = expect(worker.client.post("/jobs/take"), 200)
        expect(worker.client.post(f"/jobs/{taken['id']}/finish", json={"result": "done"}), 200)
        if taken["id"] == job["id"]:
            break
    assert taken["id"] == job["id"], "the job never came off the shared queue"
    assert taken["company_id"] == expect(submitter.client.get("/company"), 200)["id"]
    receipt = expect(submitter.client.get(f"/jobs/{job['id']}/receipt"), 200)
    assert receipt["company_marker"] == submitter.marker
    assert receipt["finished_by"] == expect(worker.client.get("/company"), 200)["id"]
    expect(worker.client.get(f"/jobs/{job['id']}/receipt"), 404)
    expect(worker.client.post(f"/jobs/{job['id']}/finish", json={"result": "again"}), 409)
