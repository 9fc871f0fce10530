"""Write a run's reports to its folder, atomically; check the reports folder before any load.

Each file is written to a temporary file in the same folder, flushed to disk and renamed over its
final name (``os.replace``), so a reader (CI, a person, the next audit) sees either the previous
complete file or the new complete file, never half a scorecard, even if the audit is killed.

Order matters: ``scorecard.json`` (the contract) first, then the Markdown, JUnit and, last, the
HTML report, which is the only one that draws charts. If drawing fails, the others are on disk.

The HTML is drawn from the scorecard alone, so :func:`rewrite_html` redraws an earlier run's
report.html from its scorecard.json (``scaleready report RUN``) with the current report's layout.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.files import atomic_write_text
from harness.records import AuditRecord
from harness.report.scorecard import SCHEMA_VERSION, build_scorecard

__all__ = ["ReportPaths", "read_scorecard", "rewrite_html", "write_reports"]

@dataclass(frozen=True)
class ReportPaths:
    scorecard_json: Path
    scorecard_md: Path
    report_html: Path
    junit_xml: Path

    def all(self) -> tuple[Path, ...]:
        return (self.scorecard_json, self.scorecard_md, self.report_html, self.junit_xml)


def write_reports(record: AuditRecord, run_dir: Path) -> ReportPaths:
    """Write scorecard.json, scorecard.md, junit.xml and report.html into ``run_dir``."""
    # imported here so that reading a scorecard never needs matplotlib or Jinja2
    from harness.report.html import render_html
    from harness.report.junit import render_junit
    from harness.report.markdown import render_markdown_from_scorecard

    run_dir = Path(run_dir)
    paths = ReportPaths(
        scorecard_json=run_dir / "scorecard.json",
        scorecard_md=run_dir / "scorecard.md",
        report_html=run_dir / "report.html",
        junit_xml=run_dir / "junit.xml",
    )
    card = build_scorecard(record)
    atomic_write_text(paths.scorecard_json,
                      json.dumps(card, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    # The scorecard is written first and alone: a bug in one renderer must not cost the user
    # the other reports of a run that may have taken an hour.
    renderers: list[tuple[Path, Callable[[], str]]] = [
        (paths.scorecard_md, lambda: render_markdown_from_scorecard(card)),
        (paths.junit_xml, lambda: render_junit(record)),
        (paths.report_html, lambda: render_html(record)),
    ]
    failed: list[str] = []
    for path, render in renderers:
        try:
            atomic_write_text(path, render())
        except Exception:  # noqa: BLE001 - reported below, after the other reports are written
            failed.append(f"{path.name}:\n{traceback.format_exc()}")
    if failed:
        atomic_write_text(run_dir / "report-errors.txt", "\n".join(failed))
        names = ", ".join(f.split(":", 1)[0] for f in failed)
        raise RuntimeError(
            f"could not render {names} (a bug in the harness; details in "
            f"{run_dir / 'report-errors.txt'}); scorecard.json and the other reports were written"
        )
    return paths


def read_scorecard(run_dir: Path) -> dict[str, Any]:
    """A run's scorecard.json; a ConfigError (exit 2) saying what is wrong when it cannot be used."""
    path = Path(run_dir) / "scorecard.json"
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no scorecard.json in that run folder (its audit did not get as "
                          "far as writing reports); pick another run") from None  # fmt: skip
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable scorecard ({exc}); pick another run") from None
    version = str(card.get("schema_version", "")) if isinstance(card, dict) else "(none)"
    major = SCHEMA_VERSION.split(".")[0]
    if version.split(".")[0] != major:
        raise ConfigError(f"{path}: scorecard schema {version} is not {major}.x, which this harness "
                          "draws; redraw it with the harness version that wrote it")  # fmt: skip
    return card


def rewrite_html(run_dir: Path) -> Path:
    """Redraw ``run_dir``'s report.html from its scorecard.json; returns the path written."""
    from harness.report.html import render_html_from_scorecard

    card = read_scorecard(run_dir)
    path = Path(run_dir) / "report.html"
    atomic_write_text(path, render_html_from_scorecard(card))
    return path
