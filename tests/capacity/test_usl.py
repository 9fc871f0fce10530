"""The USL fit: known parameters recovered within their intervals, bands, and refusals."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.capacity import InsufficientData, UslFit, fit_usl
from harness.records import UslParameters
from tests.capacity.usl_service import usl


class TestFitUsl:
    N = np.array([1, 2, 4, 8, 16, 32, 48, 64, 96], dtype=float)
    TRUE = {"lambda": 1000.0, "sigma": 0.02, "kappa": 5e-4}

    def test_recovers_known_parameters_within_intervals_in_most_seeds(self) -> None:
        hits = dict.fromkeys(self.TRUE, 0)
        seeds = range(20)
        for seed in seeds:
            rng = np.random.default_rng(seed)
            x = usl(self.N, *self.TRUE.values()) * (1 + 0.03 * rng.standard_normal(self.N.size))
            fit = fit_usl(self.N, x)
            for name, true in self.TRUE.items():
                low, high = fit.interval(name)  # type: ignore[arg-type]
                hits[name] += low <= true <= high
        # nominal 95 % intervals; the linearisation is approximate, so ask for 80 %
        assert all(h >= 16 for h in hits.values()), hits

    def test_matches_the_published_spec_sdm91_fit_when_unweighted(self) -> None:
        n = [1, 18, 36, 72, 108, 144, 216]
        x = [64.9, 995.9, 1652.4, 1853.2, 1828.9, 1775.0, 1702.0]
        fit = fit_usl(n, x, weighting="absolute")  # as the R usl package
        assert fit.sigma == pytest.approx(0.028, abs=0.002)
        assert fit.kappa == pytest.approx(1.04e-4, rel=0.03)
        assert fit.n_star == pytest.approx(math.sqrt((1 - fit.sigma) / fit.kappa))
        x_hat, low, high = fit.predict(432.0)
        assert (high - low) / 2 / x_hat == pytest.approx(0.30, abs=0.05)  # about ±30 % at 2x N

    def test_refuses_fewer_than_six_distinct_load_levels(self) -> None:
        with pytest.raises(InsufficientData, match="at least 6 distinct load levels .*; got 5 "):
            fit_usl([1, 2, 4, 8, 16], [10, 19, 36, 60, 80])
        # repeated levels do not count twice
        with pytest.raises(InsufficientData, match="got 5"):
            fit_usl([1, 2, 4, 8, 16, 16, 16], [10, 19, 36, 60, 80, 81, 79])

    def test_insufficient_data_is_a_value_error(self) -> None:
        assert issubclass(InsufficientData, ValueError)

    def test_rejects_malformed_input(self) -> None:
        with pytest.raises(ValueError, match="same length"):
            fit_usl([1, 2, 3], [1, 2])
        with pytest.raises(ValueError, match="NaN"):
            fit_usl([1, 2, 3, 4, 5, float("nan")], [1, 2, 3, 4, 5, 6])

    def test_is_robust_at_sub_unit_concurrency(self) -> None:
        # A 2 ms service at light load: N = X·R from 0.01 to ~2, then saturation at 400 req/s.
        n = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0, 1.5, 3, 8, 20, 40])
        x = usl(n, 500.0, 0.2, 0.0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fit = fit_usl(n, x)
        assert fit.lam == pytest.approx(500.0, rel=1e-3)
        assert fit.sigma == pytest.approx(0.2, rel=1e-2)
        assert fit.kappa == 0.0
        assert math.isinf(fit.n_star)
        assert fit.x_max == pytest.approx(500 / 0.2, rel=1e-2)  # Amdahl asymptote λ/σ
        assert fit.dominant == "contention"

    def test_a_parameter_seen_through_one_point_has_no_band(self) -> None:
        n = np.array([0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 40.0])
        fit = fit_usl(n, usl(n, 100.0, 0.05, 1e-3) * np.linspace(0.97, 1.03, n.size))
        assert not fit.has_band and math.isinf(fit.sigma_se)
        x_hat, low, high = fit.predict(10.0)
        assert low == 0.0 and math.isinf(high)

    def test_linear_scaling_has_no_limit(self) -> None:
        n = np.array([0.05, 0.1, 0.2, 0.4, 0.6, 0.8])
        fit = fit_usl(n, 300 * n)
        assert fit.sigma == 0.0 and fit.kappa == 0.0
        assert math.isinf(fit.x_max) and fit.dominant == "none"

    def test_coherency_dominates_a_retrograde_curve(self) -> None:
        n = np.array([1, 2, 4, 8, 16, 32, 64, 128], dtype=float)
        fit = fit_usl(n, usl(n, 100.0, 0.001, 0.002))
        assert fit.dominant == "coherency"
        assert fit.n_star == pytest.approx(math.sqrt(0.999 / 0.002), rel=1e-3)

    def test_predict_gives_a_band_around_the_curve(self) -> None:
        rng = np.random.default_rng(1)
        x = usl(self.N, *self.TRUE.values()) * (1 + 0.03 * rng.standard_normal(self.N.size))
        fit = fit_usl(self.N, x)
        x_hat, low, high = fit.predict(20.0)
        assert isinstance(x_hat, float) and low < x_hat < high
        xs, lows, highs = fit.predict(np.array([10.0, 100.0, 400.0]))
        assert xs.shape == (3,) and np.all(lows <= xs) and np.all(xs <= highs)
        widths = (highs - lows) / xs
        assert widths[2] > widths[0]  # extrapolation is less certain

    def test_params_round_trip(self) -> None:
        fit = fit_usl(self.N, usl(self.N, *self.TRUE.values()) * np.linspace(0.98, 1.02, self.N.size))
        again = UslFit.from_params(fit.to_params())
        assert again is not None
        for n in (1.0, 30.0, 200.0):
            assert again.predict(n) == pytest.approx(fit.predict(n))
        assert UslFit.from_params(None) is None
        assert UslFit.from_params(UslParameters(sigma=0.02, kappa=5e-4, lam=1000.0)) is None  # no n_points

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(
            st.tuples(st.floats(0.01, 500), st.floats(0.01, 1e5)), min_size=6, max_size=15
        ).filter(lambda pts: len({round(n, 6) for n, _ in pts}) >= 6)
    )
    def test_any_positive_data_gives_a_bounded_fit(self, pts: list[tuple[float, float]]) -> None:
        n, x = zip(*pts, strict=True)
        fit = fit_usl(n, x)
        assert 0 <= fit.sigma <= 1 and 0 <= fit.kappa <= 1 and fit.lam >= 0
        x_hat, low, high = fit.predict(float(max(n)))
        assert low <= x_hat <= high or math.isnan(high)
