"""report.html: the pre-launch audit report, drawn from the scorecard alone.

One self-contained file: inline CSS, inline SVG charts (from :mod:`harness.report.charts`), no script,
no font, no image and no link that leaves the page, so it opens offline, in a CI artifact viewer,
or attached to an e-mail, and prints to A4 (:mod:`harness.report.pdf`) with a page per section.

Its first page is for a reader who is not a performance engineer (:mod:`harness.report.summary`);
the sections after it are the evidence, and the appendix explains the method and carries the raw
model parameters.

From the scorecard alone: ``render_html(record)`` is ``render_html_from_scorecard`` of the record's
scorecard, so ``scaleready report RUN`` redraws an earlier run from its scorecard.json, and a run
of the current version redraws to the same bytes. Fields a newer scorecard has and an older one
lacks are read with a default (see :data:`harness.report.scorecard.SCHEMA_VERSION`).

Safety: much of the text comes from the target (error bodies, endpoint names, finding titles that
quote them). Jinja2 runs with autoescape on, so all of it is HTML-escaped; the only markup inserted
unescaped is the SVG produced by matplotlib, which is checked first. A Content-Security-Policy
forbids scripts and any network fetch as a second line of defence.

Deterministic: the same scorecard renders the same bytes (time comes from it, never the clock).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import jinja2
from markupsafe import Markup

from harness.records import AuditRecord
from harness.report.charts import Chart, all_charts, figure_svg, tier_charts
from harness.report.judged import tier_judged
from harness.report.recommendations import RECOMMENDATIONS
from harness.report.scorecard import (
    DASH,
    build_scorecard,
    fmt_count,
    fmt_customers,
    fmt_duration,
    fmt_ms,
    fmt_pct,
    fmt_rps,
    fmt_time,
)
from harness.report.summary import briefing

__all__ = ["evidence_label", "evidence_text", "inline_svg", "render_html", "render_html_from_scorecard"]

# Anything in a chart that could run or fetch: matplotlib never writes these, so their presence
# means the SVG did not come from where we think; such a chart is left out, visibly.
_UNSAFE_SVG = re.compile(
    r"<\s*(script|foreignObject|iframe|object|embed)\b|\son[a-z]+\s*=|javascript:"
    r"|(href|src)\s*=\s*[\"']?\s*(https?:|//)",
    re.IGNORECASE,
)
_INLINE_MAPPING_MAX = 8  # larger evidence mappings (a model's parameters) go to the appendix


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
                       customers=fmt_customers, thousands=_thousands, evidence=evidence_text,
                       label=evidence_label, duration=fmt_duration, safe_id=_safe_id)  # fmt: skip
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


# --- formatting for the template --------------------------------------------------------------


def _thousands(x: float | None) -> str:
    """Customers and counts for prose: ``7,100``."""
    return DASH if x is None else f"{x:,.0f}"


def _safe_id(text: object) -> str:
    """Harness-made identifiers (run ids) for places outside HTML text, such as CSS strings."""
    return re.sub(r"[^A-Za-z0-9._-]", "", str(text))


_UNITS = {"ms": "ms", "rps": "req/s", "mb": "MB", "pct": "%", "s": "s"}
_WORDS = {"slo": "SLO", "mb": "MB", "rps": "req/s", "n": "N", "r2": "R²", "cpu": "CPU", "rss": "RSS",
          "ips": "iterations/s", "10k": "10k", "p50": "p50", "p95": "p95", "p99": "p99"}  # fmt: skip


def evidence_label(key: str) -> str:
    """``slo_p95_ms`` -> ``SLO p95 (ms)``: an evidence key as a reader's label."""
    words = str(key).split("_")
    unit = _UNITS.get(words[-1]) if len(words) > 1 else None
    if unit is not None:
        words = words[:-1]
    text = " ".join(_WORDS.get(w, w) for w in words)
    text = text[:1].upper() + text[1:]
    return f"{text} ({unit})" if unit else text


def _scalar(v: Any) -> str:
    if v is None:
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return DASH
        if abs(v) >= 1000 or (v == int(v) and abs(v) < 1e15):
            return f"{v:,.0f}"
        return f"{v:.4g}" if abs(v) >= 1e-3 else f"{v:.3g}"
    return str(v)


def evidence_text(value: Any) -> str:
    """A finding's evidence value as text a reader can read: numbers with separators, a list of
    (x, y) pairs as ``50: 4.1 · 500: 4.6``, a small mapping as ``a: 1, b: 2``; a large mapping
    (a model's parameters) is pointed to, not dumped."""
    if isinstance(value, Mapping):
        if len(value) > _INLINE_MAPPING_MAX:
            return f"{len(value)} values (see the appendix and scorecard.json)"
        return ", ".join(f"{k}: {_scalar(v) if not isinstance(v, Mapping | list) else evidence_text(v)}"
                         for k, v in value.items()) or DASH  # fmt: skip
    if isinstance(value, list | tuple):
        if value and all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
            return " · ".join(f"{_scalar(a)}: {_scalar(b)}" for a, b in value)
        return ", ".join(evidence_text(v) for v in value) or DASH
    return _scalar(value)


# --- the page ---------------------------------------------------------------------------------


def _chart_view(chart: Chart) -> dict[str, Any]:
    return {"id": chart.id, "title": chart.title, "caption": chart.caption,
            "svg": inline_svg(figure_svg(chart.figure))}  # fmt: skip


def render_html_from_scorecard(card: Mapping[str, Any]) -> str:
    """The text of report.html for a scorecard dict (as ``build_scorecard`` makes it, or as read
    back from an earlier run's scorecard.json)."""
    template = _environment().get_template("report.html.j2")
    # finding ids come from analysis and may hold any character: anchors use the position
    anchors = {f["id"]: f"finding-{i}" for i, f in reversed(list(enumerate(card["findings"], 1)))}
    charts = {c.id: _chart_view(c) for c in all_charts(card)}
    per_tier = {t["customers"]: [_chart_view(c) for c in tier_charts(card, t["customers"])]
                for t in card["tiers"]}  # fmt: skip
    return template.render(
        card=card,
        charts=charts,
        tier_charts=per_tier,
        anchors=anchors,
        brief=briefing(card, anchors),
        judged={t["customers"]: tier_judged(t) for t in card["tiers"]},
        recommendations=RECOMMENDATIONS,
    )


def render_html(record: AuditRecord) -> str:
    """The text of report.html for ``record``."""
    return render_html_from_scorecard(build_scorecard(record))
