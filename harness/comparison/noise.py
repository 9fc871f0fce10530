"""A run against its baseline: which differences are larger than the noise.

Two audits of the same unchanged service never measure the same percentiles: the machine, the
order of requests, the data differ. So a difference is a regression only when it passes two
tests at once:

* **significant**: the requests of the two steady windows differ (Mann-Whitney U, two-sided,
  p < ``alpha``) and a bootstrap interval of the relative change of the percentile, resampled
  from both windows' histograms, excludes zero: the difference is not an accident of sampling;
* **large enough to matter**: the change is at least ``min_effect`` (10 %) and at least the
  *run-to-run noise* of that metric, measured over the earlier runs of the same pack and profile
  (about two robust standard deviations: 2 x 1.4826 x MAD / median), once there are
  ``min_noise_runs`` of them. Within-run sampling cannot see the machine changing between runs;
  the history can.

Compared per tier and endpoint: the median service time (``service_p50``, the endpoint's own
cost) and the p95 from the intended start (``p95``, what the SLO judges). An endpoint with fewer
than ``min_requests`` in either window is not compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu

from harness.records import BaselineComparison, Buckets, MetricChange, MetricKey, RunMetrics

__all__ = ["COMPARED", "ComparisonPolicy", "compare_runs", "quantile", "run_noise"]

#: (metric, sample kind, percentile): what is compared for each endpoint of each tier.
COMPARED: tuple[tuple[str, str, float], ...] = (("service_p50", "service", 50.0), ("p95", "latency", 95.0))


@dataclass(frozen=True)
class ComparisonPolicy:
    # A change under 10 % is not worth a team's morning even when it is real.
    min_effect: float = 0.10
    # Significance level of the Mann-Whitney test; low because a nightly job compares dozens of
    # metrics every night and a false alarm costs trust.
    alpha: float = 0.01
    # Fewer requests than this make the percentile itself noisy.
    min_requests: int = 50
    # Bootstrap resamples of each window for the interval, and its confidence.
    resamples: int = 400
    confidence: float = 0.95
    # Mann-Whitney on every request of a busy window is slow and no more informative: subsample.
    max_test_samples: int = 4000
    # Run-to-run noise is measured from this many earlier runs (at least; at most the newest 10).
    min_noise_runs: int = 3
    seed: int = 20261207


def quantile(buckets: Buckets, q: float) -> float:
    """The ``q``-th percentile (0..100) of a bucketed sample (the value where the count reaches it)."""
    values, counts = _arrays(buckets)
    if not len(values):
        return 0.0
    cum = np.cumsum(counts)
    rank = max(1.0, np.ceil(q / 100.0 * cum[-1]))
    return float(values[int(np.searchsorted(cum, rank))])


def run_noise(values: Sequence[float]) -> float | None:
    """The run-to-run noise of a metric: about two robust standard deviations, relative to the
    median (2 x 1.4826 x MAD / median); None for fewer than 3 values or a zero median."""
    if len(values) < 3:
        return None
    arr = np.asarray(values, dtype=float)
    median = float(np.median(arr))
    if median <= 0:
        return None
    return float(2 * 1.4826 * np.median(np.abs(arr - median)) / median)


def compare_runs(
    baseline: RunMetrics,
    run: RunMetrics,
    *,
    history: Mapping[MetricKey, Sequence[float]] | None = None,
    policy: ComparisonPolicy | None = None,
    pinned: bool = False,
) -> BaselineComparison:
    """Every endpoint metric measured in both runs, each classified regression, improvement or
    unchanged. ``history`` holds each metric's values in earlier comparable runs (for the noise)."""
    policy = policy or ComparisonPolicy()
    history = history or {}
    rng = np.random.default_rng(policy.seed)
    changes: list[MetricChange] = []
    tiers_before = {t for t, _, _ in baseline.samples}
    tiers_after = {t for t, _, _ in run.samples}
    for (tier, endpoint, kind), after in sorted(run.samples.items()):
        for metric, wanted, q in COMPARED:
            before = baseline.samples.get((tier, endpoint, kind))
            if kind != wanted or endpoint == "*" or before is None:
                continue
            past = history.get((tier, endpoint, metric), ())
            change = _compare(tier, endpoint, metric, q, before, after, past, policy, rng)
            if change is not None:
                changes.append(change)
    common = tiers_before & tiers_after
    note = "" if common else (
        f"No tier was measured in both runs (baseline {sorted(tiers_before)}, this run {sorted(tiers_after)}): "
        "nothing was compared.")  # fmt: skip
    order = {"regression": 0, "improvement": 1, "unchanged": 2}
    changes.sort(key=lambda c: (order[c.kind], -abs(c.change)))
    return BaselineComparison(
        baseline_run_id=baseline.run.run_id, run_id=run.run.run_id, pinned=pinned, changes=tuple(changes),
        baseline_commit=baseline.run.commit, baseline_finished_at=baseline.run.finished_at, note=note,
    )  # fmt: skip


