"""Capacity analysis: how many customers can the target serve, and how each endpoint scales with data.

Pure analysis over records: no I/O, no Locust, no matplotlib. Three questions, three tools:

* **Throughput scalability** -- the Universal Scalability Law (Gunther)::

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

* **Capacity in customers** -- the largest throughput the fitted curve reaches while its latency,
  scaled from mean to the SLO percentile, stays within the SLO; divided by one customer's peak rate.
  A measured load that met the SLO is always a floor under the estimate.

* **Data-volume scaling** -- each endpoint's service p95 at nominal load against the tier's
  customer count, as a power law (log-log slope).

Uncertainty, stated once: ``UslFit.predict`` gives a pointwise band of the fitted curve by the
delta method (analytic Jacobian, Student t, n − 3 dof). Quantities that are non-linear or kinked in
the parameters (N*, the peak, the SLO-limited capacity; N* is infinite at κ = 0) are propagated
from the same asymptotic distribution by simulation (a multivariate t with a fixed seed, so the
report is reproducible) instead of being linearised.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats
from scipy.signal import argrelextrema

from harness.records import CapacityEstimate, EndpointTrend, PhaseMeasurement, TierResult

__all__ = [
    "InsufficientData",
    "UslFit",
    "endpoint_trends",
    "estimate_capacity",
    "find_knee",
    "fit_usl",
]

# --- thresholds (module constants so reports can quote them) ----------------------------------

#: Two-sided level of every interval and band this module reports.
CONFIDENCE_LEVEL = 0.95
#: Fewest distinct load levels a USL fit accepts (Coda Hale's ``usl`` refuses fewer than 6).
MIN_LOAD_LEVELS = 6
#: A phase is past the knee when its goodput falls below this share of the offered rate.
PAST_KNEE_RATIO = 0.9
#: A phase whose completions are within this share of its arrivals kept up: the shortfall is the
#: window's edge (iterations still in flight when it closed) and arrival jitter, not the service.
KEPT_UP_RATIO = 0.98
#: Refuse to extrapolate when the capacity band is wider than this, relative to the estimate.
MAX_RELATIVE_BAND = 1.0
#: A USL capacity more than this factor above a rate measured failing at the goal's data volume
#: is contradicted by that measurement; within it, the measured phase sat at the limit (goodput is
#: measured to a few percent) and only caps the band.
CEILING_TOLERANCE = 1.1
#: USL capacity and the latency knee "disagree" when one exceeds the other by this factor.
KNEE_DISAGREEMENT = 2.0
#: The knee must be followed by latency at least this many times the latency at the knee.
KNEE_MIN_RISE = 1.5
#: Log-log slope thresholds for the data-volume classes.
FLAT_SLOPE = 0.1
SUBLINEAR_SLOPE = 0.6
LINEAR_SLOPE = 1.3
#: The smallest p95 above the fixed cost a power law is fitted to (log of zero is undefined).
MIN_EXCESS_MS = 0.05

_MC_DRAWS = 4000
_MC_SEED = 20240611
_PERCENTILES = ("p50", "p95", "p99", "p999")
_PARAM_ORDER = ("lambda", "sigma", "kappa")


class InsufficientData(ValueError):
    """The measurements cannot support the requested model (too few or unusable points)."""


# --- the model ------------------------------------------------------------------------------


def _denominator(n: NDArray[np.float64], sigma: ArrayLike, kappa: ArrayLike) -> NDArray[np.float64]:
    m = np.maximum(n, 1.0)  # X = λN below one request in flight (see module docstring)
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


def _slo_concurrency(lam: ArrayLike, sigma: ArrayLike, kappa: ArrayLike, r_limit_s: float) -> NDArray:
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


def _capacity_throughput(lam: ArrayLike, sigma: ArrayLike, kappa: ArrayLike, r_limit_s: float) -> NDArray:
    """Largest modelled throughput reachable with R(N) within the limit: X(min(N_slo, N*))."""
    n_star, x_peak = _peak(lam, sigma, kappa)
    n_slo = _slo_concurrency(lam, sigma, kappa, r_limit_s)
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

    def to_params(self) -> dict[str, float]:
        """Flat numbers for ``CapacityEstimate.params`` (non-finite values are left out)."""
        cov = self.cov
        out = {
            "sigma": self.sigma,
            "kappa": self.kappa,
            "lambda": self.lam,
            "sigma_se": self.sigma_se,
            "kappa_se": self.kappa_se,
            "lambda_se": self.lam_se,
            "cov_lambda_sigma": cov[0][1],
            "cov_lambda_kappa": cov[0][2],
            "cov_sigma_kappa": cov[1][2],
            "n_points": float(self.n_points),
            "r2": self.r2,
            "n_star": self.n_star,
            "x_max": self.x_max,
            "n_min": self.n_min,
            "n_max": self.n_max,
        }
        return {k: float(v) for k, v in out.items() if math.isfinite(v)}

    @classmethod
    def from_params(cls, params: Mapping[str, float]) -> UslFit | None:
        """Rebuild a fit from ``to_params()`` output (e.g. a chart reading a record); None if absent."""
        try:
            lam, sigma, kappa = params["lambda"], params["sigma"], params["kappa"]
            n_points = int(params["n_points"])
        except KeyError:
            return None
        ses = [params.get(f"{k}_se", math.inf) for k in _PARAM_ORDER]
        c01 = params.get("cov_lambda_sigma", 0.0 if math.isfinite(ses[0] * ses[1]) else math.inf)
        c02 = params.get("cov_lambda_kappa", 0.0 if math.isfinite(ses[0] * ses[2]) else math.inf)
        c12 = params.get("cov_sigma_kappa", 0.0 if math.isfinite(ses[1] * ses[2]) else math.inf)
        cov = (
            (ses[0] ** 2, c01, c02),
            (c01, ses[1] ** 2, c12),
            (c02, c12, ses[2] ** 2),
        )
        n_star, x_max = _peak(lam, sigma, kappa)
        return cls(
            sigma=sigma,
            kappa=kappa,
            lam=lam,
            sigma_se=ses[1],
            kappa_se=ses[2],
            lam_se=ses[0],
            n_points=n_points,
            r2=params.get("r2", math.nan),
            n_star=float(n_star),
            x_max=float(x_max),
            dominant=_dominant(sigma, kappa, float(n_star), params.get("n_max", 1.0)),
            cov=cov,
            n_min=params.get("n_min", 0.0),
            n_max=params.get("n_max", math.inf),
        )


def _penalties(sigma: float, kappa: float, n_ref: float) -> tuple[float, float]:
    """The contention and coherency terms of the USL denominator at ``n_ref``."""
    m = max(n_ref, 1.0)
    return sigma * (m - 1.0), kappa * m * (m - 1.0)


def _dominant(sigma: float, kappa: float, n_star: float, n_max: float) -> Literal["contention", "coherency", "none"]:
    """Which term limits throughput where it matters: at the peak (or the largest N measured).

    "none" when both terms together cost less than 5 % at that point (near-linear scaling).
    """
    n_ref = n_star if math.isfinite(n_star) else n_max
    contention, coherency = _penalties(sigma, kappa, n_ref)
    if contention + coherency < 0.05:
        return "none"
    return "coherency" if coherency > contention else "contention"


def _distinct_levels(values: NDArray[np.float64]) -> int:
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
    levels = _distinct_levels(n)
    if levels < MIN_LOAD_LEVELS:
        shown = ", ".join(f"{v:.3g}" for v in np.unique(n)) or "none"
        raise InsufficientData(
            f"USL fit needs at least {MIN_LOAD_LEVELS} distinct load levels with non-zero "
            f"throughput; got {levels} (concurrency {shown}): measure more stress steps beyond the "
            "nominal rate, including some where throughput stops following the offered load"
        )

    # Fit in relative throughput units so λ is O(1); σ and κ do not depend on the X scale.
    scale = float(np.max(x))
    y = x / scale
    w = y if weighting == "relative" else np.ones_like(y)
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

    best: tuple[float, NDArray, NDArray] | None = None
    for p0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optimize.OptimizeWarning)
                popt, pcov = optimize.curve_fit(
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
            best = (sse, popt, pcov)
    if best is None:
        raise InsufficientData(
            "USL fit did not converge from any starting point: the measurements do not look like "
            "throughput rising with concurrency; check that the phases measured the target"
        )
    sse, popt, _ = best
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


# --- knee -----------------------------------------------------------------------------------


def _kneedle_convex_increasing(x: NDArray, y: NDArray, s: float = 1.0) -> float | None:
    """Kneedle (Satopää et al. 2011), offline, for a convex increasing curve.

    A line-for-line port of ``kneed.KneeLocator(x, y, S=s, curve="convex",
    direction="increasing")`` (kneed 0.9, interp1d): importing kneed imports
    ``matplotlib.pyplot``, which analysis code must not pull in. tests/test_capacity.py checks
    that both agree.
    """
    x_n = (x - x.min()) / (x.max() - x.min())
    y_span = y.max() - y.min()
    if y_span <= 0:
        return None
    y_n = (y - y.min()) / y_span
    # convex increasing -> concave increasing: mirror y and x (kneed's transform_y and x flip)
    y_t = np.flip(y_n.max() - y_n)
    x_t = np.flip(1.0 - x_n)
    diff = y_t - x_t
    maxima = argrelextrema(diff, np.greater_equal)[0]
    minima = argrelextrema(diff, np.less_equal)[0]
    if maxima.size == 0:
        return None
    thresholds = diff[maxima] - s * np.abs(np.diff(x_t).mean())
    maxima_seen = 0
    threshold = 0.0
    threshold_index = 0
    active = True
    for i in range(maxima[0], diff.size - 1):
        if (maxima == i).any():
            threshold = thresholds[maxima_seen]
            threshold_index = i
            maxima_seen += 1
            active = True
        if (minima == i).any():
            threshold = 0.0
            active = False
        if active and diff[i + 1] < threshold:
            return float(x[-(threshold_index + 1)])
    return None


def find_knee(offered: Sequence[float], latency_ms: Sequence[float]) -> float | None:
    """The offered load (req/s) where latency turns up, by Kneedle; None when there is no knee.

    Repeated offered loads are averaged. A knee counts only if latency somewhere after it is at
    least ``KNEE_MIN_RISE`` times the latency at the knee: Kneedle finds a "knee" in any noisy
    flat series, and a knee without a rise is not where the service starts to hurt.
    """
    x = np.asarray(offered, dtype=float)
    y = np.asarray(latency_ms, dtype=float)
    if x.shape != y.shape:
        raise ValueError(
            f"find_knee: {x.size} offered loads but {y.size} latencies: pass one latency per load"
        )
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size == 0:
        return None
    ux, inverse = np.unique(x, return_inverse=True)
    uy = np.bincount(inverse, weights=y) / np.bincount(inverse)
    if ux.size < 4:
        return None
    knee = _kneedle_convex_increasing(ux, uy)
    if knee is None:
        return None
    at = int(np.argmin(np.abs(ux - float(knee))))
    after = uy[at + 1 :]
    if after.size == 0 or np.max(after) < KNEE_MIN_RISE * max(uy[at], 1e-9):
        return None
    return float(ux[at])


# --- capacity in customers ------------------------------------------------------------------


@dataclass(frozen=True)
class _Point:
    tier: int
    phase: PhaseMeasurement
    goodput: float
    carried: float  # the load shown carried: the offered rate when it kept up, else the goodput
    latency_ms: float  # intended-start latency at the SLO percentile
    service_ratio: float  # service p_slo / service mean
    met_slo: bool
    past_knee: bool


def _percentile(summary: object, percentile: str) -> float:
    return float(getattr(summary, f"{percentile}_ms"))


def _usable_points(
    tiers: Sequence[TierResult], slo_percentile: str, latency_slo_ms: float, max_error_rate: float
) -> tuple[list[_Point], list[tuple[int, float]]]:
    """The phases that measured the target, and (tier, offered rate) of the crowded ones that
    could not say.

    A crowded phase (the machine busy with other work) counts only if it met the SLO anyway:
    the noise adds latency, so a pass is an upper bound, a miss is nobody's. A phase with a
    saturated generator is left out silently: the generator usually saturates because the
    target took the CPU of the machine they share, which is the target's own limit there.
    """
    points = []
    unmeasured: list[tuple[int, float]] = []
    per_iteration = requests_per_iteration(tiers)
    for tier in tiers:
        phases = ([tier.steady] if tier.steady is not None else []) + list(tier.stress)
        for phase in phases:
            if phase.validity.saturated or phase.achieved_rps <= 0 or phase.service.mean_ms <= 0:
                continue  # not a measurement of the target
            error_rate = phase.error_rate
            # Offered load counts iterations (one persona action, one or more requests); goodput
            # is counted in the same unit, or every comparison with offered load is off by the
            # requests an action makes.
            goodput = completed_iterations_per_s(phase, per_iteration) * (1.0 - error_rate)
            past_knee = goodput < PAST_KNEE_RATIO * phase.offered_rps
            latency = _percentile(phase.latency, slo_percentile)
            met = latency <= latency_slo_ms and error_rate <= max_error_rate and not past_knee
            if phase.validity.crowded and not met:
                unmeasured.append((tier.customers, phase.offered_rps))
                continue
            points.append(
                _Point(
                    tier=tier.customers,
                    phase=phase,
                    goodput=goodput,
                    carried=phase.offered_rps if goodput >= KEPT_UP_RATIO * phase.offered_rps else goodput,
                    latency_ms=latency,
                    service_ratio=_percentile(phase.service, slo_percentile) / phase.service.mean_ms,
                    met_slo=met,
                    past_knee=past_knee,
                )
            )
    return points, unmeasured


def _why_failed(point: _Point, slo_percentile: str, latency_slo_ms: float, max_error_rate: float) -> str:
    phase = point.phase
    if phase.error_rate > max_error_rate:
        return f"{phase.error_rate:.0%} errors, over the {max_error_rate:.0%} budget"
    if point.past_knee:
        return f"{point.goodput:.4g} of {phase.offered_rps:.4g} iterations/s completed"
    return f"{slo_percentile} {point.latency_ms:.4g} ms, over the {latency_slo_ms:g} ms SLO"


def completed_iterations_per_s(phase: PhaseMeasurement, per_iteration: float) -> float:
    """The phase's throughput in offered load's unit: completed iterations per second.

    Counted by the engine; records made before it counted them fall back to requests divided by
    the audit's measured requests per iteration (a few percent off, the personas' mix varies).
    """
    counted = phase.achieved_ips
    return counted if counted is not None else phase.achieved_rps / per_iteration


def requests_per_iteration(tiers: Sequence[TierResult]) -> float:
    """How many requests one iteration (a persona's action) makes, measured (for old records).

    Taken from the lightest measured phase of the audit, where iterations finish: a phase past
    the knee starts iterations it cannot finish, so its own ratio would understate the work.
    The workload (the personas and their weights) is the same at every tier.
    """
    phases = [
        p for t in tiers for p in (t.steady, *t.stress)
        if p is not None and p.iterations_started > 0 and p.requests > 0 and not p.validity.saturated
    ]  # fmt: skip
    if not phases:
        return 1.0
    lightest = min(phases, key=lambda p: p.offered_rps)
    return lightest.requests / lightest.iterations_started


def _choose_fit_points(points: list[_Point]) -> tuple[list[_Point], int]:
    """Prefer the largest tier alone (the goal's data volume) when it can carry a fit by itself."""
    if not points:
        return points, 0
    largest = max(p.tier for p in points)
    own = [p for p in points if p.tier == largest]
    own_levels = _distinct_levels(np.array([p.phase.concurrency for p in own]))
    if own_levels >= MIN_LOAD_LEVELS and any(p.past_knee for p in own):
        return own, largest
    return points, 0


def _confidence_from(
    rel_width: float, n_points: int, r2: float, knee_agrees: bool | None
) -> Literal["high", "medium", "low"]:
    levels: tuple[Literal["low", "medium", "high"], ...] = ("low", "medium", "high")
    rank = 2 if rel_width <= 0.3 else 1 if rel_width <= 0.6 else 0
    if n_points < 8 or knee_agrees is None:
        rank = min(rank, 1)
    if r2 < 0.9:
        rank -= 1
    if knee_agrees is False:
        rank -= 1
    return levels[max(rank, 0)]


def estimate_capacity(
    tiers: Sequence[TierResult],
    per_customer_rps: float,
    goal_customers: int,
    latency_slo_ms: float,
    slo_percentile: str = "p95",
    *,
    max_error_rate: float = 0.01,
) -> CapacityEstimate:
    """Predicted capacity in customers, with a band, from every valid steady and stress phase.

    Methods, in order of preference:

    * ``"usl"``: a USL fit on >= 6 load levels, some past the knee (goodput below 90 % of the
      offered rate), and a capacity band narrower than the estimate itself. Capacity is the
      throughput at min(N*, N where the fitted latency crosses the SLO); the fitted mean latency is
      scaled to the SLO percentile by the measured service-time ratio p_slo/mean at the busiest
      phase that still met the SLO (the regime closest to the crossing; ratios grow with load).
    * ``"lower-bound"``: capacity is at least the highest load measured meeting the SLO
      (intended-start latency at the SLO percentile, error rate within ``max_error_rate``, not past
      the knee): the offered rate of a phase that kept up (completions within ``KEPT_UP_RATIO``
      of arrivals), else its goodput; ``high`` is None. The note says why the USL was not used.
    * ``"none"``: no valid phase met the SLO.

    Phases measured with a saturated generator are never used, nor those measured on a busy
    machine that missed the SLO; ``params["unmeasured_rps"]`` is the lowest of the latter above
    the floor (the floor may stop there because of the noise, not the service).
    """
    if per_customer_rps <= 0 or not math.isfinite(per_customer_rps):
        raise ValueError(
            f"per_customer_rps = {per_customer_rps}: one customer's peak rate must be a positive "
            "number of requests per second (e.g. 0.2)"
        )
    if goal_customers <= 0:
        raise ValueError(f"goal_customers = {goal_customers}: the goal tier must be a positive customer count")
    if slo_percentile not in _PERCENTILES:
        raise ValueError(
            f"slo_percentile = {slo_percentile!r}: not a recorded percentile; use one of "
            + ", ".join(repr(p) for p in _PERCENTILES)
        )
    if latency_slo_ms <= 0:
        raise ValueError(f"latency_slo_ms = {latency_slo_ms}: the latency SLO must be positive")

    points, unmeasured = _usable_points(tiers, slo_percentile, latency_slo_ms, max_error_rate)
    params: dict[str, float] = {
        "per_customer_rps": per_customer_rps,
        "goal_rps": goal_customers * per_customer_rps,
        "latency_slo_ms": latency_slo_ms,
        "valid_points": float(len(points)),
        "past_knee_points": float(sum(p.past_knee for p in points)),
    }
    record_points = tuple(
        (p.phase.offered_rps, p.goodput, p.phase.concurrency)
        for p in sorted(points, key=lambda p: (p.phase.offered_rps, p.tier))
    )

    def to_customers(rps: float) -> float:
        return rps / per_customer_rps

    # Model-free: the best measured load that met the SLO, and the latency knee. The floor is
    # measured at the goal's data volume (or the largest measured): a smaller tier's data makes
    # every request cheaper, so a rate it carried proves nothing about the goal.
    met = [p for p in points if p.met_slo]
    measured_tiers = {p.tier for p in points}
    goal_tiers = [t for t in measured_tiers if t >= goal_customers]
    at_volume = min(goal_tiers) if goal_tiers else max(measured_tiers, default=0)
    lower_rps = max((p.carried for p in met if p.tier >= at_volume), default=None)
    if lower_rps is not None:
        params["lower_bound_rps"] = lower_rps
        params["lower_bound_customers"] = to_customers(lower_rps)
    # A rate the service was measured failing at, at the goal's data volume (errors, SLO or
    # past the knee), caps any estimate: a model that predicts more is contradicted.
    failed = [
        p for p in points
        if p.tier >= at_volume and not p.met_slo and (lower_rps is None or p.phase.offered_rps > lower_rps)
    ]  # fmt: skip
    ceiling = min(failed, key=lambda p: p.phase.offered_rps, default=None)
    if ceiling is not None:
        params["ceiling_rps"] = ceiling.phase.offered_rps
        params["ceiling_customers"] = to_customers(ceiling.phase.offered_rps)
    # The lowest rate above the floor, at the goal's data volume, that missed the SLO while the
    # machine was busy with other work: the floor may stop there because of the noise.
    blind = [
        rps for tier, rps in unmeasured
        if tier >= at_volume and (lower_rps is None or rps > lower_rps)
        and (ceiling is None or rps < ceiling.phase.offered_rps)
    ]  # fmt: skip
    blind_rps = min(blind) if blind else None
    if blind_rps is not None:
        params["unmeasured_rps"] = blind_rps
        params["unmeasured_customers"] = to_customers(blind_rps)
    # The pack's max_rps kept the load at the goal's data volume from going further, and nothing
    # failed below it: the floor is the cap's, not the service's.
    capped = [t.max_rps_arrivals for t in tiers if t.customers >= at_volume and t.max_rps_arrivals is not None]
    if capped and ceiling is None:
        params["max_rps_arrivals"] = lowest = min(capped)
        params["max_rps_customers"] = to_customers(lowest)
    ordered = sorted(points, key=lambda p: p.phase.offered_rps)
    knee_rps = find_knee([p.phase.offered_rps for p in ordered], [p.latency_ms for p in ordered])
    if knee_rps is not None:
        params["knee_offered_rps"] = knee_rps
        params["knee_customers"] = to_customers(knee_rps)
    knee_text = (
        f" Latency turns up (Kneedle) at {knee_rps:.4g} iterations/s offered (~{to_customers(knee_rps):,.0f} customers)."
        if knee_rps is not None
        else ""
    )

    def fallback(reason: str) -> CapacityEstimate:
        if lower_rps is None:
            return CapacityEstimate(
                predicted_customers=None,
                low=None,
                high=None,
                method="none",
                params=params,
                headroom=None,
                goal_customers=goal_customers,
                confidence="none",
                points=record_points,
                note="No capacity estimate: no valid phase met the "
                f"{slo_percentile} {latency_slo_ms:g} ms SLO ({reason.rstrip('.')}).{knee_text}",
            )
        lb = to_customers(lower_rps)
        return CapacityEstimate(
            predicted_customers=lb,
            low=lb,
            high=to_customers(ceiling.phase.offered_rps) if ceiling is not None else None,
            method="lower-bound",
            params=params,
            headroom=lb / goal_customers,
            goal_customers=goal_customers,
            # A measured floor is solid evidence only when it already clears the goal.
            confidence="medium" if lb >= goal_customers else "low",
            points=record_points,
            note=f"Capacity is at least {lb:,.0f} customers ({lower_rps:.4g} iterations/s carried within "
            f"the {slo_percentile} {latency_slo_ms:g} ms SLO); not extrapolated: {reason.rstrip('.')}.{knee_text}"
            + (
                f" The next load offered, {blind_rps:.4g} iterations/s, missed the SLO while the machine "
                "was busy with other work, so it says nothing: more may be carried."
                if blind_rps is not None
                else ""
            ),
        )

    if not points:
        return fallback("no valid load phase (all missing or measured with a saturated generator)")
    fit_points, fit_tier = _choose_fit_points(points)
    try:
        fit = fit_usl([p.phase.concurrency for p in fit_points], [p.goodput for p in fit_points])
    except InsufficientData as exc:
        return fallback(str(exc))
    params.update(fit.to_params())
    params["fit_tier"] = float(fit_tier)
    contention, coherency = _penalties(
        fit.sigma, fit.kappa, fit.n_star if math.isfinite(fit.n_star) else fit.n_max
    )
    params["contention_penalty"] = contention
    params["coherency_penalty"] = coherency
    usl_text = (
        f"USL σ = {fit.sigma:.3g} ± {fit.sigma_se:.2g} (contention), κ = {fit.kappa:.3g} ± "
        f"{fit.kappa_se:.2g} (coherency), λ = {fit.lam:.4g} req/s per request in flight; "
        + (
            f"peak {fit.x_max:.4g} req/s at N* = {fit.n_star:.3g} in flight"
            if math.isfinite(fit.n_star)
            else f"no peak (κ = 0, Amdahl): throughput approaches {fit.x_max:.4g} req/s"
        )
        + f"; {fit.dominant} dominates."
    )
    if not any(p.past_knee for p in fit_points):
        return fallback(
            "no measured phase is past the knee (goodput kept up with every offered rate), so the "
            "USL would extrapolate blind; add stress steps until throughput stops following load"
        )

    # Scale the fitted mean latency to the SLO percentile.
    ref = max(met, key=lambda p: p.goodput) if met else min(points, key=lambda p: p.phase.offered_rps)
    ratio = max(ref.service_ratio, 1.0)
    r_limit_s = latency_slo_ms / 1000.0 / ratio
    params["slo_to_mean_ratio"] = ratio
    x_cap = float(_capacity_throughput(fit.lam, fit.sigma, fit.kappa, r_limit_s))
    n_slo = float(_slo_concurrency(fit.lam, fit.sigma, fit.kappa, r_limit_s))
    if math.isfinite(n_slo):
        params["n_slo"] = n_slo
    if not math.isfinite(x_cap):
        return fallback(
            "the fit shows no throughput limit (σ = κ = 0) and no latency growth within the measured range. " + usl_text
        )
    if ceiling is not None and x_cap > CEILING_TOLERANCE * ceiling.phase.offered_rps:
        return fallback(
            f"the USL fit predicts {x_cap:.4g} iterations/s, but at {ceiling.tier:,} customers the "
            f"service already failed at {ceiling.phase.offered_rps:.4g} offered ({_why_failed(ceiling, slo_percentile, latency_slo_ms, max_error_rate)}): "
            "a model that a measurement contradicts is not used. " + usl_text
        )
    if not fit.has_band:
        return fallback("the fit's covariance could not be estimated (parameters not identifiable). " + usl_text)
    theta = fit.sample()
    caps = _capacity_throughput(theta[:, 0], theta[:, 1], theta[:, 2], r_limit_s)
    tail = (1.0 - fit.level) / 2.0
    x_low, x_high = (float(v) for v in np.quantile(caps, [tail, 1.0 - tail]))
    x_low, x_high = min(x_low, x_cap), max(x_high, x_cap)
    params["x_capacity"] = x_cap
    params["x_capacity_low"] = x_low
    if math.isfinite(x_high):
        params["x_capacity_high"] = x_high
    rel_width = (x_high - x_low) / x_cap if x_cap > 0 else math.inf
    params["relative_band_width"] = rel_width if math.isfinite(rel_width) else -1.0
    if x_cap <= 0:
        return fallback(
            f"the fitted latency misses the SLO even at light load (ratio {ratio:.2g} of "
            f"{slo_percentile} to mean). " + usl_text
        )
    if not rel_width <= MAX_RELATIVE_BAND:
        return fallback(
            f"the USL capacity band ({x_low:.4g} to {x_high:.4g} req/s) is wider than the estimate "
            f"{x_cap:.4g} req/s itself (limit {MAX_RELATIVE_BAND:g}x); more stress steps past the "
            "knee would narrow it. " + usl_text
        )

    predicted, low, high = to_customers(x_cap), to_customers(x_low), to_customers(x_high)
    if ceiling is not None:  # within the tolerance: the measured failure still caps the band
        high = min(high, to_customers(ceiling.phase.offered_rps))
        predicted = min(predicted, high)
    notes = [usl_text]
    if x_cap < fit.x_max * 0.999:
        notes.append(
            f"The {slo_percentile} {latency_slo_ms:g} ms SLO binds first, at {x_cap:.4g} req/s "
            f"(fitted mean latency × {ratio:.2g})."
        )
    floor_moved = False
    if lower_rps is not None and to_customers(lower_rps) > low:
        lb = to_customers(lower_rps)
        notes.append(
            f"A load of {lb:,.0f} customers was measured within the SLO; the band's low end is "
            "raised to it."
        )
        floor_moved = lb > predicted
        low = lb
        predicted = max(predicted, lb)
        high = max(high, predicted)
    knee_agrees: bool | None = None
    if knee_rps is not None:
        ratio_knee = max(knee_rps, x_cap) / max(min(knee_rps, x_cap), 1e-12)
        knee_agrees = ratio_knee <= KNEE_DISAGREEMENT
        if not knee_agrees:
            notes.append(
                f"The USL capacity ({x_cap:.4g} req/s) and the latency knee ({knee_rps:.4g} req/s "
                f"offered) disagree by {ratio_knee:.1f}x; confidence lowered."
            )
    notes.append(knee_text.strip())
    confidence = _confidence_from(rel_width, fit.n_points, fit.r2, knee_agrees)
    if floor_moved and confidence == "high":
        confidence = "medium"
    return CapacityEstimate(
        predicted_customers=predicted,
        low=low,
        high=high if math.isfinite(high) else None,
        method="usl",
        params=params,
        headroom=predicted / goal_customers,
        goal_customers=goal_customers,
        confidence=confidence,
        points=record_points,
        note=" ".join(n for n in notes if n),
    )


# --- data-volume scaling --------------------------------------------------------------------


def _classify(slope: float, growth_ms: float, noise_floor_ms: float) -> Literal["flat", "sub-linear", "linear", "super-linear"]:
    if slope < FLAT_SLOPE or growth_ms < noise_floor_ms:
        return "flat"
    if slope < SUBLINEAR_SLOPE:
        return "sub-linear"
    if slope <= LINEAR_SLOPE:
        return "linear"
    return "super-linear"


def _overloaded(phase: PhaseMeasurement, max_error_rate: float) -> bool:
    completed = phase.achieved_ips
    return phase.error_rate > max_error_rate or (completed is not None and completed < PAST_KNEE_RATIO * phase.offered_rps)


def endpoint_trends(
    tiers: Sequence[TierResult],
    slo_p95_ms: Mapping[str, float],
    default_slo_p95_ms: float,
    noise_floor_ms: float = 1.0,
    max_error_rate: float = 0.01,
) -> tuple[EndpointTrend, ...]:
    """How each endpoint's steady-window service p95 grows with the customers' data volume.

    p95 rather than mean: it is what the SLO judges, so the fitted curve and the SLO it is compared
    with are in the same units; the noise that makes p95 jumpier than the mean is handled by
    ``noise_floor_ms``: growth (max − min over the tiers) below it is "flat", whatever the slope, so
    a 0.4 → 0.6 ms endpoint is noise, not scaling.

    The slope is a least-squares fit of log (p95 - fixed cost) on log customers (``fit_trends``,
    ``fixed_cost_ms``); its interval is Student t with
    k − 2 dof (t = 12.7 for three tiers: deliberately wide; two tiers give no interval).
    Linear or worse gets ``breaks_at_customers``, where the fitted power law crosses the SLO.
    Tiers without a steady phase or measured with a saturated generator or on a busy machine are
    left out, and so are steady windows the service did not keep up with (errors over ``max_error_rate``, or goodput
    under ``PAST_KNEE_RATIO`` of the offered rate): there every endpoint waits in the same queue,
    and its latency measures the load, not the data.
    """
    if noise_floor_ms < 0:
        raise ValueError(f"noise_floor_ms = {noise_floor_ms}: the noise floor cannot be negative")
    series: dict[str, list[tuple[int, float]]] = {}
    for tier in sorted(tiers, key=lambda t: t.customers):
        steady = tier.steady
        # A busy machine inflates one tier and not the next: a slope from that is noise.
        if steady is None or not steady.validity.clean or tier.customers <= 0:
            continue
        if _overloaded(steady, max_error_rate):
            continue
        for endpoint in steady.endpoints:
            if endpoint.requests <= 0 or endpoint.service.count <= 0:
                continue
            series.setdefault(endpoint.name, []).append((tier.customers, float(endpoint.service.p95_ms)))

    return fit_trends(series, slo_p95_ms, default_slo_p95_ms, noise_floor_ms)


def fixed_cost_ms(series: Mapping[str, Sequence[tuple[int, float]]]) -> float:
    """What every request pays whatever the data: the fastest endpoint's p95 at the smallest tier.

    Fitted on raw p95, a power law reads ``fixed + c * n`` as a slope well under 1 while the
    fixed part (framework, loopback, the generator) dominates the small tiers: a missing index
    measured 6.1 ms at 20 customers and 23.9 ms at 200 (slope 0.59, "sub-linear") where the scan
    alone grew from about 3.6 to 21.4 ms (slope 0.77, linear). Taken from the smallest tier only,
    so a slowdown that every endpoint shares as the data grows (an unindexed lookup in the
    authentication of every request) still shows.
    """
    smallest = min((c for pts in series.values() for c, _ in pts), default=None)
    if smallest is None:
        return 0.0
    return min((ms for pts in series.values() for c, ms in pts if c == smallest), default=0.0)


def fit_trends(
    series: Mapping[str, Sequence[tuple[int, float]]],
    slo_p95_ms: Mapping[str, float],
    default_slo_p95_ms: float,
    noise_floor_ms: float = 1.0,
) -> tuple[EndpointTrend, ...]:
    """Each endpoint's growth class and SLO break from its (customers, service p95 ms) points.

    The fit is of the p95 above the fixed cost every request pays (``fixed_cost_ms``) for an
    endpoint that, at the smallest tier, takes at least twice that cost, and of the raw p95 for the
    others, as a power law of customers; flat is judged on the raw growth against the noise floor.
    """
    fixed = fixed_cost_ms(series)
    trends = []
    for name in sorted(series):
        pts = tuple(series[name])
        slo = float(slo_p95_ms.get(name, default_slo_p95_ms))
        if len({c for c, _ in pts}) < 2:
            trends.append(
                EndpointTrend(name, pts, None, None, None, "unknown", None, slo_p95_ms=slo)
            )
            continue
        lx = np.log(np.array([c for c, _ in pts], dtype=float))
        values = np.array([v for _, v in pts], dtype=float)
        # Only an endpoint whose own work at the smallest tier is at least the fixed cost is fitted
        # above it: for the others the excess is a small difference of two noisy p95s, and its
        # ratio from tier to tier is noise (measured: endpoints growing 0.3-1.5 ms then read as
        # "linear" with a break at 5,000-250,000 customers).
        base = fixed if min(pts)[1] >= 2.0 * fixed else 0.0
        # HDR may report 0 ms for sub-resolution values
        ly = np.log(np.maximum(values - base, MIN_EXCESS_MS))
        slope, intercept = (float(v) for v in np.polyfit(lx, ly, 1))
        dof = len(pts) - 2
        if dof > 0:
            resid = ly - (slope * lx + intercept)
            sxx = float(np.sum((lx - lx.mean()) ** 2))
            se = math.sqrt(float(np.sum(resid**2)) / dof / sxx)
            half = float(stats.t.ppf(0.5 + CONFIDENCE_LEVEL / 2.0, dof)) * se
            slope_low: float | None = slope - half
            slope_high: float | None = slope + half
        else:
            slope_low = slope_high = None
        growth = float(values.max() - values.min())
        growth_class = _classify(slope, growth, noise_floor_ms)
        breaks_at = None
        if growth_class in ("linear", "super-linear") and slo > base:
            breaks_at = float(math.exp((math.log(slo - base) - intercept) / slope))
        trends.append(
            EndpointTrend(
                endpoint=name,
                points=pts,
                slope=slope,
                slope_low=slope_low,
                slope_high=slope_high,
                growth_class=growth_class,
                breaks_at_customers=breaks_at,
                slo_p95_ms=slo,
                fixed_ms=round(base, 3),
            )
        )
    return tuple(trends)
