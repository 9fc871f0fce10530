"""The CI job summary: what a team reads on the nightly job's page before opening the report.

GitHub Actions renders the Markdown a step appends to the file named by ``$GITHUB_STEP_SUMMARY``
on the run's page. The summary is the verdict, the tiers table, the findings that are new since
the baseline (by their stable ids: a finding the baseline already had is old news), and the
metrics slower or faster than the baseline beyond the noise, with a link to the full report.

Pure except :func:`write_job_summary`, which only appends to the file the environment names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.report.markdown import change_line, code_span, md_text, tier_table, verdict_line

__all__ = ["SUMMARY_ENV", "job_summary", "new_findings", "write_job_summary"]

SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def new_findings(card: Mapping[str, Any], baseline_card: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The run's findings whose id the baseline's scorecard does not have (all of them without one)."""
    old = {f["id"] for f in baseline_card["findings"]} if baseline_card else set()
    return [f for f in card["findings"] if f["id"] not in old]


def job_summary(card: dict[str, Any], baseline_card: Mapping[str, Any] | None = None,
                report: str | None = None) -> str:  # fmt: skip
    """The summary of one audit's scorecard ``card``; ``baseline_card`` is its baseline's scorecard."""
    lines = [f"# scaleready: {md_text(card['pack'])} ({md_text(card['profile'])})", "", verdict_line(card), ""]
    lines += [f"Run {code_span(card['run_id'])}" + (f" · report: {code_span(report)}" if report else ""), ""]
    lines += tier_table(card)[:-2]  # the table without the paragraph on how latency is measured
    fresh = new_findings(card, baseline_card)
    since = f"baseline {code_span(baseline_card['run_id'])}" if baseline_card else "no baseline yet"
    lines += [f"## New findings ({since})", ""]
    if fresh:
        lines += [f"- **{f['severity'].upper()}** [{md_text(f['category'])}] {md_text(f['title'])}" for f in fresh]
    else:
        lines.append("None." if card["findings"] else "None: nothing in this run needs attention.")
    lines.append("")
    lines += _regressions(card)
    return "\n".join(lines)


def _regressions(card: Mapping[str, Any]) -> list[str]:
    b = card.get("baseline")
    lines = ["## Against the baseline", ""]
    if not b:
        return [*lines, "No baseline to compare with yet: the next READY run of this profile becomes it.", ""]
    lines.append(f"Compared with {code_span(b['baseline_run_id'])}: {b['compared']} metrics, "
                 f"{len(b['regressions'])} slower and {len(b['improvements'])} faster beyond the noise.")  # fmt: skip
    lines.append("")
    for title, changes in (("Slower", b["regressions"]), ("Faster", b["improvements"])):
        if changes:
            lines += [f"{title}:", "", *[f"- {change_line(c)}" for c in changes], ""]
    return lines


def write_job_summary(card: dict[str, Any], baseline_card: Mapping[str, Any] | None = None,
                      report: str | None = None, environ: Mapping[str, str] = os.environ) -> Path | None:  # fmt: skip
    """Append the summary to ``$GITHUB_STEP_SUMMARY`` when it is set; the file's path, or None."""
    target = environ.get(SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as out:  # appended: other steps of the job write there too
        out.write(job_summary(card, baseline_card, report) + "\n")
    return path
