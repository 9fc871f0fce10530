"""The audit's progress events as the command line draws them."""

from __future__ import annotations

import io

from rich.console import Console

from harness.cli import _LiveObserver
from harness.progress import LoadProgress, Provisioning, TierStep


def drawn(*events: object) -> str:
    out = io.StringIO()
    observer = _LiveObserver(Console(file=out, width=200, force_terminal=False), None)
    observer.stage("tier", "500 customers")
    for event in events:
        observer.progress(event)  # type: ignore[arg-type]
    observer._refresh(force_plain=True)
    return out.getvalue().splitlines()[-1]


def test_a_load_second_shows_the_phase_rate_errors_users_and_drops() -> None:
    line = drawn(LoadProgress(phase="steady", elapsed=12.0, duration=40.0, rps=377.4, errors=2, users=33, dropped=1))
    assert "steady 12/40s  377 req/s  errors 2  users 33  dropped 1" in line


def test_provisioning_shows_how_many_customers_exist_and_a_step_clears_the_load() -> None:
    assert "provisioning 450/500" in drawn(Provisioning(customers=500, done=450, total=500))
    line = drawn(LoadProgress(phase="steady", elapsed=1.0, duration=40.0, rps=1.0, errors=0, users=1, dropped=0),
                 TierStep("integrity"))  # fmt: skip
    assert "checking integrity" in line and "req/s" not in line
