"""The overlap probe against the real booking demo: the pack's @concurrent_write, sent at once.

With uniform traffic two bookings of one clinic almost never overlap; the probe overlaps them on
purpose, and the integrity check that follows (the pack's @counter against the ledger) must
find lost-update's miscount and give the healthy service a clean bill.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from booking_demo import PACK_DIR, Demo

from harness.integrity.check import check_tier
from harness.integrity.counters import read_counters
from harness.integrity.overlap import probe_overlapping_writes
from harness.pack import import_module_file
from harness.records import IntegrityResult, OverlapProbeResult

INVARIANTS = PACK_DIR / "invariants.py"
ROUNDS, CONCURRENCY = 3, 16


def _customers(demo: Demo, n: int = 3) -> list[dict[str, Any]]:
    # The pack's own provisioning, by path: another pack's provision.py may be imported already.
    provision = import_module_file(PACK_DIR / "provision.py", "booking_pack_provision", PACK_DIR)

    async def create(index: int) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=demo.url, timeout=10.0) as client:
            record = await provision.create_customer(client, index, random.Random(index), f"srmt00001c{index:06d}")
        return {**record, "index": index}

    import asyncio

    return [asyncio.run(create(i)) for i in range(n)]


def _probe_then_check(demo: Demo, ledger: Path) -> tuple[OverlapProbeResult | None, IntegrityResult]:
    customers = _customers(demo)
    common: dict[str, Any] = {"base_url": demo.url, "customers": customers, "request_timeout_s": 10.0}
    before = read_counters(INVARIANTS, sample=10, **common)
    probe = probe_overlapping_writes(INVARIANTS, ledger_dir=ledger, rounds=ROUNDS, concurrency=CONCURRENCY, **common)
    result = check_tier(INVARIANTS, ledger_dir=ledger, sample=60, counters_before=before, **common)
    return probe, result


def test_the_probe_overlaps_bookings_and_the_counter_finds_the_lost_update(
    demo: Callable[[str], Demo], tmp_path: Path
) -> None:
    probe, result = _probe_then_check(demo("lost-update"), tmp_path / "ledger")
    assert probe is not None and probe.rounds == ROUNDS and probe.customers == (0, 1, 2)
    assert probe.writes == ROUNDS * CONCURRENCY and probe.acknowledged == ROUNDS * (CONCURRENCY - 1)
    lost = [v for v in result.violations if v.check == "counter"]
    assert lost and all(v.kind == "lost-write" for v in lost), result
    assert probe.duration_s < 10


def test_the_healthy_demo_passes_the_probe_with_one_booking_per_slot(
    demo: Callable[[str], Demo], tmp_path: Path
) -> None:
    probe, result = _probe_then_check(demo("none"), tmp_path / "ledger")
    assert probe is not None
    # The first two attempts of a round take one slot: exactly one gets it, the other is a 409.
    assert (probe.acknowledged, probe.refused, probe.unknown) == (ROUNDS * (CONCURRENCY - 1), ROUNDS, 0)
    assert result.status == "passed", result
    assert result.checks["counter"] == 3 and result.checks["set"] == ROUNDS * (CONCURRENCY - 1)
