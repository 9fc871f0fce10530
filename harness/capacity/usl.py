"""The Universal Scalability Law (Gunther): the model, its fit and its uncertainty.

::

    X(N) = λN / (1 + σ(N−1) + κN(N−1))        R(N) = N / X(N) = (1 + σ(N−1) + κN(N−1)) / λ

fitted to goodput X against the in-server concurrency N = X·R (Little's law; not the number of
virtual users, which in an open model says nothing about the server). σ is contention
(serialisation, Amdahl), κ coherency (crosstalk that makes throughput fall past a peak).
The fit follows the R ``usl`` package: bounded non-linear least squares (σ, κ ∈ [0, 1], λ ≥ 0;
start λ = max(X/N), σ = 0.01, κ = 1e-4), standard errors from the covariance, Student t with
n − 3 degrees of freedom.

Below one request in flight there is nobody to contend with, so the model is taken as X = λN for
N < 1 (it equals the USL at N = 1 and above). The bare formula would say a server at N = 0.05
is *faster* than at N = 1 (its denominator drops below 1), and a fast service at light load lives
exactly there (N = 0.05 .. 2), so without this the light-load points would drag σ towards 0.

Uncertainty: ``UslFit.predict`` gives a pointwise band of the fitted curve by the delta method
(analytic Jacobian, Student t, n − 3 dof). Quantities that are non-linear or kinked in the
parameters (N*, the peak, the SLO-limited capacity; N* is infinite at κ = 0) are propagated from
the same asymptotic distribution by simulation (``UslFit.sample``: a multivariate t with a fixed
seed, so the report is reproducible) instead of being linearised.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

from harness.records import UslParameters

__all__ = [
    "CONFIDENCE_LEVEL",
    "MIN_LOAD_LEVELS",
    "InsufficientData",
    "UslFit",
    "capacity_throughput",
    "distinct_levels",
    "fit_usl",
    "penalties",
    "slo_concurrency",
]

#: Two-sided level of every interval and band the capacity analysis reports.
CONFIDENCE_LEVEL = 0.95
#: Fewest distinct load levels a USL fit accepts (Coda Hale's ``usl`` refuses fewer than 6).
MIN_LOAD_LEVELS = 6

_MC_DRAWS = 4000
_MC_SEED = 20240611


class InsufficientData(ValueError):
    """The measurements cannot support the requested model (too few or unusable points)."""


def _denominator(n: NDArray[np.float64], sigma: ArrayLike, kappa: ArrayLike) -> NDArray[np.float64]:
    m = np.maximum(n, 1.0)  # X = λN below one request in flight (see the module docstring)
    return 1.0 + np.asarray(sigma) * (m - 1.0) + np.asarray(kappa) * m * (m - 1.0)


def _usl(n: ArrayLike, lam: ArrayLike, sigma: ArrayLike, kappa: ArrayLike) -> NDArray[np.float64]:
    n_arr = np.asarray(n, dtype=float)
    return np.asarray(lam) * n_arr / _denominator(n_arr, sigma, kappa)


def _usl_jacobian(n: ArrayLike, lam: float, sigma: float, kappa: float) -> NDArray[np.float64]:
    """dX/d(λ, σ, κ), one row per N."""
    n_arr = np.atleast_1d(np.asarray(n, dtype=float))
    m = np.maximum(n_arr, 1.0)
    d = _denominator(n_arr, sigma, kappa)
    return np.column_stack(
        (n_arr / d, -lam * n_arr * (m - 1.0) / d**2, -lam * n_arr * m * (m - 1.0) / d**2)
    )


def _peak(lam: ArrayLike, sigma: ArrayLike, kappa: ArrayLike) -> tuple[NDArray, NDArray]:
    """(N*, X(N*)) for scalars or arrays; N* = inf and X = λ/σ (Amdahl) when κ = 0."""
    lam_a, sig_a, kap_a = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (lam, sigma, kappa)))
    with np.errstate(divide="ignore", invalid="ignore"):
        n_star = np.where(kap_a > 0, np.sqrt(np.clip(1.0 - sig_a, 0.0, None) / kap_a), np.inf)
        n_star = np.maximum(n_star, 1.0)  # below N = 1 the model rises linearly
        amdahl = np.where(sig_a > 0, lam_a / sig_a, np.inf)
    finite = np.isfinite(n_star)
    x_peak = np.where(finite, _usl(np.where(finite, n_star, 1.0), lam_a, sig_a, kap_a), amdahl)
    return n_star, x_peak


def slo_concurrency(lam: ArrayLike, sigma: ArrayLike, kappa: ArrayLike, r_limit_s: float) -> NDArray:
    """Largest N whose modelled mean response time R(N) stays within ``r_limit_s``.

    R(N) = 1/λ below N = 1 and d(N)/λ above, non-decreasing: solve d(N) = c with c = λ·r_limit,
    i.e. κN² + (σ−κ)N + (1−σ−c) = 0, in the cancellation-free form N = −2C / (B + √(B²−4κC)).
    Returns 0 where even light load misses the limit (c < 1) and inf where R never reaches it.
    """
    lam_a, sig_a, kap_a = (np.asarray(v, dtype=float) for v in (lam, sigma, kappa))
    c = lam_a * r_limit_s
    b = sig_a - kap_a
    cc = 1.0 - sig_a - c
    with np.errstate(divide="ignore", invalid="ignore"):
        root = -2.0 * cc / (b + np.sqrt(np.clip(b * b - 4.0 * kap_a * cc, 0.0, None)))
        amdahl = np.where(sig_a > 0, 1.0 + (c - 1.0) / np.where(sig_a > 0, sig_a, 1.0), np.inf)
        n_slo = np.where(kap_a > 0, root, amdahl)
    n_slo = np.where(np.isnan(n_slo), np.inf, n_slo)
    n_slo = np.maximum(n_slo, 1.0)
    return np.where(c < 1.0, 0.0, n_slo)


def capacity_throughput(lam: ArrayLike, sigma: ArrayLike, kappa: ArrayLike, r_limit_s: float) -> NDArray:
    """Largest modelled throughput reachable with R(N) within the limit: X(min(N_slo, N*))."""
    n_star, x_peak = _peak(lam, sigma, kappa)
    n_slo = slo_concurrency(lam, sigma, kappa, r_limit_s)
    n_cap = np.minimum(n_slo, n_star)
    finite = np.isfinite(n_cap)
    x_at = _usl(np.where(finite, n_cap, 1.0), lam, sigma, kappa)
    return np.where(finite, x_at, x_peak)


@dataclass(frozen=True)
class UslFit:
    """A fitted Universal Scalability Law with its uncertainty.

    ``cov`` is the 3x3 covariance of (λ, σ, κ) in that order. ``n_star`` is the concurrency of peak
    throughput (inf when κ = 0: Amdahl, throughput approaches ``x_max`` = λ/σ); ``x_max`` is inf
    only when σ = κ = 0 (linear scaling as far as the data shows).
    """

    sigma: float
    kappa: float
    lam: float
    sigma_se: float
    kappa_se: float
    lam_se: float
    n_points: int
    r2: float
    n_star: float
    x_max: float
    dominant: Literal["contention", "coherency", "none"]
    cov: tuple[tuple[float, float, float], ...]
    n_min: float  # measured concurrency range
    n_max: float
    level: float = CONFIDENCE_LEVEL

    @property
    def dof(self) -> int:
        return self.n_points - 3

    @property
    def t_value(self) -> float:
        return float(stats.t.ppf(0.5 + self.level / 2.0, self.dof)) if self.dof > 0 else math.inf

    @property
    def has_band(self) -> bool:
        return bool(np.all(np.isfinite(np.asarray(self.cov)))) and self.dof > 0

    @overload
    def throughput(self, n: float) -> float: ...
    @overload
    def throughput(self, n: NDArray) -> NDArray: ...
    def throughput(self, n: float | NDArray) -> float | NDArray:
        """Modelled throughput X(N), requests per second."""
        x = _usl(n, self.lam, self.sigma, self.kappa)
        return float(x) if np.ndim(n) == 0 else x

    @overload
    def response_time_ms(self, n: float) -> float: ...
    @overload
    def response_time_ms(self, n: NDArray) -> NDArray: ...
    def response_time_ms(self, n: float | NDArray) -> float | NDArray:
        """Modelled mean in-server response time R(N) in milliseconds."""
        n_arr = np.asarray(n, dtype=float)
        r = 1000.0 * _denominator(n_arr, self.sigma, self.kappa) / self.lam
        return float(r) if np.ndim(n) == 0 else r

    @overload
    def predict(self, n: float) -> tuple[float, float, float]: ...
    @overload
    def predict(self, n: NDArray) -> tuple[NDArray, NDArray, NDArray]: ...
    def predict(self, n: float | NDArray) -> tuple[float, float, float] | tuple[NDArray, NDArray, NDArray]:
        """Throughput at concurrency ``n`` with its band: ``(x, low, high)``.

        The band is the confidence band of the fitted curve by the delta method
        (se² = gᵀ·cov·g with g = dX/dθ, times Student t with n − 3 dof), clipped at 0.
        It is infinitely wide when the covariance could not be estimated.
        """
        n_arr = np.atleast_1d(np.asarray(n, dtype=float))
        x = _usl(n_arr, self.lam, self.sigma, self.kappa)
        if self.has_band:
            jac = _usl_jacobian(n_arr, self.lam, self.sigma, self.kappa)
            var = np.einsum("ij,jk,ik->i", jac, np.asarray(self.cov), jac)
            half = self.t_value * np.sqrt(np.clip(var, 0.0, None))
        else:
            half = np.full_like(x, np.inf)
        low, high = np.clip(x - half, 0.0, None), x + half
        if np.ndim(n) == 0:
            return float(x[0]), float(low[0]), float(high[0])
        return x, low, high

    def interval(self, name: Literal["lambda", "sigma", "kappa"]) -> tuple[float, float]:
        """Confidence interval of one parameter (estimate ± t·se; not clipped to the bounds)."""
        value, se = {
            "lambda": (self.lam, self.lam_se),
            "sigma": (self.sigma, self.sigma_se),
            "kappa": (self.kappa, self.kappa_se),
        }[name]
        half = self.t_value * se
        return value - half, value + half

    def sample(self, draws: int = _MC_DRAWS, seed: int = _MC_SEED) -> NDArray[np.float64]:
        """Parameter draws (λ, σ, κ) from the fit's asymptotic multivariate t, clipped to bounds."""
        cov = np.asarray(self.cov, dtype=float)
        rng = np.random.default_rng(seed)
        vals, vecs = np.linalg.eigh(cov)
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        z = rng.standard_normal((draws, 3)) @ root.T
        scale = np.sqrt(self.dof / rng.chisquare(self.dof, size=(draws, 1)))
        theta = np.array([self.lam, self.sigma, self.kappa]) + z * scale
        theta[:, 0] = np.clip(theta[:, 0], 1e-12, None)
        theta[:, 1:] = np.clip(theta[:, 1:], 0.0, 1.0)
        return theta

    def to_params(self) -> UslParameters:
        """The fit as record numbers (``CapacityParams.usl``); None where a value is not finite."""
        cov = self.cov
        return UslParameters(
            sigma=float(self.sigma),
            kappa=float(self.kappa),
            lam=float(self.lam),
            sigma_se=_finite(self.sigma_se),
            kappa_se=_finite(self.kappa_se),
            lam_se=_finite(self.lam_se),
            cov_lam_sigma=_finite(cov[0][1]),
            cov_lam_kappa=_finite(cov[0][2]),
            cov_sigma_kappa=_finite(cov[1][2]),
            n_points=self.n_points,
            r2=_finite(self.r2),
            n_star=_finite(self.n_star),
            x_max=_finite(self.x_max),
            n_min=_finite(self.n_min),
            n_max=_finite(self.n_max),
        )

    @classmethod
    def from_params(cls, params: UslParameters | None) -> UslFit | None:
        """Rebuild a fit from ``to_params()`` output (e.g. a chart reading a record); None if absent.

        A value left out (not finite) is taken as it was: an unidentified standard error or
        covariance as infinite, no peak as N* = inf.
        """
        if params is None or params.n_points is None:
            return None
        lam, sigma, kappa = params.lam, params.sigma, params.kappa
        lam_se, sigma_se, kappa_se = (
            math.inf if se is None else se for se in (params.lam_se, params.sigma_se, params.kappa_se)
        )
        c01 = _known(params.cov_lam_sigma, 0.0 if math.isfinite(lam_se * sigma_se) else math.inf)
        c02 = _known(params.cov_lam_kappa, 0.0 if math.isfinite(lam_se * kappa_se) else math.inf)
        c12 = _known(params.cov_sigma_kappa, 0.0 if math.isfinite(sigma_se * kappa_se) else math.inf)
        cov = (
            (lam_se**2, c01, c02),
            (c01, sigma_se**2, c12),
            (c02, c12, kappa_se**2),
        )
        n_star, x_max = _peak(lam, sigma, kappa)
        return cls(
            sigma=sigma,
            kappa=kappa,
            lam=lam,
            sigma_se=sigma_se,
            kappa_se=kappa_se,
            lam_se=lam_se,
            n_points=params.n_points,
            r2=_known(params.r2, math.nan),
            n_star=float(n_star),
            x_max=float(x_max),
            dominant=_dominant(sigma, kappa, float(n_star), _known(params.n_max, 1.0)),
            cov=cov,
            n_min=_known(params.n_min, 0.0),
            n_max=_known(params.n_max, math.inf),
        )


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _known(value: float | None, default: float) -> float:
    return default if value is None else value


