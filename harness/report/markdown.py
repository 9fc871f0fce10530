"""scorecard.md: the verdict, why, the tiers, capacity and findings, for a manager and the README.

Plain CommonMark (GitHub tables), no HTML. Text that came from the target or the pack (endpoint
names, error bodies, finding titles) is escaped, so it reads as text wherever the file is rendered
and can never become HTML, an image, a link with hidden text or emphasis.
"""

from __future__ import annotations

import json
import re
from typing import Any

from harness.records import AuditRecord
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

__all__ = ["render_markdown", "render_markdown_from_scorecard"]

_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|])")
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_EVIDENCE_MAX = 300


def md_text(s: object) -> str:
    """Escape inline Markdown so ``s`` renders as itself: no emphasis, links, images or HTML.

    Newlines become spaces; use :func:`md_block` for text that keeps its paragraphs.
    """
    text = " ".join(str(s).split())
    text = _MD_SPECIAL.sub(r"\\\1", text)
    # an underscore inside a word (slots_by_day) is never emphasis: keep it readable
    return _MD_UNDERSCORE.sub(r"\\_", text)


def md_block(s: str) -> str:
    """Escape a multi-line paragraph, keeping its line breaks (blank lines separate paragraphs)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", s.strip()) if p.strip()]
    out = []
    for p in paragraphs:
        lines = [md_text(line) for line in p.splitlines() if line.strip()]
        # a line starting "-", "+" or "1." would become a list item; "=" or "-" runs a heading
        lines = [re.sub(r"^([-+=#]|\d+[.)])", r"\\\1", line) for line in lines]
        out.append("  \n".join(lines))
    return "\n\n".join(out)


def code_span(s: str) -> str:
    """``s`` as an inline code span, whatever backticks it contains (CommonMark's rule)."""
    s = " ".join(str(s).split())
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s.strip() else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _evidence_value(v: Any) -> str:
    """Text and numbers as text; lists and mappings as compact JSON in a code span."""
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, str | int):
        text = str(v)
        return md_text(text if len(text) <= _EVIDENCE_MAX else text[: _EVIDENCE_MAX - 1] + "\u2026")
    text = json.dumps(v, ensure_ascii=False, sort_keys=True)
    if len(text) > _EVIDENCE_MAX:
        text = text[: _EVIDENCE_MAX - 1] + "\u2026"
    return code_span(text)


def verdict_line(card: dict[str, Any]) -> str:
    return f"**Verdict: {card['verdict']}** \u2014 {md_text(card['summary']['headline'])}"


def _header(card: dict[str, Any]) -> list[str]:
    target = card["target"]
    started = " (started by the harness)" if target["started_by_harness"] else ""
    if not target["started_by_harness"] and target.get("resources_source"):
        started = f" (resources read from {md_text(target['resources_source'])})"
    lines = [verdict_line(card), ""]  # first, so a README or a CI summary can quote line 1
    if card["partial"]:
        lines += [
            "> **PARTIAL RUN:** the audit was interrupted or aborted, so some stages did not run. "
            "The verdict covers only the evidence below.",
            "",
        ]
    lines += [
        f"Scale-readiness scorecard of run {code_span(card['run_id'])} \u00b7 "
        f"pack {code_span(card['pack'])} \u00b7 "
        f"profile {code_span(card['profile'])} \u00b7 target {code_span(target['base_url'])}{started}",
        "",
        f"From {fmt_time(card['started_at'])} to {fmt_time(card['finished_at'])}"
        + (f" ({fmt_duration(card['duration_s'])})." if card["duration_s"] is not None else "."),
        "",
    ]
    return lines


def _why(card: dict[str, Any]) -> list[str]:
    why = card["summary"]["why"]
    if not why:
        return []
    return ["## Why", "", *[f"- {md_text(w['text'])}" for w in why], ""]


