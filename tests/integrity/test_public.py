"""Public data a pack declares (``public(...)``, ``resource(..., public=True)``) is not a leak.

A feed every customer reads holds every customer's markers by design. Declared public, its
responses are left out of the marker scans, under load and after it, a public kind's
identifiers are not expected to be refused to other customers, and the report says so. Each
test also runs undeclared, where the same data is a leak: the declaration is what changes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.integrity.declare import Public, public
from harness.integrity.ledger import Ledger
from tests.integrity.shared_queue import INVARIANTS, Desk, check_desk, customers, serve

CUSTOMERS = customers(4)
FEED_PUBLIC = INVARIANTS + '\nfrom harness.pack_api import public\nfeed = public("GET /feed")\n'
READS = """
from harness.pack_api import Read, isolation_reads

@isolation_reads
def reads(customer):
    return [Read("/feed"), Read("/mine")]
"""
RECEIPTS = """
from harness.pack_api import readback, resource

receipt = resource("receipt", stable_fields=("job",), id_field="job"{public})

@readback("receipt")
def read_receipt(client, customer, ident):
    r = client.get("/feed", headers=auth_headers(customer))
    r.raise_for_status()
    found = next((item for item in r.json() if str(item["job"]) == ident), None)
    # As a public page shows it: the receipt beside the others in the feed.
    return None if found is None else {{**found, "beside": r.json()}}
"""


def desk_with_finished_jobs() -> Desk:
    desk = Desk()
    for i in range(4):
        ident = desk.submit(i)
        desk.queue.remove(ident)
        desk.jobs[ident].update(done=True, worker=(i + 1) % 4)
    return desk


def feed_seen_under_load(folder: Path) -> Path:
    with Ledger.open(folder) as ledger:
        ledger.observe_leak(customer=0, foreign=[1, 2], request="GET /feed", status=200, at=10.0,
                            method="GET", url="/feed")  # fmt: skip
    return folder


def test_patterns_are_paths_after_an_optional_method() -> None:
    feed = public("GET /feed", "/posts/*")
    assert feed.match("GET", "/feed") == "GET /feed"
    assert feed.match("POST", "/feed") is None  # the method was named
    assert feed.match("DELETE", "/posts/7/comments") == "/posts/*"  # any method, * spans /
    assert feed.match("GET", "/feeds") is None
    for wrong in ("feed", "GET feed", "GET-ALL /feed", ""):
        with pytest.raises(ConfigError, match="a pattern is a path"):
            public(wrong)
    with pytest.raises(ConfigError, match="at least one path"):
        public()
    assert isinstance(feed, Public)


@pytest.mark.parametrize("declared", [True, False])
def test_a_public_feed_seen_under_load_is_not_a_leak_when_declared(tmp_path: Path, declared: bool) -> None:
    desk = desk_with_finished_jobs()
    with serve(desk) as url:
        result = check_desk(tmp_path, url, feed_seen_under_load(tmp_path / "ledger"), CUSTOMERS,
                            FEED_PUBLIC if declared else INVARIANTS)  # fmt: skip
    if declared:
        assert result.violations == ()
        assert "GET /feed" not in desk.requests  # not replayed either: public is public
        assert result.public == ("GET /feed is declared public: not scanned "
                                 "(1 response(s) under load carried other customers' markers)",)  # fmt: skip
        assert result.public[0] in result.note
    else:  # the replay finds other customers' receipts in the feed: undeclared, that is a leak
        [v] = result.violations
        assert v.kind == "isolation-leak" and "confirmed by replay" in v.detail
        assert result.public == ()


@pytest.mark.parametrize("declared", [True, False])
def test_a_public_path_is_left_out_of_the_isolation_reads(tmp_path: Path, declared: bool) -> None:
    desk = desk_with_finished_jobs()
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    with serve(desk) as url:
        result = check_desk(tmp_path, url, ledger, CUSTOMERS, (FEED_PUBLIC if declared else INVARIANTS) + READS)
    assert desk.requests["GET /mine"] >= 1  # the other read is still made and scanned
    if declared:
        assert result.violations == () and result.status == "passed"
        assert "GET /feed" not in desk.requests
        [said] = result.public
        assert said.startswith("GET /feed is declared public: not scanned") and "isolation read(s) skipped" in said
    else:
        assert {v.detail.split(",")[0] for v in result.violations} == {"GET /feed"}


@pytest.mark.parametrize("declared", [True, False])
def test_a_public_kind_may_be_read_by_other_customers(tmp_path: Path, declared: bool) -> None:
    desk = desk_with_finished_jobs()
    ledger = tmp_path / "ledger"
    with Ledger.open(ledger) as book:
        for job in desk.jobs.values():
            book.record(customer=job["submitter"], kind="receipt", op="create", status=201, ident=job["id"],
                        content={"job": job["id"]}, started=1.0, ended=1.1)  # fmt: skip
    invariants = INVARIANTS + RECEIPTS.format(public=", public=True" if declared else "")
    with serve(desk) as url:
        result = check_desk(tmp_path, url, ledger, CUSTOMERS, invariants)
    assert result.checks["set"] == 4  # written receipts are still read back and compared
    if declared:
        assert result.violations == () and result.status == "passed"
        assert desk.requests["GET /feed"] == 4  # each owner's read-back, and no other customer's
        assert result.public == ("resource receipt is declared public: its read-backs are not scanned, "
                                 "and another customer's read of one is not expected to be refused",)  # fmt: skip
    else:
        assert desk.requests["GET /feed"] > 4
        details = [v.detail for v in result.violations]
        assert any("should have been refused" in d for d in details)
        assert any(d.startswith("read-back of receipt") for d in details)  # the scan saw the others
