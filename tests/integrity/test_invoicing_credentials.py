"""Tokens that expire under load, on the second pack's service (tests/invoicing), end to end.

The service issues 8 s tokens; one 10 s phase of the pack's own locustfile runs through the real
load engine. With the pack's refresh_credentials the phase has no error at all, whether a record
states its expiry (refreshed ahead of it) or not (refreshed on its first 401); without the hook,
the tokens' expiry shows as the service's 401s.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.credentials import CREDENTIALS_ENV, EXPIRES_AT_KEY
from harness.integrity.ledger import LEDGER_DIR_ENV
from harness.load import LoadPlan, PhasePlan, run_load
from harness.records import PhaseMeasurement
from tests.integrity.pack_tier import running_pack

PACK_DIR = Path(__file__).resolve().parents[1] / "invoicing"
COMPANIES = 4
TOKEN_TTL_S = "8"  # shorter than the phase, longer than the refresh's 5 s lead
PHASE_S = 10.0


def _phase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, hook: bool) -> PhaseMeasurement:
    monkeypatch.setenv("INVOICING_TOKEN_TTL_S", TOKEN_TTL_S)  # the service inherits it
    with running_pack(PACK_DIR, tmp_path, COMPANIES) as running:
        # Half the records state when their token expires, half do not (only a 401 tells).
        records = [c if c["index"] % 2 == 0 else {k: v for k, v in c.items() if k != EXPIRES_AT_KEY}
                   for c in running.customers]  # fmt: skip
        customers = tmp_path / "load-customers.jsonl"
        customers.write_text("".join(json.dumps(c) + "\n" for c in records), encoding="utf-8")
        env = {LEDGER_DIR_ENV: str(tmp_path / "ledger")}
        if hook:
            env[CREDENTIALS_ENV] = str(PACK_DIR / "provision.py")
        outcome = run_load(LoadPlan(
            locustfile=str(PACK_DIR / "locustfile.py"), host=running.base_url, output_dir=str(tmp_path / "out"),
            customers_file=str(customers), phases=(PhasePlan("steady", "steady", 8.0, PHASE_S),),
            request_timeout_s=5.0, max_users=10, env=env,
        ))  # fmt: skip
    assert outcome.error is None
    (phase,) = outcome.phases
    return phase


def _refused(phase: PhaseMeasurement) -> int:
    return sum(e.errors_by_reason.get("http-401", 0) for e in phase.endpoints)


@pytest.mark.slow
def test_with_refresh_credentials_tokens_expiring_mid_phase_cost_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    phase = _phase(tmp_path, monkeypatch, hook=True)
    assert phase.requests > 40
    assert (phase.errors, _refused(phase)) == (0, 0), [(e.name, e.errors_by_reason) for e in phase.endpoints]
    # Every company's token outlived once at least (those with no stated expiry through a 401).
    assert phase.credential_refreshes >= COMPANIES and phase.credential_refresh_failures == 0
    assert not [e.name for e in phase.endpoints if "token" in e.name]  # the hook's requests are not measured


@pytest.mark.slow
def test_without_the_hook_expired_tokens_are_the_services_401s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    phase = _phase(tmp_path, monkeypatch, hook=False)
    assert _refused(phase) > 0 and _refused(phase) == phase.errors
    assert phase.credential_refreshes == 0
