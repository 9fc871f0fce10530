"""A new run against its pack's baseline and its nightly series, read from the history database.

The baseline is the run a team pinned (`scaleready baseline pin RUN`), else the last READY,
complete audit of the same pack and profile without a demo flaw. The noise of each metric is
measured over the earlier runs that could have been a baseline (READY, complete, same profile).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.comparison import change_points, compare_runs
from harness.history.rows import tier_metrics
from harness.history.store import HistoryStore
from harness.records import (
    BaselineComparison,
    ChangePoint,
    MetricKey,
    MetricSeries,
    RunMetrics,
    RunSummary,
    SeriesPoint,
    TierResult,
)

__all__ = ["HistoryContext", "compare_stored", "compare_with_baseline", "find_change_points", "series_runs", "with_history"]


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
    if run_a == run_b:  # after the look-ups, so a missing run is named as missing first
        raise HistoryError(f"{run_a} compared with itself says nothing: give two different runs of the pack "
                           "(`scaleready history` lists them)")  # fmt: skip
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


#: The metrics whose series are searched for change points: each endpoint's median service
#: time, each tier's p95 over every endpoint, and the capacity.
SERIES_METRICS = ("service_p50", "p95", "capacity")


def series_runs(store: HistoryStore, pack: str, profile: str, *, limit: int = 30) -> list[RunSummary]:
    """The runs of a pack's nightly series: complete audits of the profile with a verdict that
    rests on measurements (not INCONCLUSIVE), without a demo flaw; the newest ``limit``."""
    runs = [r for r in store.runs(pack=pack, profile=profile)
            if r.source == "audit" and not r.partial and r.verdict != "INCONCLUSIVE" and r.flaw in (None, "none")]  # fmt: skip
    return runs[-limit:]


def find_change_points(store: HistoryStore, pack: str, profile: str, *, extra: RunMetrics | None = None,
                       limit: int = 30) -> list[ChangePoint]:  # fmt: skip
    """Every change point of the series of ``pack`` and ``profile`` (``extra``: a run not stored
    yet, appended last), newest first."""
    runs = series_runs(store, pack, profile, limit=limit - (extra is not None))
    ids = {r.run_id for r in runs}
    keys = {k for k in store.metric_keys(pack=pack, profile=profile) if _followed(k)}
    if extra is not None:
        keys |= {k for k in extra.values if _followed(k)}
    found: list[ChangePoint] = []
    for tier, endpoint, metric in sorted(keys):
        series = [(r, v) for r, v in store.series(metric, pack=pack, profile=profile, tier=tier, endpoint=endpoint)
                  if r.run_id in ids]  # fmt: skip
        if extra is not None and (tier, endpoint, metric) in extra.values:
            series.append((extra.run, extra.values[(tier, endpoint, metric)]))
        found += change_points(series, tier=tier, endpoint=endpoint, metric=metric)
    return sorted(found, key=lambda c: (c.run_id, c.tier, c.endpoint), reverse=True)


def _followed(key: MetricKey) -> bool:
    tier, endpoint, metric = key
    if metric == "capacity":
        return tier == 0
    return tier > 0 and metric in SERIES_METRICS and (metric == "service_p50") == (endpoint != "*")


def with_history(reports_dir: Path, *, pack: str, profile: str, run_id: str, tiers: Sequence[TierResult],
                 capacity: float | None, verdict: str = "") -> HistoryContext:  # fmt: skip
    """What the history says about a run about to be judged: its comparison with the baseline,
    the latest change points of the series it ends, and the largest tier's p95 over that series.
    Raises HistoryError for an unreadable database."""
    comparison = compare_with_baseline(reports_dir, pack=pack, profile=profile, run_id=run_id, tiers=tiers)
    values, samples = tier_metrics(tiers)
    if capacity is not None:
        values[(0, "*", "capacity")] = capacity
    current = RunMetrics(RunSummary(run_id=run_id, pack=pack, profile=profile, finished_at=0.0, verdict=verdict),
                         values, samples)  # fmt: skip
    with HistoryStore(reports_dir) as store:
        changes = find_change_points(store, pack, profile, extra=current)
        tiers_measured = [t for t, e, m in values if t > 0 and e == "*" and m == "p95"]
        series = None
        if tiers_measured:
            top = max(tiers_measured)
            ids = {r.run_id for r in series_runs(store, pack, profile, limit=29)}
            points = [SeriesPoint(r.run_id, r.finished_at, v, r.verdict, r.commit)
                      for r, v in store.series("p95", pack=pack, profile=profile, tier=top) if r.run_id in ids]  # fmt: skip
            points.append(SeriesPoint(run_id, None, values[(top, "*", "p95")], verdict))
            series = MetricSeries(top, "*", "p95", tuple(points)) if len(points) >= 2 else None
    return HistoryContext(comparison, tuple(changes[:MAX_REPORTED_CHANGES]), series)


@dataclass(frozen=True)
class HistoryContext:
    """What the history adds to a run's record."""

    baseline: BaselineComparison | None = None
    change_points: tuple[ChangePoint, ...] = ()
    series: MetricSeries | None = None


#: Change points a scorecard carries (the newest); `scaleready history --changes` lists them all.
MAX_REPORTED_CHANGES = 8