def penalties(sigma: float, kappa: float, n_ref: float) -> tuple[float, float]:
    """The contention and coherency terms of the USL denominator at ``n_ref``."""
    m = max(n_ref, 1.0)
    return sigma * (m - 1.0), kappa * m * (m - 1.0)


def _dominant(sigma: float, kappa: float, n_star: float, n_max: float) -> Literal["contention", "coherency", "none"]:
    """Which term limits throughput where it matters: at the peak (or the largest N measured).

    "none" when both terms together cost less than 5 % at that point (near-linear scaling).
    """
    n_ref = n_star if math.isfinite(n_star) else n_max
    contention, coherency = penalties(sigma, kappa, n_ref)
    if contention + coherency < 0.05:
        return "none"
    return "coherency" if coherency > contention else "contention"


def distinct_levels(values: NDArray[np.float64]) -> int:
    ordered = np.sort(values)
    if ordered.size == 0:
        return 0
    gaps = np.diff(ordered) > 1e-9 * np.maximum(np.abs(ordered[1:]), 1e-12)
    return int(1 + np.count_nonzero(gaps))


def _covariance(n: NDArray, w: NDArray, theta: tuple[float, float, float], sse: float) -> NDArray:
    """s²·(JᵀJ)⁻¹ of the weighted problem, or all-inf when a parameter is not identified.

    Computed here rather than taken from curve_fit, whose pseudo-inverse quietly drops a
    rank-deficient direction (e.g. σ and κ seen through a single point above N = 1) and then
    reports a tiny standard error for a parameter the data never constrained.
    """
    jac = _usl_jacobian(n, *theta) / w[:, None]
    norms = np.linalg.norm(jac, axis=0)
    if np.any(norms == 0):
        return np.full((3, 3), np.inf)
    singular = np.linalg.svd(jac / norms, compute_uv=False)
    if singular[-1] < 1e-8 * singular[0]:
        return np.full((3, 3), np.inf)
    inv = np.linalg.inv((jac / norms).T @ (jac / norms)) / np.outer(norms, norms)
    dof = n.size - 3
    return inv * (sse / dof) if dof > 0 else np.full((3, 3), np.inf)


