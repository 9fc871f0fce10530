"""Attribution, replay and public data on the second pack's service (tests/invoicing), end to end.

The invoicing service has what makes a careless locustfile lie: a shared work queue (a worker
finishes another company's job, whose receipt only the submitter may read) and a public feed
that carries every company's marker. Each test starts the real service, provisions companies
with the pack's own provision.py, runs a second of load through the real engine with a
locustfile written here, and checks the tier with the pack's own invariants.py.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.integrity.ledger import read_ledger_dir
from harness.records import IntegrityResult
from tests.integrity.pack_tier import RunningPack, load_then_check, running_pack

PACK_DIR = Path(__file__).resolve().parents[1] / "invoicing"
COMPANIES = 6

# A worker that takes a job from the shared queue, finishes it, then reads its receipt with the
# submitter's token, then posts to the public feed and reads it. {credit} is how the receipt read is credited.
WORKER = """
import random, sys
sys.path.insert(0, {pack!r})
from provision import auth_headers
from harness.pack_api import CustomerUser, task

class Worker(CustomerUser):
    def on_start(self):
        self.by_company = {{c["id"]: c for c in self.customers().values()}}

    @task
    def work(self):
        me = self.customer()
        self.client.post("/jobs", json={{"payload": "export"}}, headers=auth_headers(me), name="POST /jobs")
        with self.client.post("/jobs/take", headers=auth_headers(me), name="POST /jobs/take",
                              catch_response=True) as resp:
            job = resp.json() if resp.status_code == 200 else None
        if job is None:
            return
        self.client.post(f"/jobs/{{job['id']}}/finish", json={{"result": "ok"}}, headers=auth_headers(me),
                         name="POST /jobs/{{id}}/finish")
        submitter = self.by_company[job["company_id"]]
        {credit}
        self.client.post("/feed", json={{"text": "job done"}}, headers=auth_headers(me), name="POST /feed")
        self.client.get("/feed?limit=10", headers=auth_headers(me), name="GET /feed")

    def receipt(self, job, submitter):
        self.client.get(f"/jobs/{{job['id']}}/receipt", headers=auth_headers(submitter),
                        name="GET /jobs/{{id}}/receipt")
"""
CARELESS = "self.receipt(job, submitter)"
CREDITED = "with self.as_customer(submitter):\n            self.receipt(job, submitter)"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPack]:
    with running_pack(PACK_DIR, tmp_path_factory.mktemp("invoicing"), COMPANIES) as running:
        yield running


def audit_tier(tmp_path: Path, service: RunningPack, credit: str) -> tuple[Path, IntegrityResult]:
    lf = tmp_path / "locustfile.py"
    lf.write_text(textwrap.dedent(WORKER).format(pack=str(PACK_DIR), credit=credit), encoding="utf-8")
    return load_then_check(service, tmp_path, lf, rate=15.0, seconds=1.5)


def test_a_careless_worker_and_a_public_feed_report_no_leak(tmp_path: Path, service: RunningPack) -> None:
    ledger, result = audit_tier(tmp_path, service, CARELESS)
    suspected = {leak.request for leak in read_ledger_dir(ledger).leaks}
    assert suspected == {"GET /jobs/{id}/receipt", "GET /feed"}  # what used to be critical findings
    assert [v for v in result.violations if v.kind == "isolation-leak"] == [], result.violations
    replay = result.leak_replay
    assert replay is not None and replay.confirmed == 0 and replay.not_confirmed >= 1
    assert any("as_customer" in said for said in replay.findings)
    assert any(said.startswith("GET /feed is declared public: not scanned (") for said in result.public)


def test_a_worker_that_credits_the_submitter_raises_no_suspicion(tmp_path: Path, service: RunningPack) -> None:
    ledger, result = audit_tier(tmp_path, service, CREDITED)
    assert {leak.request for leak in read_ledger_dir(ledger).leaks} == {"GET /feed"}  # public, by design
    assert [v for v in result.violations if v.kind == "isolation-leak"] == []
    assert result.leak_replay is None  # the feed is public: nothing left to replay
