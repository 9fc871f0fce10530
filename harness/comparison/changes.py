"""Change points over a pack's nightly series: where a metric's distribution moved, and when.

Apache Otava's E-divisive means (Matteson and James, 2014) splits the series recursively where
its two parts differ most (the energy distance), and keeps a split only when Welch's t-test on
the runs either side says p < ``max_pvalue`` (Otava's t-test significance tester, as in Fleming
et al., "Hunter", ICPE 2023). One noisy night is not a change: a change needs the runs after it
to stay moved. A change point is also kept only with a shift of at least ``min_shift`` (10 %,
the same minimum effect as a baseline regression).

Otava's ``compute_change_points`` adds a weak-then-merge pass over sliding windows, meant for
series of hundreds of runs; on a nightly series of eight its merge step drops a clear step
whenever the runs beside it form one-run segments (their t-test is undefined), so the detector
is used directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from otava.analysis import TTestSignificanceTester
from otava.change_point_divisive.calculator import PairDistanceCalculator
from otava.change_point_divisive.detector import ChangePointDetector

from harness.records import ChangePoint, RunSummary

__all__ = ["ChangePolicy", "change_points"]


@dataclass(frozen=True)
class ChangePolicy:
    # A nightly job looks at dozens of series every night: keep false alarms rare.
    max_pvalue: float = 0.01
    min_shift: float = 0.10
    # Fewer runs than this cannot show a change that lasted (Otava needs a few on each side).
    min_runs: int = 6


def change_points(
    series: Sequence[tuple[RunSummary, float]], *, tier: int, endpoint: str, metric: str,
    policy: ChangePolicy | None = None,
) -> tuple[ChangePoint, ...]:  # fmt: skip
    """The change points of one metric's series (oldest run first), each with the run where it
    started, the shift of the mean and the commits either side."""
    policy = policy or ChangePolicy()
    if len(series) < policy.min_runs:
        return ()
    values = [float(v) for _, v in series]
    detector = ChangePointDetector(significance_tester=TTestSignificanceTester(policy.max_pvalue),
                                   calculator=PairDistanceCalculator)  # fmt: skip
    found = detector.get_change_points(series=values)
    out = []
    for cp in found:
        stats = cp.stats
        index = int(cp.index)
        before, after = float(stats.mean_1), float(stats.mean_2)
        if before <= 0 or not 0 < index < len(series):
            continue
        shift = after / before - 1
        if float(stats.pvalue) >= policy.max_pvalue or abs(shift) < policy.min_shift:
            continue
        run, previous = series[index][0], series[index - 1][0]
        out.append(ChangePoint(
            tier=tier, endpoint=endpoint, metric=metric, run_id=run.run_id, index=index,
            before=before, after=after, shift=shift, p_value=float(stats.pvalue),
            previous_run_id=previous.run_id, commit_before=previous.commit, commit_after=run.commit,
        ))  # fmt: skip
    return tuple(out)