def fit_usl(
    concurrency: Sequence[float],
    throughput: Sequence[float],
    *,
    weighting: Literal["relative", "absolute"] = "relative",
) -> UslFit:
    """Fit the USL to throughput (req/s) against in-server concurrency (Little's law N = X·R).

    Raises InsufficientData when fewer than ``MIN_LOAD_LEVELS`` distinct positive load levels
    remain, and ValueError when the inputs are malformed.
    """
    n, x = _fit_points(concurrency, throughput)
    # Fit in relative throughput units so λ is O(1); σ and κ do not depend on the X scale.
    scale = float(np.max(x))
    y = x / scale
    w = y if weighting == "relative" else np.ones_like(y)
    n_top = float(np.max(n))
    sse, popt = _least_squares(n, y, w)
    lam_s, sigma, kappa = (float(v) for v in popt)
    # The solver stops near a bound rather than on it (κ = 1e-19 would claim N* = 3e9):
    # a term that changes the denominator by less than 1e-6 over the measured range is zero.
    m_top = max(n_top, 1.0)
    if kappa * m_top * (m_top - 1.0) < 1e-6:
        kappa = 0.0
    if sigma * (m_top - 1.0) < 1e-6:
        sigma = 0.0
    lam = lam_s * scale
    cov = _covariance(n, w, (lam_s, sigma, kappa), sse) * np.outer([scale, 1, 1], [scale, 1, 1])
    ses = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    sst = float(np.sum(((y - np.average(y, weights=w**-2)) / w) ** 2))
    r2 = 1.0 - sse / sst if sst > 0 else 1.0
    n_star, x_max = (float(v) for v in _peak(lam, sigma, kappa))
    return UslFit(
        sigma=sigma,
        kappa=kappa,
        lam=lam,
        sigma_se=float(ses[1]),
        kappa_se=float(ses[2]),
        lam_se=float(ses[0]),
        n_points=int(n.size),
        r2=r2,
        n_star=n_star,
        x_max=x_max,
        dominant=_dominant(sigma, kappa, n_star, n_top),
        cov=tuple(tuple(float(v) for v in row) for row in cov),  # type: ignore[misc]
        n_min=float(np.min(n)),
        n_max=n_top,
    )


