"""harness.integrity.overlap: the overlap probe's bounds and its ledger, on a fake API."""

from __future__ import annotations

import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from harness.integrity.declare import concurrent_write, readback, resource
from harness.integrity.ledger import read_ledger_dir
from harness.integrity.overlap import probe_overlapping_writes

CUSTOMERS = [{"index": i, "api_key": f"key-{i}"} for i in range(5)]


def pack(send: Any = None) -> ModuleType:
    module = ModuleType("fake_invariants")
    module.item = resource("item", stable_fields=("n",))  # type: ignore[attr-defined]
    module.read_item = readback("item")(lambda client, customer, ident: None)  # type: ignore[attr-defined]
    if send is not None:
        module.send = concurrent_write("item")(send)  # type: ignore[attr-defined]
    return module


class InFlight:
    """A fake API that counts the requests it holds at once."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            if self.now >= 4:
                self.gate.set()
        self.gate.wait(timeout=2)  # held until four are in flight together (or 2 s)
        with self.lock:
            self.now -= 1
        return httpx.Response(201, json={"id": 1})


def post(client: httpx.Client, customer: Any, attempt: Any) -> None:
    with attempt.write(content={"n": attempt.position}) as w:
        w.done(client.post("/items", json={"n": attempt.position}).status_code, ident=attempt.position)


def run(module: ModuleType, api: InFlight, tmp_path: Path, **kw: Any) -> Any:
    options: dict[str, Any] = {"rounds": 3, "concurrency": 4, "request_timeout_s": 5.0, **kw}
    return probe_overlapping_writes(module, base_url="http://t.test", customers=CUSTOMERS,
                                    ledger_dir=tmp_path / "ledger", transport=httpx.MockTransport(api.handle),
                                    **options)  # fmt: skip


def test_each_round_sends_its_writes_together_for_one_customer_into_the_ledger(tmp_path: Path) -> None:
    api = InFlight()
    result = run(pack(post), api, tmp_path)
    assert api.most == 4  # all four of a round were in flight at once
    assert (result.rounds, result.writes, result.acknowledged, result.customers) == (3, 12, 12, (0, 1, 2))
    ops = read_ledger_dir(tmp_path / "ledger").operations
    assert sorted({o.customer for o in ops}) == [0, 1, 2] and all(o.outcome == "ok" for o in ops)


def test_a_pack_without_concurrent_write_or_zero_rounds_skips_it(tmp_path: Path) -> None:
    assert run(pack(), InFlight(), tmp_path) is None
    assert run(pack(post), InFlight(), tmp_path, rounds=0) is None


def test_the_time_budget_bounds_the_rounds_and_a_broken_function_is_a_note(tmp_path: Path) -> None:
    result = run(pack(post), InFlight(), tmp_path, time_budget_s=0.0)
    assert result.rounds == 0 and "stopped after 0 of 3 rounds" in result.note

    def broken(client: httpx.Client, customer: Any, attempt: Any) -> None:
        raise KeyError("practitioners")

    result = run(pack(broken), InFlight(), tmp_path, rounds=1)
    assert result.writes == 0 and "raised KeyError" in result.note
