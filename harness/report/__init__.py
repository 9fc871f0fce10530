"""Reports: read an AuditRecord, write what people and CI read. They never run anything.

- :func:`build_scorecard` -> the scorecard dict (``scorecard.json``, the versioned contract,
  described by ``scorecard.schema.json`` beside this file; see :data:`SCHEMA_VERSION`)
- :func:`render_markdown` -> ``scorecard.md`` (the verdict and why, for a manager and the README)
- :func:`render_junit` -> ``junit.xml`` (one suite per stage and per tier, for CI)
- ``harness.report.html.render_html`` -> ``report.html``, the audit report (self-contained, with
  charts; imported on demand because it needs matplotlib), drawn from the scorecard alone:
  ``summary`` (its first page), ``recommendations`` (what each finding category usually means and
  what teams do), ``judged`` (what a tier's status rests on), ``charts`` (matplotlib figures)
- ``harness.report.pdf.print_pdf`` -> ``report.pdf`` (report.html printed by headless Chromium)
- :func:`write_reports` writes the four text reports into a run folder atomically
  (harness.files); ``writer.rewrite_html`` redraws an earlier run's report.html from its
  scorecard.json (``scaleready report RUN``).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from harness.report.junit import render_junit
from harness.report.markdown import render_markdown
from harness.report.scorecard import SCHEMA_VERSION, build_scorecard
from harness.report.writer import ReportPaths, write_reports

__all__ = [
    "SCHEMA_VERSION",
    "ReportPaths",
    "build_scorecard",
    "load_schema",
    "render_junit",
    "render_markdown",
    "write_reports",
]


def load_schema() -> dict[str, Any]:
    """The scorecard's JSON Schema (draft 2020-12), as shipped with the package."""
    text = resources.files("harness.report").joinpath("scorecard.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
