"""Comparing runs: a run against its baseline with a noise model, and change points over a series.

Pure analysis: records in, records out; no I/O (the history database is read by the caller).

``noise``    two runs, metric by metric: significant (Mann-Whitney U, a bootstrap interval) and
             larger than the noise the history measured between runs, or not a regression
``changes``  change points over a series of runs (Apache Otava's E-divisive means)
"""

from harness.comparison.changes import ChangePolicy, change_points
from harness.comparison.noise import ComparisonPolicy, compare_runs, quantile, run_noise

__all__ = ["ChangePolicy", "ComparisonPolicy", "change_points", "compare_runs", "quantile", "run_noise"]
