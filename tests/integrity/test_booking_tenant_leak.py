"""The booking demo's tenant-leak flaw is still found under load, and confirmed by replay.

``--flaw tenant-leak`` makes the patient search forget the clinic filter. The demo's own
locustfile searches patients as each clinic; the load engine sees other clinics' markers; the
integrity check replays the search as the clinic and reports the leak with what came back. The
healthy demo, under the same load, raises no suspicion at all (a `slow` test). About ten
seconds each on a quiet machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.integrity.ledger import read_ledger_dir
from tests.integrity.pack_tier import load_then_check, running_pack

BOOKING = Path(__file__).resolve().parents[2] / "scenarios" / "booking"
CLINICS = 8


# The healthy run is behind `slow`: the selftest matrix audits the healthy demo anyway.
@pytest.mark.parametrize("flaw", ["tenant-leak", pytest.param(None, marks=pytest.mark.slow)])
def test_the_patient_search_leak_is_confirmed_by_replay(tmp_path: Path, flaw: str | None) -> None:
    with running_pack(BOOKING, tmp_path, CLINICS, flaw=flaw) as running:
        ledger, result = load_then_check(running, tmp_path, BOOKING / "locustfile.py", rate=25.0, seconds=2.0)
    suspected = read_ledger_dir(ledger).leaks
    leaks = [v for v in result.violations if v.kind == "isolation-leak" and v.check == "isolation-under-load"]
    if flaw is None:
        assert suspected == () and leaks == [] and result.leak_replay is None
        return
    assert {s.request for s in suspected} == {"GET /patients?q"}
    assert leaks and all("confirmed by replay" in v.detail for v in leaks), leaks
    assert "replayed as customer" in leaks[0].detail and "answered 200 with the markers" in leaks[0].detail
    replay = result.leak_replay
    assert replay is not None and replay.confirmed == len(leaks) and replay.not_confirmed == 0