def tier_table(card: dict[str, Any]) -> list[str]:
    if not card["tiers"]:
        return ["## Tiers", "", "No tier was run.", ""]
    lines = [
        "## Tiers",
        "",
        "| Customers | Arrivals/s | Achieved req/s | p95 | p99 | Errors | Status |",
        "|---:|---:|---:|---:|---:|---:|:---|",
    ]
    for t in card["tiers"]:
        errors = (
            f"{fmt_count(t['errors'])} ({fmt_pct(t['error_rate'])})"
            if t["error_rate"] is not None
            else DASH
        )
        status = t["status"].upper() if t["status"] != "passed" else "passed"
        lines.append(
            f"| {fmt_customers(t['customers'])} | {fmt_rps(t['offered_rps'])} | "
            f"{fmt_rps(t['achieved_rps'])} | {fmt_ms(t['p95_ms'])} | {fmt_ms(t['p99_ms'])} | "
            f"{errors} | {status} |"
        )
    lines.append("")
    notes = [
        f"- {fmt_customers(t['customers'])} customers: {md_text(t['reason'])}"
        for t in card["tiers"]
        if t["reason"] and t["status"] != "passed"
    ]
    if notes:
        lines += [*notes, ""]
    refreshed = [(t["customers"], t["credential_refreshes"]) for t in card["tiers"]
                 if sum((t.get("credential_refreshes") or {}).values())]  # fmt: skip
    if refreshed:
        counts = "; ".join(
            f"{fmt_count(r['refreshed'])} at {fmt_customers(n)} customers"
            + (f" ({fmt_count(r['failed'])} failed)" if r["failed"] else "")
            for n, r in refreshed
        )
        lines += [
            f"Credentials renewed by the pack's refresh_credentials: {counts}. Those requests are "
            "not in the tiers' requests, errors or latency.",
            "",
        ]
    lines += [
        "Latency is measured from when each request was *meant* to start (open-model arrivals), "
        "so a stall in the service cannot hide behind a waiting load generator.",
        "",
    ]
    popularity = card.get("popularity")
    if popularity:
        lines += [popularity_sentence(popularity), ""]
    probes = [(t["customers"], t["overlap_probe"]) for t in card["tiers"] if t.get("overlap_probe")]
    if probes:
        lines += [overlap_sentence(probes), ""]
    return lines


def overlap_sentence(probes: list[tuple[int, dict[str, Any]]]) -> str:
    """What the overlap probe sent, in one sentence (its findings are the integrity checks')."""
    first = probes[0][1]
    each = "; ".join(
        f"{fmt_customers(n)} customers: {p['writes']} writes ({p['acknowledged']} acknowledged, "
        f"{p['refused']} refused, {p['unknown']} unknown) in {p['duration_s']:g} s"
        for n, p in probes
    )
    return (
        f"Overlap probe: after each tier's load, {first['concurrency']} writes at once for one customer, "
        f"{first['rounds']} rounds on the busiest customers, then the integrity checks ({each})."
    )


def popularity_sentence(popularity: dict[str, Any]) -> str:
    """How the load picked its customers, in one sentence."""
    if popularity["distribution"] == "uniform":
        return ("Customers were picked uniformly at random: every customer had the same share of "
                "the traffic.")  # fmt: skip
    shares = ", ".join(f"{fmt_pct(s['share'])} at {fmt_customers(s['customers'])} customers"
                       for s in popularity["busiest_customer_share"])  # fmt: skip
    return (
        f"Customers were picked by popularity ({md_text(popularity['description'])}): a few large "
        "customers carry much of the traffic, so writes on one customer overlap as they do in "
        "production" + (f"; the busiest customer started {shares} of the actions" if shares else "")
        + ". The data-volume probe picked customers uniformly."
    )


def _capacity(card: dict[str, Any]) -> list[str]:
    c = card["capacity"]
    lines = ["## Capacity", ""]
    if c is None or c["predicted_customers"] is None:
        lines.append("Capacity could not be estimated from this run.")
        if c is not None and c["note"]:
            lines += ["", md_text(c["note"])]
        return [*lines, ""]
    band = ""
    if c["low"] is not None and c["high"] is not None:
        band = f" (likely between {fmt_customers(c['low'])} and {fmt_customers(c['high'])})"
    headroom = ""
    if c["headroom"] is not None:
        headroom = (
            f", {c['headroom']:.2f}x the {fmt_customers(c['goal_customers'])}-customer goal"
        )
    lines.append(f"Predicted capacity: **{fmt_customers(c['predicted_customers'])} customers**"
                 f"{band}{headroom}.")
    lines += ["", f"Method: {md_text(c['method'])} \u00b7 confidence: {md_text(c['confidence'])}."]
    if c["note"]:
        lines += ["", md_text(c["note"])]
    return [*lines, ""]


