"""Change points over nights measured for real: audits of the scaled-down demo, healthy and with
one endpoint slowed (measured_nights.json, exported from their history databases; see the
README's nightly section for how they were run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.history.baseline import find_change_points
from harness.history.store import HistoryStore
from harness.records import ChangePoint, RunMetrics, RunSummary

MEASURED = json.loads((Path(__file__).with_name("measured_nights.json")).read_text())
SLOWED = ("GET /slots", "service_p50")


def _nights(runs: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """``count`` nights from the measured runs in the order they ran, reused from the first when
    fewer were measured (the README says how many were)."""
    return [runs[i % len(runs)] for i in range(count)]


def _series(tmp_path: Path, nights: list[dict[str, Any]]) -> list[ChangePoint]:
    with HistoryStore(tmp_path) as store:
        for n, night in enumerate(nights, 1):
            run = RunSummary(run_id=f"20261201-{n:02d}0000-{n:04x}", pack="booking", profile="quick",
                             finished_at=1_796_000_000.0 + 86_400 * n, verdict=night["verdict"], label=f"night {n}")  # fmt: skip
            store.add_run(RunMetrics(run, {(t, e, m): v for t, e, m, v in night["values"]}))
        return find_change_points(store, "booking", "quick")


def _night_of(change: ChangePoint) -> int:
    return int(change.run_id[9:11])


@pytest.mark.skipif(not MEASURED["slowed"], reason="no slowed night was measured")
def test_a_slowdown_from_night_5_is_a_change_point_at_night_5_or_6(tmp_path: Path) -> None:
    found = _series(tmp_path, _nights(MEASURED["healthy"], 4) + _nights(MEASURED["slowed"], 4))
    slowed = [c for c in found if (c.endpoint, c.metric) == SLOWED and c.tier == 200]
    assert slowed, [(c.endpoint, c.metric, c.tier) for c in found]
    assert _night_of(slowed[0]) in (5, 6)
    assert 0.15 <= slowed[0].shift <= 0.8  # a plausible size for a ~30 % slower endpoint


def test_eight_unchanged_nights_have_no_change_point(tmp_path: Path) -> None:
    found = _series(tmp_path, _nights(MEASURED["healthy"], 8))
    assert found == [], [(c.endpoint, c.metric, c.tier, _night_of(c), f"{c.shift:+.0%}") for c in found]
