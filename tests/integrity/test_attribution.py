"""Crediting a request to a customer: what the load engine scans each response against.

A worker takes a job from a shared queue, finishes it, then reads the job's receipt, which only
its submitter may read (with the submitter's key). Credited to the worker, the submitter's
marker in the receipt looks like a leak; credited to the submitter with ``as_customer``, it is
the submitter's own data. These tests run the real load engine against a loopback job desk
(``shared_queue``) for about a second each, then the integrity check on what its ledger holds:
attribution makes the ledger right, and the replay keeps a careless locustfile from reporting
a leak the service does not have, while a real one is still reported.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from harness.integrity.ledger import read_ledger_dir
from harness.load import LoadPlan, PhasePlan, run_load
from tests.integrity.shared_queue import INVARIANTS, Desk, check_desk, customers, serve

CUSTOMERS = customers(4)

WORKER = """
from harness.load.kit import CustomerUser, task

def auth(c):
    return {{"X-API-Key": c["api_key"]}}

class Worker(CustomerUser):
    @task
    def work(self):
        me = self.customer()
        self.client.post("/jobs", headers=auth(me), name="POST /jobs")
        job = self.client.post("/queue/take", headers=auth(me), name="POST /queue/take").json()
        if not job:
            return
        self.client.post(f"/jobs/{{job['id']}}/finish", headers=auth(me), name="POST /jobs/{{id}}/finish")
        owner = self.customers()[job["submitter_index"]]
        {read}
"""
CARELESS = """self.client.get(f"/jobs/{job['id']}/receipt", headers=auth(owner), name="GET /jobs/{id}/receipt")"""
CREDITED = """with self.as_customer(owner):
            self.client.get(f"/jobs/{job['id']}/receipt", headers=auth(owner), name="GET /jobs/{id}/receipt")"""


def backlog(desk: Desk, jobs: int = 40) -> Desk:
    """Jobs of every customer waiting on the queue, so a worker mostly takes someone else's."""
    for i in range(jobs):
        desk.submit(i % len(CUSTOMERS))
    return desk


def finished_by_another(desk: Desk) -> int:
    return sum(1 for j in desk.jobs.values() if j["done"] and j["worker"] != j["submitter"])


def run_worker(tmp_path: Path, url: str, read: str) -> Path:
    """About a second of the worker's load on the desk; returns the ledger folder."""
    lf = tmp_path / "locustfile.py"
    lf.write_text(textwrap.dedent(WORKER).format(read=read), encoding="utf-8")
    cfile = tmp_path / "customers.jsonl"
    cfile.write_text("".join(json.dumps(c) + "\n" for c in CUSTOMERS), encoding="utf-8")
    ledger = tmp_path / "ledger"
    plan = LoadPlan(
        locustfile=str(lf), host=url, output_dir=str(tmp_path / "out"), customers_file=str(cfile),
        phases=(PhasePlan("steady", "steady", 20.0, 1.0),), request_timeout_s=2.0, max_users=10,
        env={"SCALEREADY_LEDGER_DIR": str(ledger)},
    )  # fmt: skip
    outcome = run_load(plan)
    assert outcome.error is None
    return ledger


def test_a_receipt_read_as_its_submitter_but_credited_to_the_worker_looks_like_a_leak(tmp_path: Path) -> None:
    desk = backlog(Desk())
    with serve(desk) as url:
        ledger = run_worker(tmp_path, url, CARELESS)
        result = check_desk(tmp_path, url, ledger, CUSTOMERS)
    leaks = read_ledger_dir(ledger).leaks
    assert desk.requests.get("GET /jobs/{id}/receipt", 0) >= 5
    assert finished_by_another(desk) >= 5
    assert leaks and {leak.request for leak in leaks} == {"GET /jobs/{id}/receipt"}
    # What the replay needs: the request as it was sent, not only its name.
    assert all(leak.method == "GET" and (leak.url or "").endswith("/receipt") for leak in leaks)
    # ...and the replay finds the worker refused and the submitter served: no leak is reported.
    assert result.violations == () and result.status == "passed", result.violations
    replay = result.leak_replay
    assert replay is not None and replay.not_confirmed == replay.suspected == len({leak.customer for leak in leaks})
    assert "checked and not confirmed" in result.note


def test_a_receipt_credited_to_its_submitter_is_no_suspicion(tmp_path: Path) -> None:
    desk = backlog(Desk())
    with serve(desk) as url:
        ledger = run_worker(tmp_path, url, CREDITED)
        result = check_desk(tmp_path, url, ledger, CUSTOMERS)
    assert desk.requests.get("GET /jobs/{id}/receipt", 0) >= 5  # the same reads were made
    assert finished_by_another(desk) >= 5  # ...of receipts the worker does not own
    assert read_ledger_dir(ledger).leaks == ()
    assert result.violations == () and result.leak_replay is None


def test_a_real_leak_under_the_same_load_is_still_reported(tmp_path: Path) -> None:
    desk = backlog(Desk(leaky=True))
    mine = 'self.client.get("/mine", headers=auth(me), name="GET /mine")'
    with serve(desk) as url:
        ledger = run_worker(tmp_path, url, CREDITED + "\n        " + mine)
        result = check_desk(tmp_path, url, ledger, CUSTOMERS)
    assert {leak.request for leak in read_ledger_dir(ledger).leaks} == {"GET /mine"}
    assert result.status == "failed"
    assert {v.kind for v in result.violations} == {"isolation-leak"}
    assert all("confirmed by replay" in v.detail for v in result.violations)


def test_a_careless_locustfile_reading_a_public_feed_reports_nothing_the_service_does_not_do(tmp_path: Path) -> None:
    desk = backlog(Desk())
    feed = 'self.client.get("/feed", headers=auth(me), name="GET /feed")'
    invariants = INVARIANTS + '\nfrom harness.pack_api import public\nfeed = public("GET /feed")\n'
    with serve(desk) as url:
        ledger = run_worker(tmp_path, url, CARELESS + "\n        " + feed)
        result = check_desk(tmp_path, url, ledger, CUSTOMERS, invariants)
    assert {leak.request for leak in read_ledger_dir(ledger).leaks} == {"GET /jobs/{id}/receipt", "GET /feed"}
    assert result.violations == (), result.violations
    assert result.leak_replay is not None and result.leak_replay.confirmed == 0
    [said] = result.public
    assert said.startswith("GET /feed is declared public: not scanned (") and "under load" in said