def _stages(card: dict[str, Any]) -> list[str]:
    reg = card["stages"]["regression"]
    props = card["stages"]["properties"]
    lines = ["## Checks before load", ""]
    if reg["status"] == "skipped":
        lines.append("- Regression gate: skipped.")
    else:
        lines.append(
            f"- Regression gate: {reg['status']} ({reg['passed']} passed, {reg['failed']} failed"
            + (f", {reg['errors']} errors" if reg["errors"] else "")
            + ")."
        )
        for f in reg["failures"][:10]:
            lines.append(f"  - {code_span(f['name'])}: {md_text(f['message'] or f['outcome'])}")
    if props["status"] == "skipped":
        lines.append("- Properties: skipped.")
    else:
        lines.append(f"- Properties: {props['status']} ({props['passed']} held, "
                     f"{len(props['falsified'])} falsified).")
        for f in props["falsified"]:
            lines.append(f"  - {code_span(f['name'])}: {md_text(f['error'])}")
            lines.append(f"    minimal example: {code_span(f['example'])}")
            lines.append(f"    reproduce: {code_span(f['reproduce'])}")
    checks = props.get("openapi")
    if checks is not None:
        lines.append(f"- Schemathesis on {code_span(checks['source'])}: {checks['status']} "
                     f"({checks['passed']} of {checks['operations']} operations passed, "
                     f"{checks['examples_per_operation']} examples each, seed {checks['seed']}).")  # fmt: skip
        if checks["note"]:
            lines.append(f"  - {md_text(checks['note'])}")
        for f in checks["failures"]:
            lines.append(f"  - {code_span(f['operation'])}: {md_text(', '.join(f['checks']) or f['title'])}")
            if f["curl"]:
                lines.append(f"    request: {code_span(f['curl'])}")
    return [*lines, ""]


def _findings(card: dict[str, Any]) -> list[str]:
    lines = ["## Findings", ""]
    if not card["findings"]:
        return [*lines, "None: nothing in this run needs attention.", ""]
    for n, f in enumerate(card["findings"], 1):
        where = []
        if f["tier"] is not None:
            where.append(f"{fmt_customers(f['tier'])} customers")
        if f["endpoint"]:
            where.append(md_text(f["endpoint"]))
        lines += [
            f"### {n}. {f['severity'].upper()}: {md_text(f['title'])}",
            "",
            f"Category: {md_text(f['category'])}"
            + "".join(f" \u00b7 {w}" for w in where)
            + f" \u00b7 id {code_span(f['id'])}"
            + (f" \u00b7 a symptom of {code_span(f['caused_by'])}" if f.get("caused_by") else ""),
            "",
        ]
        if f["detail"]:
            lines += [md_block(f["detail"]), ""]
        if f["evidence"]:
            lines += ["Evidence:", ""]
            lines += [f"- {md_text(k)}: {_evidence_value(v)}" for k, v in f["evidence"].items()]
            lines.append("")
        if f["reproduce"]:
            lines += [f"Reproduce: {code_span(f['reproduce'])}", ""]
    return lines


def _noise_floor(card: dict[str, Any]) -> list[str]:
    nf = card["noise_floor"]
    lines = ["## Noise floor", ""]
    if nf is None:
        lines.append("Not measured in this run: small latency differences may be the "
                     "harness's own.")
    else:
        lines.append(
            f"Against a null target answering in {fmt_ms(nf['server_service_ms'])} at "
            f"{fmt_rps(nf['offered_rps'])} req/s, the harness itself measured p50 "
            f"{fmt_ms(nf['p50_ms'])} and p99 {fmt_ms(nf['p99_ms'])}: about "
            f"{fmt_ms(nf['p99_overhead_ms'])} of any p99 here is the load generator, not the "
            f"target. Differences smaller than that are noise."
        )
    return [*lines, ""]


_HOW_TO_READ = """\
## How to read this

- **READY**: the regression gate and properties passed, every tier met its SLOs with valid \
measurements, no data was lost or leaked, and predicted capacity exceeds the goal with headroom.
- **AT RISK**: everything passed, but headroom is thin, a trend worsens with data volume, or \
latency regressed beyond noise against the baseline.
- **NOT READY**: a test, property, SLO or integrity check failed; the first failing tier is named.
- **INCONCLUSIVE**: something needed for a verdict was skipped or could not be measured validly \
(for example, the load generator itself was saturated). The harness never says READY on missing \
evidence.

Tiers are customer counts: each holds that many customers' data and their peak traffic as an \
open-model arrival rate. p95 and p99 mean 5 % and 1 % of requests were slower than that. Each \
finding ends with the command that reproduces it. The full data is in `scorecard.json`; charts \
and per-endpoint tables are in `report.html`.
"""


