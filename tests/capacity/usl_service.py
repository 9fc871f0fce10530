"""A synthetic service that follows the USL exactly, measured the way the load stage measures."""

from __future__ import annotations

import math

import numpy as np
from factories import latency_summary, phase, tier
from scipy.optimize import brentq

from harness.records import TierResult


def usl(n: np.ndarray | float, lam: float, sigma: float, kappa: float) -> np.ndarray:
    n = np.asarray(n, dtype=float)
    m = np.maximum(n, 1.0)
    return lam * n / (1 + sigma * (m - 1) + kappa * m * (m - 1))


def usl_peak(lam: float, sigma: float, kappa: float) -> tuple[float, float]:
    n_star = math.sqrt((1 - sigma) / kappa)
    return n_star, float(usl(n_star, lam, sigma, kappa))


def kappa_for_peak(lam: float, sigma: float, x_max: float) -> float:
    return brentq(lambda k: usl_peak(lam, sigma, k)[1] - x_max, 1e-9, 0.5)


def usl_tiers(
    lam: float,
    sigma: float,
    kappa: float,
    per_customer_rps: float,
    *,
    customers: tuple[int, ...] = (50, 500, 5000),
    steps: tuple[float, ...] = (1.5, 2, 3, 4),
    noise: float = 0.02,
    seed: int = 0,
    p95_over_mean: float = 2.0,
    saturated_past_knee: bool = False,
) -> list[TierResult]:
    """Open-model phases against a USL service: below the peak the server keeps up (X = offered,
    N on the rising branch); past it the queue fills the worker pool and N sits beyond N*."""
    rng = np.random.default_rng(seed)
    n_star, x_max = usl_peak(lam, sigma, kappa)
    tiers = []
    for count in customers:
        phases = []
        for k, mult in enumerate((1.0, *steps)):
            offered = count * per_customer_rps * mult
            if offered < 0.97 * x_max:
                n = brentq(lambda n, a=offered: float(usl(n, lam, sigma, kappa)) - a, 1e-9, n_star)
                x = offered
                past = False
            else:
                n = 2 * n_star * offered / x_max
                x = float(usl(n, lam, sigma, kappa))
                past = True
            achieved = x * (1 + noise * rng.standard_normal())
            r_ms = 1000 * n / x * (1 + noise * rng.standard_normal())  # R is measured too
            phases.append(
                phase(
                    "steady" if k == 0 else "stress",
                    label="steady" if k == 0 else f"stress x{mult:g}",
                    offered_rps=offered,
                    achieved_rps=achieved,
                    service=latency_summary(r_ms, p95_ms=p95_over_mean * r_ms),
                    saturated=saturated_past_knee and past,
                )
            )
        tiers.append(tier(count, steady=phases[0], stress=phases[1:]))
    return tiers


# Known service: 10 ms per request alone, peak 900 req/s; at 0.06 req/s per customer: 15000 customers.
LAM, SIGMA = 100.0, 0.03
KAPPA = kappa_for_peak(LAM, SIGMA, 900.0)
PER_CUSTOMER = 0.06
