"""Comparing runs: a run against its baseline with a noise model, and change points over a series.

Pure analysis: records in, records out; no I/O (the history database is read by the caller).

``noise``    two runs, metric by metric: significant (Mann-Whitney U, a bootstrap interval) and
             larger than the noise the history measured between runs, or not a regression
"""

from harness.comparison.noise import ComparisonPolicy, compare_runs, quantile, run_noise

__all__ = ["ComparisonPolicy", "compare_runs", "quantile", "run_noise"]