_METRIC_WORDS = {"service_p50": "median service time", "p95": "p95 latency"}


def change_line(c: dict[str, Any]) -> str:
    """One compared metric in a sentence: endpoint, tier, before -> after, interval, p-value."""
    low, high = (c.get("interval") or [None, None])[:2]
    interval = f", 95 % interval {low:+.0%} to {high:+.0%}" if low is not None and high is not None else ""
    noise = f"; noise {c['noise']:.0%} over {c.get('noise_runs', 0)} runs" if c.get("noise") is not None else ""
    return (f"{md_text(c['endpoint'])} at {c['tier']} customers, {_METRIC_WORDS.get(c['metric'], c['metric'])}: "
            f"{fmt_ms(c['before_ms'])} → {fmt_ms(c['after_ms'])} ({c['change']:+.0%}{interval}, "
            f"p = {c['p_value']:.2g}; threshold {c['threshold']:.0%}{noise})")  # fmt: skip


def baseline_section(card: dict[str, Any]) -> list[str]:
    """This run against the pack's baseline: regressions, improvements, or nothing beyond the noise."""
    b = card.get("baseline")
    if not b:
        return []
    which = "pinned baseline" if b.get("pinned") else "baseline (the last READY run of this profile)"
    commit = f" at commit {code_span(b['baseline_commit'][:12])}" if b.get("baseline_commit") else ""
    lines = ["## Against the baseline", "",
             f"Compared with the {which} {code_span(b['baseline_run_id'])}{commit}: {b['compared']} metrics "
             "(each endpoint's median service time and p95 at each tier both runs measured).", ""]  # fmt: skip
    if b.get("note"):
        lines += [md_text(b["note"]), ""]
    if b["regressions"]:
        lines += ["Slower beyond the noise (a `baseline-regression` finding each):", ""]
        lines += [f"- {change_line(c)}" for c in b["regressions"]] + [""]
    if b["improvements"]:
        lines += ["Faster beyond the noise:", ""]
        lines += [f"- {change_line(c)}" for c in b["improvements"]] + [""]
    if not b["regressions"] and not b["improvements"] and b["compared"]:
        lines += ["No metric changed by more than its noise (the larger of 10 % and the run-to-run noise).", ""]
    return lines


def change_point_line(c: dict[str, Any]) -> str:
    what = _METRIC_WORDS.get(c["metric"], c["metric"])
    where = "the whole run" if not c["tier"] else f"{c['tier']} customers"
    who = "" if c["endpoint"] == "*" else f"{md_text(c['endpoint'])}, "
    commits = ""
    if c.get("commit_before") or c.get("commit_after"):
        commits = f", commits {code_span(str(c.get('commit_before') or '?')[:12])}..{code_span(str(c.get('commit_after') or '?')[:12])}"
    unit = "" if c["metric"] == "capacity" else " ms"
    return (f"{who}{what} at {where}: {c['before']:.3g}{unit} → {c['after']:.3g}{unit} ({c['shift']:+.0%}, "
            f"p = {c['p_value']:.2g}) from run {code_span(c['run_id'])} (after {code_span(str(c.get('previous_run_id')))}{commits})")  # fmt: skip


def changes_section(card: dict[str, Any]) -> list[str]:
    points = card.get("change_points") or []
    if not points:
        return []
    return ["## Changes over the nightly series", "",
            "Where a metric moved and stayed moved across this pack's runs (E-divisive means, Apache Otava), newest first:", "",
            *[f"- {change_point_line(c)}" for c in points], ""]  # fmt: skip


def render_markdown_from_scorecard(card: dict[str, Any]) -> str:
    lines = [
        *_header(card),
        *_why(card),
        *tier_table(card),
        *_capacity(card),
        *_stages(card),
        *_findings(card),
        *baseline_section(card),
        *changes_section(card),
        *_noise_floor(card),
    ]
    if card["notes"]:
        lines += ["## Notes", "", *[f"- {md_text(n)}" for n in card["notes"]], ""]
    text = "\n".join(lines) + "\n" + _HOW_TO_READ
    return text


def render_markdown(record: AuditRecord) -> str:
    """The text of scorecard.md for ``record`` (deterministic: no clock, no environment)."""
    return render_markdown_from_scorecard(build_scorecard(record))
