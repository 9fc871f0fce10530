"""A pack's own service, customers and integrity check around a second of load (for e2e tests).

:func:`running_pack` starts the pack's service as an audit starts it (optionally with a flaw)
and provisions customers with the pack's provision.py; :func:`load_then_check` runs one short
phase of a locustfile through the real load engine, then the pack's invariants.py over the
tier's ledger. Seconds, not minutes: no gate, no properties, no tiers of an audit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.integrity.check import check_tier
from harness.load import LoadPlan, PhasePlan, run_load
from harness.pack import Pack, load_pack, provision_hook
from harness.provisioning import CustomerStore, provision
from harness.records import IntegrityResult
from harness.target import ManagedTarget, StartSpec


@dataclass(frozen=True)
class RunningPack:
    pack: Pack
    base_url: str
    customers: list[dict[str, Any]]


@contextmanager
def running_pack(pack_dir: Path, folder: Path, customers: int, flaw: str | None = None) -> Iterator[RunningPack]:
    pack = load_pack(pack_dir)
    config = pack.config.target
    assert config.start is not None
    spec = StartSpec(command=config.start, cwd=pack.target_cwd, health_path=config.health_path,
                     ready_timeout_s=config.ready_timeout_s, env={}, flaw=flaw, flaw_env=config.flaw_env)  # fmt: skip
    with ManagedTarget(spec, log_path=folder / "target.log") as target:
        store = CustomerStore(folder / "customers.jsonl")
        made = provision(provision_hook(pack), store, base_url=target.base_url, upto=customers,
                         concurrency=2, seed=1, timeout_s=10.0)  # fmt: skip
        assert made.failed == 0, made.errors
        yield RunningPack(pack, target.base_url, store.all())


def load_then_check(running: RunningPack, folder: Path, locustfile: Path, *, rate: float,
                    seconds: float) -> tuple[Path, IntegrityResult]:  # fmt: skip
    """One steady phase of ``locustfile`` at ``rate`` for ``seconds``, then the integrity check."""
    cfile = folder / "customers.jsonl"
    cfile.write_text("".join(json.dumps(c) + "\n" for c in running.customers), encoding="utf-8")
    ledger = folder / "ledger"
    outcome = run_load(LoadPlan(
        locustfile=str(locustfile), host=running.base_url, output_dir=str(folder / "out"),
        customers_file=str(cfile), phases=(PhasePlan("steady", "steady", rate, seconds),),
        request_timeout_s=5.0, max_users=10, env={"SCALEREADY_LEDGER_DIR": str(ledger)},
    ))  # fmt: skip
    assert outcome.error is None
    assert running.pack.invariants_file is not None
    result = check_tier(running.pack.invariants_file, base_url=running.base_url, customers=running.customers,
                        ledger_dir=ledger, sample=30, request_timeout_s=5.0, time_budget_s=30.0)  # fmt: skip
    return ledger, result