def _fit_points(
    concurrency: Sequence[float], throughput: Sequence[float]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The positive (N, X) pairs a fit uses, after checking there are enough load levels."""
    n = np.asarray(concurrency, dtype=float)
    x = np.asarray(throughput, dtype=float)
    if n.shape != x.shape or n.ndim != 1:
        raise ValueError(
            f"fit_usl: concurrency has {n.size} values and throughput {x.size}: pass one throughput "
            "per concurrency, as two flat sequences of the same length"
        )
    if not (np.all(np.isfinite(n)) and np.all(np.isfinite(x))):
        raise ValueError("fit_usl: NaN or infinite values in the measurements: drop those phases first")
    keep = (n > 0) & (x > 0)
    n, x = n[keep], x[keep]
    levels = distinct_levels(n)
    if levels < MIN_LOAD_LEVELS:
        shown = ", ".join(f"{v:.3g}" for v in np.unique(n)) or "none"
        raise InsufficientData(
            f"USL fit needs at least {MIN_LOAD_LEVELS} distinct load levels with non-zero "
            f"throughput; got {levels} (concurrency {shown}): measure more stress steps beyond the "
            "nominal rate, including some where throughput stops following the offered load"
        )
    return n, x


def _least_squares(n: NDArray, y: NDArray, w: NDArray) -> tuple[float, NDArray]:
    """(SSE, (λ, σ, κ)) of the best bounded weighted least-squares fit over several starts."""
    lam0 = float(np.max(y / n))  # as R usl: max(X/N)
    n_top = float(np.max(n))
    starts = [(lam0, 0.01, 1e-4)]  # the R usl start first, then a small grid against local minima
    for sigma0 in (0.001, 0.1, 0.5, 0.9):
        for kappa0 in (0.0, 1.0 / max(n_top, 2.0) ** 2, 1e-2):
            starts.append((lam0, sigma0, kappa0))

    def model(nn: NDArray, lam: float, sigma: float, kappa: float) -> NDArray:
        return _usl(nn, lam, sigma, kappa)

    def jac(nn: NDArray, lam: float, sigma: float, kappa: float) -> NDArray:
        return _usl_jacobian(nn, lam, sigma, kappa)

    best: tuple[float, NDArray] | None = None
    for p0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optimize.OptimizeWarning)
                popt, _ = optimize.curve_fit(
                    model,
                    n,
                    y,
                    p0=p0,
                    sigma=w,
                    jac=jac,
                    bounds=([0.0, 0.0, 0.0], [np.inf, 1.0, 1.0]),
                    method="trf",
                    x_scale="jac",
                    max_nfev=2000,
                )
        except (RuntimeError, ValueError):
            continue
        sse = float(np.sum(((y - model(n, *popt)) / w) ** 2))
        if best is None or sse < best[0] * (1 - 1e-9):
            best = (sse, popt)
    if best is None:
        raise InsufficientData(
            "USL fit did not converge from any starting point: the measurements do not look like "
            "throughput rising with concurrency; check that the phases measured the target"
        )
    return best
