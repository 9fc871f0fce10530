"""Provisioning grows the customer store tier by tier, in parallel, and resumes after a failure."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.load.noise_floor import run_null_target
from harness.pacing import RequestPacer
from harness.provisioning import CustomerStore, provision


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with run_null_target(service_ms=0.2) as url:
        yield url


async def create_customer(client: httpx.AsyncClient, index: int, rng: random.Random, marker: str) -> dict[str, Any]:
    response = await client.get(f"/customers/{index}")
    response.raise_for_status()
    return {"id": index, "api_key": f"key-{rng.randrange(10**9)}", "marker": marker}


def run(store: CustomerStore, base_url: str, upto: int, hook: Any = create_customer, **kw: Any):
    return provision(hook, store, base_url=base_url, upto=upto, concurrency=8, seed=7, timeout_s=5, **kw)


def test_each_tier_grows_from_the_previous_one(tmp_path: Path, base_url: str) -> None:
    store = CustomerStore(tmp_path / "customers.jsonl", run_token="ab12")
    first = run(store, base_url, 5)
    second = run(store, base_url, 20)
    assert (first.created, second.created) == (5, 15)
    assert second.customers == 20 and second.failed == 0
    assert [c["index"] for c in store.all()] == list(range(20))


def test_markers_are_unique_per_customer_and_per_run(tmp_path: Path, base_url: str) -> None:
    store = CustomerStore(tmp_path / "customers.jsonl", run_token="ab12")
    run(store, base_url, 30)
    markers = [c["marker"] for c in store.all()]
    assert len(set(markers)) == 30
    assert all(m.startswith("srmab12c") for m in markers)


def test_data_is_deterministic_for_a_seed(tmp_path: Path, base_url: str) -> None:
    a = CustomerStore(tmp_path / "a.jsonl", run_token="x")
    b = CustomerStore(tmp_path / "b.jsonl", run_token="x")
    run(a, base_url, 6)
    run(b, base_url, 6)
    assert a.all() == b.all()


def test_failures_are_counted_not_raised_and_a_rerun_resumes(tmp_path: Path, base_url: str) -> None:
    async def flaky(client: httpx.AsyncClient, index: int, rng: random.Random, marker: str) -> dict[str, Any]:
        if index % 4 == 3:
            raise RuntimeError(f"clinic {index} rejected")
        return await create_customer(client, index, rng, marker)

    path = tmp_path / "customers.jsonl"
    result = run(CustomerStore(path, run_token="r"), base_url, 12, hook=flaky)
    assert (result.created, result.failed, result.customers) == (9, 3, 9)
    assert "clinic 3 rejected" in result.errors[0] or any("rejected" in e for e in result.errors)

    reopened = CustomerStore(path, run_token="r")  # e.g. the next run after an interruption
    assert reopened.missing(12) == [3, 7, 11]
    resumed = run(reopened, base_url, 12)
    assert (resumed.created, resumed.customers) == (3, 12)


def test_cancel_stops_provisioning_early(tmp_path: Path, base_url: str) -> None:
    cancel = threading.Event()
    cancel.set()
    result = run(CustomerStore(tmp_path / "c.jsonl"), base_url, 50, cancel=cancel)
    assert result.created == 0 and result.customers == 0


def test_the_packs_max_rps_holds_the_hooks_requests_whatever_the_concurrency(tmp_path: Path, base_url: str) -> None:
    # Eight customers at once, two requests each, under a cap of 40 requests/s: 32 requests take
    # at least 31 paced intervals, and every one of them went through the pacer.
    async def two_requests(client: httpx.AsyncClient, index: int, rng: random.Random, marker: str) -> dict[str, Any]:
        for _ in range(2):
            (await client.get(f"/customers/{index}")).raise_for_status()
        return {"id": index, "marker": marker}

    pacer = RequestPacer(40.0)
    store = CustomerStore(tmp_path / "customers.jsonl", run_token="ab12")
    result = run(store, base_url, 16, hook=two_requests, pacer=pacer)
    assert result.created == 16
    assert pacer.requests == 32
    assert result.duration_s >= 31 / 40 - 0.05
