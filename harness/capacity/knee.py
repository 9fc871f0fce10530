"""The latency knee: the offered load where latency turns up, by Kneedle (Satopää et al. 2011).

Model-free evidence beside the USL: where the measured latency bends. The capacity estimate
reports it, and lowers its confidence when the knee and the USL capacity disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.signal import argrelextrema

__all__ = ["KNEE_MIN_RISE", "find_knee"]

#: The knee must be followed by latency at least this many times the latency at the knee.
KNEE_MIN_RISE = 1.5


def _kneedle_convex_increasing(x: NDArray, y: NDArray, s: float = 1.0) -> float | None:
    """Kneedle (Satopää et al. 2011), offline, for a convex increasing curve.

    A line-for-line port of ``kneed.KneeLocator(x, y, S=s, curve="convex",
    direction="increasing")`` (kneed 0.9, interp1d): importing kneed imports
    ``matplotlib.pyplot``, which analysis code must not pull in. tests/capacity/test_knee.py checks
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
