"""Write a run's reports to its folder, atomically; check the reports folder before any load.

Each file is written to a temporary file in the same folder, flushed to disk and renamed over its
final name (``os.replace``), so a reader (CI, a person, the next audit) sees either the previous
complete file or the new complete file, never half a scorecard, even if the audit is killed.

Order matters: ``scorecard.json`` (the contract) first, then the Markdown, JUnit and, last, the
HTML report, which is the only one that draws charts. If drawing fails, the others are on disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError
from harness.records import AuditRecord
from harness.report.scorecard import build_scorecard

__all__ = ["MIN_FREE_MB", "ReportPaths", "atomic_write_text", "check_writable", "write_reports"]

# A run folder holds a few MB (reports, JUnit, logs, histograms); history and charts are small.
# 50 MB leaves room for a long nightly run without letting a nearly full disk fail late, after
# an hour of load, when nothing can be saved any more.
MIN_FREE_MB = 50


@dataclass(frozen=True)
class ReportPaths:
    scorecard_json: Path
    scorecard_md: Path
    report_html: Path
    junit_xml: Path

    def all(self) -> tuple[Path, ...]:
        return (self.scorecard_json, self.scorecard_md, self.report_html, self.junit_xml)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) all at once: readers never see a partial file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a crash right after must not bring the old file back)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not supported on this platform/filesystem: the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


def check_writable(reports_dir: Path, min_free_mb: int = MIN_FREE_MB) -> None:
    """Raise ConfigError unless ``reports_dir`` exists (or can be made), is writable and has room.

    The audit calls this before any load, so a bad folder fails in a second, not after an hour.
    """
    reports_dir = Path(reports_dir)
    try:
        reports_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(
            f"reports folder {reports_dir}: a file with that name exists, so the folder cannot "
            f"be created; remove the file or choose another with --reports"
        ) from None
    except OSError as e:
        raise ConfigError(
            f"reports folder {reports_dir}: cannot be created ({e.strerror or e}); "
            f"create it yourself, fix its permissions or choose another with --reports"
        ) from None
    if not reports_dir.is_dir():
        raise ConfigError(
            f"reports folder {reports_dir}: is not a folder; choose another with --reports"
        )
    try:
        fd, probe = tempfile.mkstemp(dir=reports_dir, prefix=".write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(
            f"reports folder {reports_dir}: is not writable ({e.strerror or e}); fix its "
            f"permissions or choose another with --reports"
        ) from None
    free_mb = shutil.disk_usage(reports_dir).free / (1024 * 1024)
    if free_mb < min_free_mb:
        raise ConfigError(
            f"reports folder {reports_dir}: only {free_mb:.0f} MB free on its disk, and an audit "
            f"needs at least {min_free_mb} MB for its reports; free some space or choose a "
            f"folder on another disk with --reports"
        )
