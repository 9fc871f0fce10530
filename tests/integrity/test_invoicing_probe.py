"""The overlap probe on the second pack's service (tests/invoicing), end to end.

The pack declares its invoice create as a ``@concurrent_write`` and the company's invoice meter
as a ``@counter``. The probe raises 16 invoices at once for one company per round; the check
that follows must count every one on the healthy service and find the lost increments of
``lost-count``, whose meter is read in one transaction and written back in another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.integrity.check import check_tier
from harness.integrity.counters import read_counters
from harness.integrity.overlap import probe_overlapping_writes
from harness.records import IntegrityResult, OverlapProbeResult
from tests.integrity.pack_tier import running_pack

PACK_DIR = Path(__file__).resolve().parents[1] / "invoicing"
INVARIANTS = PACK_DIR / "invariants.py"
COMPANIES, ROUNDS, CONCURRENCY = 3, 3, 16


def _probe_then_check(tmp_path: Path, flaw: str | None) -> tuple[OverlapProbeResult | None, IntegrityResult]:
    with running_pack(PACK_DIR, tmp_path, COMPANIES, flaw=flaw) as running:
        common: dict[str, Any] = {"base_url": running.base_url, "customers": running.customers, "request_timeout_s": 10.0}
        before = read_counters(INVARIANTS, sample=COMPANIES, **common)
        probe = probe_overlapping_writes(INVARIANTS, ledger_dir=tmp_path / "ledger", rounds=ROUNDS,
                                         concurrency=CONCURRENCY, **common)  # fmt: skip
        result = check_tier(INVARIANTS, ledger_dir=tmp_path / "ledger", sample=60, counters_before=before,
                            time_budget_s=30.0, **common)  # fmt: skip
    return probe, result


def test_invoices_raised_at_once_are_each_stored_and_counted_on_the_healthy_service(tmp_path: Path) -> None:
    probe, result = _probe_then_check(tmp_path, flaw=None)
    assert probe is not None and probe.rounds == ROUNDS
    assert probe.writes == probe.acknowledged == ROUNDS * CONCURRENCY
    assert result.violations == (), result.violations
    assert result.status == "passed"


@pytest.mark.parametrize("flaw", ["lost-count"])
def test_the_probe_finds_a_meter_updated_by_read_modify_write(tmp_path: Path, flaw: str) -> None:
    probe, result = _probe_then_check(tmp_path, flaw=flaw)
    assert probe is not None and probe.acknowledged == ROUNDS * CONCURRENCY  # every invoice was stored
    lost = [v for v in result.violations if v.check == "counter"]
    assert lost and all(v.kind == "lost-write" for v in lost), result.violations
    assert not [v for v in result.violations if v.check != "counter"]  # the invoices themselves read back
