"""report.html: the scorecard with charts, per-endpoint tables, stress steps and integrity results.

One self-contained file: inline CSS, inline SVG charts (from :mod:`harness.report.charts`), no script,
no font, no image and no link that leaves the page, so it opens offline, in a CI artifact viewer,
or attached to an e-mail, and prints cleanly.

Safety: much of the text comes from the target (error bodies, endpoint names, finding titles that
quote them). Jinja2 runs with autoescape on, so all of it is HTML-escaped; the only markup inserted
unescaped is the SVG produced by matplotlib, which is checked first. A Content-Security-Policy
forbids scripts and any network fetch as a second line of defence.

Deterministic: the same record renders the same bytes (time comes from the record, never the clock).
"""

from __future__ import annotations

import re
from typing import Any

import jinja2
from markupsafe import Markup

from harness.records import AuditRecord
from harness.report.charts import all_charts, figure_svg
from harness.report.scorecard import (
    build_scorecard,
    fmt_count,
    fmt_customers,
    fmt_ms,
    fmt_pct,
    fmt_rps,
    fmt_time,
)

__all__ = ["render_html"]

# Anything in a chart that could run or fetch: matplotlib never writes these, so their presence
# means the SVG did not come from where we think; such a chart is left out, visibly.
_UNSAFE_SVG = re.compile(
    r"<\s*(script|foreignObject|iframe|object|embed)\b|\son[a-z]+\s*=|javascript:"
    r"|(href|src)\s*=\s*[\"']?\s*(https?:|//)",
    re.IGNORECASE,
)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True,  # every template, whatever its extension: target text is never trusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(ms=fmt_ms, rps=fmt_rps, pct=fmt_pct, num=fmt_count, time=fmt_time,
                       customers=fmt_customers)
    return env


def inline_svg(svg: str) -> Markup | None:
    """matplotlib's SVG document -> an ``<svg>`` element to inline, or None if it is not safe."""
    start = svg.find("<svg")
    if start < 0 or _UNSAFE_SVG.search(svg):
        return None
    body = svg[start:]
    # <metadata> carries a creation date in matplotlib's output: drop it to stay deterministic
    body = re.sub(r"<metadata>.*?</metadata>\s*", "", body, flags=re.DOTALL)
    return Markup(body.strip())  # checked above; produced by matplotlib


def _charts(record: AuditRecord) -> list[dict[str, Any]]:
    charts = []
    for chart_id, title, fig in all_charts(record):
        charts.append({"id": chart_id, "title": title, "svg": inline_svg(figure_svg(fig))})
    return charts


def render_html_from_scorecard(card: dict[str, Any], charts: list[dict[str, Any]]) -> str:
    template = _environment().get_template("report.html.j2")
    # finding ids come from analysis and may hold any character: anchors use the position
    anchors = {f["id"]: f"finding-{i}" for i, f in reversed(list(enumerate(card["findings"], 1)))}
    return template.render(card=card, charts=charts, anchors=anchors)


def render_html(record: AuditRecord) -> str:
    """The text of report.html for ``record``."""
    return render_html_from_scorecard(build_scorecard(record), _charts(record))
