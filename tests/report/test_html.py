"""report.html: self-contained, deterministic, and nothing from the target can run in it."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html.parser import HTMLParser

from harness.report import build_scorecard
from harness.report.charts import all_charts, tier_charts
from harness.report.html import inline_svg, render_html, render_html_from_scorecard
from tests.factories import (
    audit_record,
    endpoint,
    error_sample,
    falsified_property,
    finding,
    full_audit_record,
    integrity_result,
    phase,
    properties_result,
    tier,
    violation,
)

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(document.domain)>'
PAYLOAD = f"{SCRIPT} {IMG}"


class Elements(HTMLParser):
    """Every element and attribute the browser would build from the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Elements:
    p = Elements()
    p.feed(html)
    p.close()
    return p


def hostile_record() -> object:
    """Target-controlled text everywhere a report shows text."""
    ep = endpoint(f"GET /x{PAYLOAD}", errors=3)
    steady = replace(phase(endpoints=[ep]), error_samples=(error_sample(ep.name, body=PAYLOAD),))
    t = replace(tier(500, steady=steady, status="failed", reason=PAYLOAD),
                integrity=integrity_result([violation(customer=PAYLOAD, detail=PAYLOAD)]))
    return audit_record(
        [t],
        findings=[finding(title=PAYLOAD, detail=PAYLOAD, evidence={PAYLOAD: PAYLOAD},
                          reproduce=PAYLOAD, endpoint=ep.name, tier=500, id=PAYLOAD)],
        properties=properties_result(falsified=[falsified_property(PAYLOAD, example=PAYLOAD,
                                                                   error=PAYLOAD)]),
        verdict="NOT READY",
        notes=[PAYLOAD],
        pack=PAYLOAD,
    )


def test_text_from_the_target_appears_only_escaped() -> None:
    html = render_html(hostile_record())  # type: ignore[arg-type]
    assert SCRIPT not in html and "<img" not in html and IMG not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(document.domain)&gt;" in html
    page = parse(html)
    tags = {tag for tag, _ in page.tags}
    assert "script" not in tags and "img" not in tags and "iframe" not in tags
    for tag, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
    # and the text still reads as the target sent it
    assert any(SCRIPT in t for t in page.text)


def test_a_content_security_policy_forbids_scripts_and_fetches() -> None:
    html = render_html(full_audit_record())
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp is not None and "default-src 'none'" in csp.group(1)
    assert "script-src" not in csp.group(1)  # falls back to 'none'


def test_the_page_is_self_contained() -> None:
    html = render_html(full_audit_record("NOT READY"))
    for tag, attrs in parse(html).tags:
        for name in ("src", "href", "xlink:href", "action", "data"):
            value = (attrs.get(name) or "").strip()
            assert not re.match(r"(?i)(https?:)?//", value), (tag, name, value)
            assert not value.lower().startswith("javascript:")
    assert "<link" not in html and "@import" not in html
    assert re.search(r"url\((?!#)", html) is None  # only references inside the page: url(#clip)


def test_the_verdict_and_every_section_are_shown() -> None:
    html = render_html(full_audit_record("NOT READY"))
    assert '<span class="word">NOT READY</span>' in html
    assert "fails at 5000 customers: GET /slots p99 is 912 ms against a 300 ms SLO" in html
    # the charts now sit in the sections they illustrate (the old "Charts" section is gone)
    for section in ('id="summary"', 'id="recommendations"', 'id="tiers"', 'id="capacity"',
                    'id="data-volume"', 'id="resources"', 'id="findings"', 'id="stages"',
                    'id="tier-details"', 'id="environment"', 'id="method"', 'id="noise"', 'id="how"',
                    'id="tier-50"', 'id="tier-5000"', 'id="chart-throughput"', 'id="chart-usl"'):
        assert section in html
    assert "Stress steps" in html and "stress x1.5" in html
    assert "Load generator health" in html and "Integrity" in html
    assert "GET /bookings/{id}" in html  # per-endpoint tables
    assert "scaleready run --only tier:500" in html  # reproduce command


def test_a_partial_run_shows_a_banner() -> None:
    assert 'id="partial-banner"' in render_html(full_audit_record(partial=True))
    assert 'id="partial-banner"' not in render_html(full_audit_record())


def test_the_charts_are_inlined_as_svg() -> None:
    record = full_audit_record("NOT READY")
    html = render_html(record)
    card = build_scorecard(record)
    charts = all_charts(card) + [c for t in record.tiers for c in tier_charts(card, t.customers)]
    assert html.count('<figure id="chart-') == len(charts)
    assert html.count("<svg") >= len(charts)
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html


def test_rendering_is_deterministic() -> None:
    assert render_html(full_audit_record("AT RISK")) == render_html(full_audit_record("AT RISK"))


def test_an_svg_with_active_content_is_left_out() -> None:
    good = '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0"/></svg>'
    assert str(inline_svg(good)).startswith("<svg")
    for bad in ('<svg><script>alert(1)</script></svg>', '<svg onload="alert(1)"></svg>',
                '<svg><image href="https://evil.example/x.png"/></svg>',
                '<svg><a xlink:href="javascript:alert(1)">x</a></svg>'):
        assert inline_svg(bad) is None, bad


def test_a_report_redrawn_from_its_scorecard_json_is_the_same_report() -> None:
    # `scaleready report RUN` redraws from scorecard.json alone: for a run of this version it
    # must give the bytes the audit wrote.
    for verdict in ("READY", "NOT READY", "INCONCLUSIVE"):
        record = full_audit_record(verdict)  # type: ignore[arg-type]
        stored = json.loads(json.dumps(build_scorecard(record), allow_nan=False))
        assert render_html_from_scorecard(stored) == render_html(record), verdict


def test_an_older_scorecard_without_the_newer_fields_still_renders() -> None:
    card = build_scorecard(full_audit_record("NOT READY"))
    card.pop("environment")
    del card["target"]["command"]
    for t in card["tiers"]:
        for key in ("slo_checks", "resources", "completed_ips", "concurrency"):
            del t[key]
        for s in t["stress"]:
            for key in ("p95_ms", "completed_ips", "concurrency", "start", "end"):
                del s[key]
    card["options"].pop("slo")
    html = render_html_from_scorecard(card)
    assert '<span class="word">NOT READY</span>' in html
    assert html.count("predates the record of which percentiles were judged") == 2  # 50 and 500 passed
    assert "this run did not record its host" in html
    assert 'id="chart-throughput"' in html and 'id="chart-resources"' not in html


def test_the_first_page_says_the_verdict_in_plain_words_and_what_to_do() -> None:
    html = render_html(full_audit_record("AT RISK"))
    page = parse(html)
    text = " ".join(" ".join(page.text).split())
    assert "we recommend fixing the slowdown of GET /slots as data grows before launch." in text
    assert 'id="capacity-bar"' in html and "goal: 5,000 customers" in text
    assert "What teams do:" in text and "effort: small (usually hours)" in text


def test_a_tier_that_passed_on_too_few_requests_is_not_shown_as_passed() -> None:
    html = render_html(full_audit_record())
    table = html[html.index('id="tier-table"'):html.index("</table>", html.index('id="tier-table"'))]
    # 50 customers: p95s judged, no p99 (too few requests); 500 and 5000: both
    assert table.count("partly judged") == 1 and table.count(">passed<") == 2
    assert "p95 3/3 · p99 0/3" in table
