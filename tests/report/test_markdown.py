"""scorecard.md: what a manager reads and the README quotes."""

from __future__ import annotations

import re
from dataclasses import replace

from harness.records import OverlapProbeResult, Popularity
from harness.report.markdown import code_span, md_text, render_markdown
from tests.factories import (
    audit_record,
    error_sample,
    finding,
    full_audit_record,
    phase,
    tier,
)

XSS = '<script>alert(1)</script> "><img src=x onerror=alert(2)>'


def section(md: str, title: str) -> str:
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_it_starts_with_the_verdict_line() -> None:
    md = render_markdown(full_audit_record("READY"))
    assert md.splitlines()[0] == "**Verdict: READY** \u2014 ready up to 5000 customers"


def test_not_ready_names_the_first_failing_tier_and_why_on_the_first_line() -> None:
    md = render_markdown(full_audit_record("NOT READY"))
    assert md.splitlines()[0] == (
        "**Verdict: NOT READY** \u2014 fails at 5000 customers: "
        "GET /slots p99 is 912 ms against a 300 ms SLO"
    )
    assert "- GET /slots is too slow at 5000 customers" in section(md, "Why")


def test_the_tier_table_has_rates_percentiles_errors_and_status() -> None:
    md = render_markdown(full_audit_record("NOT READY"))
    table = section(md, "Tiers")
    assert "| Customers | Arrivals/s | Achieved req/s | p95 | p99 | Errors | Status |" in table
    rows = [line for line in table.splitlines() if re.match(r"\| \d", line)]
    assert [r.split("|")[1].strip() for r in rows] == ["50", "500", "5000"]
    assert rows[0].endswith("| passed |") and rows[2].endswith("| FAILED |")
    assert "| 2,000.0 |" in rows[2]  # offered req/s
    assert "1 (" in rows[0]  # errors with their rate


def test_capacity_shows_prediction_band_headroom_method_and_confidence() -> None:
    cap = section(render_markdown(full_audit_record()), "Capacity")
    assert "Predicted capacity: **8200 customers** (likely between 6150 and 11070), " \
           "1.64x the 5000-customer goal." in cap
    assert "Method: usl \u00b7 confidence: medium." in cap


def test_findings_are_ordered_by_severity_with_detail_evidence_and_reproduce_command() -> None:
    fs = [
        finding("resource-leak", severity="low", title="Memory grows slowly", id="low-1"),
        finding(severity="critical", title="Bookings are lost", detail="3 writes vanished.",
                evidence={"lost": 3, "ids": ["b-1", "b-2"]}, reproduce="scaleready run --only tier:500",
                id="crit-1"),
    ]
    md = render_markdown(audit_record(findings=fs, verdict="NOT READY"))
    text = section(md, "Findings")
    assert text.index("CRITICAL: Bookings are lost") < text.index("LOW: Memory grows slowly")
    assert "3 writes vanished." in text
    assert "- lost: 3" in text
    assert '- ids: `["b-1", "b-2"]`' in text
    assert "Reproduce: `scaleready run --only tier:500`" in text


def test_noise_floor_and_how_to_read_are_there() -> None:
    md = render_markdown(full_audit_record())
    assert "the harness itself measured p50 1.10 ms and p99 2.50 ms" in section(md, "Noise floor")
    assert "**INCONCLUSIVE**" in section(md, "How to read this")


def test_a_partial_run_says_so_right_under_the_verdict() -> None:
    md = render_markdown(full_audit_record(partial=True))
    assert md.splitlines()[2].startswith("> **PARTIAL RUN:**")
    assert "PARTIAL" not in render_markdown(full_audit_record())


def test_text_from_the_target_cannot_become_html_or_markup() -> None:
    t = tier(50, steady=replace(phase(), error_samples=(error_sample(body=XSS),)))
    record = audit_record(
        [replace(t, status="failed", reason=XSS)],
        findings=[finding(title=XSS, detail=XSS + "\n- not a list", endpoint="GET /a|b",
                          evidence={XSS: XSS}, reproduce="run `x`")],
        verdict="NOT READY",
        notes=[XSS],
    )
    md = render_markdown(record)
    assert re.search(r"(?<!\\)<", md) is None  # every "<" is escaped: no HTML at all
    assert "\\<script\\>alert(1)\\</script\\>" in md
    assert "GET /a\\|b" in md  # cannot break a table
    assert "\n- not a list" not in md and "\\- not a list" in md
    assert "Reproduce: `` run `x` ``" in md


def test_md_text_keeps_ordinary_identifiers_readable() -> None:
    assert md_text("GET /slots_by_day") == "GET /slots_by_day"
    assert md_text("_emphasis_ *bold* [link](x)") == "\\_emphasis\\_ \\*bold\\* \\[link\\](x)"
    assert md_text("two\nlines") == "two lines"


def test_code_span_survives_backticks() -> None:
    assert code_span("plain") == "`plain`"
    assert code_span("a`b") == "``a`b``"
    assert code_span("`x`") == "`` `x` ``"


def test_rendering_is_deterministic() -> None:
    assert render_markdown(full_audit_record("AT RISK")) == render_markdown(full_audit_record("AT RISK"))


def test_the_report_says_how_the_load_picked_its_customers() -> None:
    skewed = section(render_markdown(full_audit_record(popularity=Popularity("zipf", 1.0))), "Tiers")
    assert "picked by popularity (Zipf, exponent 1)" in skewed
    assert "busiest customer started 22.23% at 50 customers, 14.72% at 500" in skewed.replace(" %", "%")
    assert "data-volume probe picked customers uniformly" in skewed
    uniform = section(render_markdown(full_audit_record(popularity=Popularity())), "Tiers")
    assert "picked uniformly at random" in uniform


def test_the_report_says_what_the_overlap_probe_sent() -> None:
    probe = OverlapProbeResult(rounds=4, concurrency=16, customers=(0, 1, 2, 3), writes=64, acknowledged=60,
                               refused=4, unknown=0, duration_s=0.52)  # fmt: skip
    record = full_audit_record()
    record = replace(record, tiers=tuple(replace(t, overlap=probe) for t in record.tiers))
    tiers = section(render_markdown(record), "Tiers")
    assert "Overlap probe: after each tier's load, 16 writes at once for one customer, 4 rounds" in tiers
    assert "50 customers: 64 writes (60 acknowledged, 4 refused, 0 unknown) in 0.52 s" in tiers