def _compare(tier: int, endpoint: str, metric: str, q: float, before: Buckets, after: Buckets,
             past: Sequence[float], policy: ComparisonPolicy, rng: np.random.Generator) -> MetricChange | None:  # fmt: skip
    v0, c0 = _arrays(before)
    v1, c1 = _arrays(after)
    n0, n1 = int(c0.sum()), int(c1.sum())
    if min(n0, n1) < policy.min_requests:
        return None
    x0, x1 = quantile(before, q), quantile(after, q)
    if x0 <= 0:
        return None
    change = x1 / x0 - 1
    boot = _bootstrap(v1, c1, q, policy, rng) / np.maximum(_bootstrap(v0, c0, q, policy, rng), 1e-9) - 1
    tail = (1 - policy.confidence) / 2 * 100
    low, high = (float(v) for v in np.percentile(boot, [tail, 100 - tail]))
    p_value = float(mannwhitneyu(_draw(v1, c1, policy, rng), _draw(v0, c0, policy, rng), alternative="two-sided").pvalue)
    noise = run_noise(past[-10:]) if len(past) >= policy.min_noise_runs else None
    threshold = max(policy.min_effect, noise or 0.0)
    significant = p_value < policy.alpha
    kind = "unchanged"
    if significant and change >= threshold and low > 0:
        kind = "regression"
    elif significant and change <= -threshold and high < 0:
        kind = "improvement"
    return MetricChange(
        tier=tier, endpoint=endpoint, metric=metric, before=x0, after=x1, change=change, low=low, high=high,
        p_value=p_value, threshold=threshold, noise=noise, requests_before=n0, requests_after=n1,
        kind=kind, noise_runs=len(past[-10:]) if noise is not None else 0,  # type: ignore[arg-type]
    )  # fmt: skip


def _arrays(buckets: Buckets) -> tuple[np.ndarray, np.ndarray]:
    if not buckets:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    arr = np.asarray(buckets, dtype=float)
    return arr[:, 0], arr[:, 1].astype(np.int64)


def _bootstrap(values: np.ndarray, counts: np.ndarray, q: float, policy: ComparisonPolicy,
               rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """The percentile of ``resamples`` resamples of the window (multinomial over its buckets)."""
    n = int(counts.sum())
    draws = rng.multinomial(n, counts / n, size=policy.resamples)
    cum = np.cumsum(draws, axis=1)
    rank = max(1.0, np.ceil(q / 100.0 * n))
    index = np.argmax(cum >= rank, axis=1)
    return values[index]


def _draw(values: np.ndarray, counts: np.ndarray, policy: ComparisonPolicy, rng: np.random.Generator) -> np.ndarray:
    n = int(counts.sum())
    if n <= policy.max_test_samples:
        return np.repeat(values, counts)
    return rng.choice(values, size=policy.max_test_samples, p=counts / n)
