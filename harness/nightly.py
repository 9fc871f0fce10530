"""The nightly job's commands: the run history as a table and a plot, and (later) comparisons.

What `scaleready history` shows: one line per run of a pack (oldest first), with its verdict,
capacity and one metric at one tier and endpoint. The database is read only here; the audit
writes it (harness.audit).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.history.store import HistoryStore
from harness.records import BaselineComparison, RunSummary
from harness.timestamps import iso_utc
from harness.verdict.rules.baseline import describe_change

__all__ = ["METRICS", "HistoryView", "changes_text", "comparison_text", "history_view", "metric_unit", "open_store", "series_dict"]

#: The metrics a run keeps, with their unit. Per tier and endpoint unless said otherwise.
METRICS: dict[str, str] = {
    "capacity": "customers (whole run)",
    "headroom": "x goal (whole run)",
    "p50": "ms from the intended start",
    "p95": "ms from the intended start",
    "p99": "ms from the intended start",
    "service_p50": "ms of service time",
    "service_p95": "ms of service time",
    "error_rate": "failed / requests",
    "throughput": "completed req/s (endpoint *)",
    "requests": "requests in the steady window",
}
_RUN_METRICS = ("capacity", "headroom")


def metric_unit(metric: str) -> str:
    return METRICS.get(metric, "").split(" (")[0]


@dataclass(frozen=True)
class HistoryView:
    pack: str
    metric: str
    tier: int
    endpoint: str
    rows: tuple[tuple[RunSummary, float | None], ...]

    def table(self) -> str:
        where = "" if self.metric in _RUN_METRICS else f" @ {self.tier}"
        if self.endpoint != "*":
            where += f" {self.endpoint}"
        head = ("run", "finished (UTC)", "profile", "commit", "verdict", "capacity", f"{self.metric}{where}")
        lines = [head]
        for run, value in self.rows:
            lines.append((
                run.run_id, (iso_utc(run.finished_at) or "")[:16].replace("T", " "), run.profile,
                (run.commit or run.label or "-")[:12], run.verdict + (" (partial)" if run.partial else ""),
                _num(run.capacity), _num(value),
            ))  # fmt: skip
        widths = [max(len(str(r[i])) for r in lines) for i in range(len(head))]
        return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        close = difflib.get_close_matches(metric, list(METRICS), n=1, cutoff=0.5)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        raise ConfigError(f"--metric {metric}: not a metric the history keeps{hint}; use one of {', '.join(METRICS)}")


def history_view(store: HistoryStore, *, pack: str | None, profile: str | None, metric: str,
                 tier: int | None, endpoint: str, limit: int | None) -> HistoryView:  # fmt: skip
    """The runs of ``pack`` (the newest run's pack when None) with ``metric`` at ``tier``."""
    check_metric(metric)
    newest = store.runs(pack=pack, profile=profile, limit=1)
    if not newest:
        known = sorted({r.pack for r in store.runs()})
        what = f"of pack {pack}" if pack else "yet"
        hint = f"; packs with runs: {', '.join(known)}" if known else "; run `scaleready audit` first"
        raise ConfigError(f"no runs {what} in {store.path}{hint}")
    pack = pack or newest[0].pack
    if metric in _RUN_METRICS:
        tier = 0
    elif tier is None:
        tiers = [t for t, e, m in store.metric_keys(pack=pack, profile=profile) if m == metric and t > 0]
        tier = max(tiers) if tiers else 0
    runs = store.runs(pack=pack, profile=profile, limit=limit)
    values = {r.run_id: v for r, v in store.series(metric, pack=pack, profile=profile, tier=tier, endpoint=endpoint)}
    return HistoryView(pack, metric, tier, endpoint, tuple((r, values.get(r.run_id)) for r in runs))


def series_dict(view: HistoryView, changes: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The view as the scorecard's ``history`` shape, which the chart draws."""
    return {
        "metric": view.metric,
        "tier": view.tier or None,
        "endpoint": view.endpoint,
        "unit": metric_unit(view.metric),
        "points": [{"run_id": r.run_id, "finished_at": iso_utc(r.finished_at), "value": v, "verdict": r.verdict,
                    "commit": r.commit} for r, v in view.rows if v is not None],  # fmt: skip
        "changes": list(changes),
    }


def open_store(reports_dir: Path) -> HistoryStore:
    if not Path(reports_dir).is_dir():
        raise ConfigError(f"no reports folder {reports_dir}: run an audit first, or pass --reports DIR")
    return HistoryStore(reports_dir)


def comparison_text(c: BaselineComparison) -> str:
    """`scaleready compare A B` as the terminal shows it."""
    lines = [f"{c.run_id} against {c.baseline_run_id}: {len(c.changes)} metrics compared, "
             f"{len(c.regressions)} slower and {len(c.improvements)} faster beyond the noise."]  # fmt: skip
    if c.note:
        lines.append(c.note)
    for title, changes in (("Slower:", c.regressions), ("Faster:", c.improvements)):
        if changes:
            lines += [title, *[f"  - {describe_change(x)}; threshold {x.threshold:.0%}" for x in changes]]
    unchanged = [x for x in c.changes if x.kind == "unchanged"]
    if unchanged:
        lines.append("Within the noise:")
        lines += [f"  - {describe_change(x)}; threshold {x.threshold:.0%}" for x in unchanged]
    return "\n".join(lines)


def changes_text(store: HistoryStore, *, pack: str | None, profile: str | None, limit: int | None) -> str:
    """`scaleready history --changes`: every change point of the pack's series, newest first."""
    from harness.history.baseline import find_change_points

    newest = store.runs(pack=pack, profile=profile, limit=1)
    if not newest:
        raise ConfigError(f"no runs {'of pack ' + pack if pack else 'yet'} in {store.path}; run `scaleready audit` first")
    pack = pack or newest[0].pack
    profile = profile or newest[0].profile
    found = find_change_points(store, pack, profile, limit=limit or 30)
    runs = [r.run_id for r in store.runs(pack=pack, profile=profile)]
    if not found:
        return (f"No change points in the last {min(len(runs), limit or 30)} runs of {pack} ({profile}): "
                "no metric moved by 10 % or more and stayed moved.")  # fmt: skip
    head = ("started with run", "after run", "tier", "endpoint", "metric", "before", "after", "shift", "p", "commits")
    rows = [head]
    for c in found:
        commits = f"{(c.commit_before or '?')[:8]}..{(c.commit_after or '?')[:8]}" if c.commit_before or c.commit_after else "-"
        rows.append((c.run_id, c.previous_run_id or "-", str(c.tier or "run"), c.endpoint, c.metric,
                     f"{c.before:.3g}", f"{c.after:.3g}", f"{c.shift:+.0%}", f"{c.p_value:.2g}", commits))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    table = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    return f"Change points of {pack} ({profile}), newest first:\n{table}"
