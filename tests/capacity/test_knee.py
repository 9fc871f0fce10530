"""The latency knee: Kneedle, as kneed computes it, and only where latency really rises."""

from __future__ import annotations

import numpy as np
import pytest

from harness.capacity import find_knee


class TestFindKnee:
    def test_finds_the_corner_of_a_hockey_stick(self) -> None:
        offered = np.arange(100, 1300, 100, dtype=float)
        latency = np.where(offered <= 800, 20 + offered / 100, 28 + (offered - 800) ** 2 / 200)
        knee = find_knee(offered, latency)
        assert knee is not None and 700 <= knee <= 900

    def test_flat_noisy_latency_has_no_knee(self) -> None:
        rng = np.random.default_rng(0)
        offered = np.arange(100, 1300, 100, dtype=float)
        assert find_knee(offered, 20 + rng.uniform(-1, 1, offered.size)) is None

    def test_too_few_points(self) -> None:
        assert find_knee([1, 2, 3], [1, 1, 100]) is None
        assert find_knee([], []) is None

    def test_repeated_loads_are_averaged_and_order_does_not_matter(self) -> None:
        offered = [800, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
        latency = [30, 10, 10, 11, 11, 12, 12, 14, 26, 80, 300]
        assert find_knee(offered, latency) == find_knee(sorted(offered), sorted(latency))

    @pytest.mark.parametrize("seed", range(15))
    def test_agrees_with_kneed(self, seed: int) -> None:
        kneed = pytest.importorskip("kneed")
        rng = np.random.default_rng(seed)
        x = np.sort(rng.uniform(1, 100, 12))
        x = np.unique(x)
        y = np.exp(x / rng.uniform(10, 40)) + rng.uniform(0, 1, x.size)
        y = np.maximum.accumulate(y)
        theirs = kneed.KneeLocator(x, y, S=1.0, curve="convex", direction="increasing").knee
        ours = find_knee(x, y)
        if ours is not None:  # ours may additionally refuse a knee without a 1.5x rise
            assert ours == pytest.approx(theirs)
