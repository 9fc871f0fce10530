"""Change points over a nightly series: a slowdown from run 5 is found at run 5, noise is not."""

from __future__ import annotations

import numpy as np
import pytest

from harness.comparison import change_points
from harness.records import RunSummary


def _series(values: list[float]) -> list[tuple[RunSummary, float]]:
    return [(RunSummary(run_id=f"20261201-0{i}0000-000{i}", pack="booking", profile="nightly", finished_at=float(i),
                        verdict="READY", commit=f"c{i:03d}"), v) for i, v in enumerate(values)]  # fmt: skip


def _found(values: list[float]) -> list[int]:
    return [c.index for c in change_points(_series(values), tier=500, endpoint="GET /slots", metric="service_p50")]


@pytest.mark.parametrize("seed", range(10))
def test_a_thirty_percent_slowdown_from_run_5_is_found_at_run_5(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = list(rng.normal(2.0, 0.06, 4)) + list(rng.normal(2.6, 0.06, 4))  # 3 % noise, as measured A/A
    assert _found(values) == [4]  # 0-based: the fifth run


def test_the_change_point_names_the_runs_and_commits_either_side() -> None:
    (cp,) = change_points(_series([2.0, 2.05, 1.98, 2.02, 2.6, 2.62, 2.58, 2.61]), tier=500,
                          endpoint="GET /slots", metric="service_p50")  # fmt: skip
    assert (cp.run_id, cp.previous_run_id) == ("20261201-040000-0004", "20261201-030000-0003")
    assert (cp.commit_before, cp.commit_after) == ("c003", "c004")
    assert cp.before == pytest.approx(2.0125) and cp.shift == pytest.approx(0.296, abs=0.005)
    assert cp.p_value < 0.01


@pytest.mark.parametrize("seed", range(10))
def test_a_series_without_a_change_has_no_change_point(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    assert _found(list(rng.normal(2.0, 0.06, 10))) == []


def test_a_shift_under_ten_percent_is_not_a_change_point() -> None:
    assert _found([2.0, 2.0, 2.01, 1.99, 2.1, 2.11, 2.09, 2.1]) == []


def test_too_short_a_series_is_not_searched() -> None:
    assert _found([2.0, 2.0, 3.0, 3.0, 3.0]) == []
