"""A new run against its pack's baseline, read from the history database.

The baseline is the run a team pinned (`scaleready baseline pin RUN`), else the last READY,
complete audit of the same pack and profile without a demo flaw. The noise of each metric is
measured over the earlier runs that could have been a baseline (READY, complete, same profile).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.comparison import compare_runs
from harness.history.rows import tier_metrics
from harness.history.store import HistoryStore
from harness.records import BaselineComparison, MetricKey, RunMetrics, RunSummary, TierResult

__all__ = ["compare_with_baseline", "compare_stored"]


def compare_with_baseline(reports_dir: Path, *, pack: str, profile: str, run_id: str,
                          tiers: Sequence[TierResult]) -> BaselineComparison | None:  # fmt: skip
    """This run's tiers against the baseline in ``reports_dir``; None when there is none.
    Raises HistoryError when the database cannot be read."""
    values, samples = tier_metrics(tiers)
    if not samples:
        return None
    with HistoryStore(reports_dir) as store:
        baseline = store.baseline_for(pack, profile, before=run_id)
        if baseline is None:
            return None
        current = RunMetrics(RunSummary(run_id=run_id, pack=pack, profile=profile, finished_at=0.0, verdict=""),
                             values, samples)  # fmt: skip
        return _compare(store, store.metrics(baseline.run_id), current,
                        pinned=store.pinned_baseline(pack, profile) == baseline.run_id)  # fmt: skip


def compare_stored(store: HistoryStore, run_a: str, run_b: str) -> BaselineComparison:
    """Two stored runs (``scaleready compare A B``): B against A."""
    from harness.history.store import HistoryError

    a, b = store.metrics(run_a), store.metrics(run_b)
    if a.run.pack != b.run.pack:
        raise HistoryError(f"{run_a} is a run of pack {a.run.pack} and {run_b} of pack {b.run.pack}: "
                           "compare two runs of the same pack")  # fmt: skip
    if not a.samples or not b.samples:
        which = run_a if not a.samples else run_b
        raise HistoryError(f"{which} has no per-request samples (imported from history.jsonl, or no tier "
                           "measured a steady window): compare two runs audited with this version")  # fmt: skip
    return _compare(store, a, b, pinned=False)


def _compare(store: HistoryStore, baseline: RunMetrics, run: RunMetrics, *, pinned: bool) -> BaselineComparison:
    comparable = {r.run_id for r in store.runs(pack=run.run.pack, profile=baseline.run.profile)
                  if r.verdict == "READY" and not r.partial and r.run_id != run.run.run_id}  # fmt: skip
    history: dict[MetricKey, list[float]] = {}
    for tier, endpoint, _kind in run.samples:
        if endpoint == "*":
            continue
        for metric in ("service_p50", "p95"):
            series = store.series(metric, pack=run.run.pack, profile=baseline.run.profile, tier=tier,
                                  endpoint=endpoint, before=run.run.run_id)  # fmt: skip
            history[(tier, endpoint, metric)] = [v for r, v in series if r.run_id in comparable]
    return compare_runs(baseline, run, history=history, pinned=pinned)
