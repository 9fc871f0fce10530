"""report.html in a real browser (headless Chromium from Debian's packages), and report.pdf.

The HTML is opened from disk, as a user would open it from a run folder. Chromium builds the DOM
(``--dump-dom``) and draws the page (``--screenshot``); the test checks that the verdict is there,
that nothing the target sent became an element or ran, and that the page asked for nothing
from the network. Over the DevTools protocol it also checks what a reader sees: no console error,
nothing wider than the page (on screen and at A4's printed width), every chart with a title and
labelled axes. The PDF is printed as ``scaleready report --pdf`` prints it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.report.html import render_html
from harness.report.pdf import print_pdf
from tests.browser import CHROMIUM, DevToolsPage, chromium
from tests.factories import endpoint, error_sample, finding, full_audit_record, phase, tier

pytestmark = pytest.mark.browser

PAYLOAD = '<script>document.title="PWNED"</script>"><img src=x onerror="document.title=\'PWNED\'">'
UNBROKEN = "x" * 300  # a target's long unbroken text: an id, a token, a URL


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ep = endpoint(f"GET /x{PAYLOAD}{UNBROKEN}", errors=2)
    record = full_audit_record("NOT READY", partial=True)
    hostile = replace(tier(5000, steady=replace(phase(endpoints=[ep]),
                                                  error_samples=(error_sample(body=PAYLOAD + UNBROKEN),))),
                      status="failed", reason=PAYLOAD)
    record = replace(
        record,
        tiers=(*record.tiers[:2], hostile),
        findings=(finding(title=PAYLOAD, detail=PAYLOAD + UNBROKEN, tier=5000, endpoint=ep.name,
                          evidence={"body": PAYLOAD + UNBROKEN}),
                  *record.findings),
    )  # fmt: skip
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html(record), encoding="utf-8")
    return path


def test_the_report_renders_in_chromium_with_nothing_injected(tmp_path: Path, report: Path) -> None:
    result = chromium(tmp_path, report, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "NOT READY" in dom and "PARTIAL RUN" in dom
    assert "<title>NOT READY" in dom  # a script that ran would have renamed the page "PWNED"
    assert "PWNED" in dom  # ... while the payload is still shown, as text
    parser = Elements()
    parser.feed(dom)
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags and "img" not in tags
    for tag, attrs in parser.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not re.match(r"(?i)(https?:)?//", value), (tag, value)


def test_the_report_draws(tmp_path: Path, report: Path) -> None:
    shot = tmp_path / "report.png"
    result = chromium(tmp_path, report, f"--screenshot={shot}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 20_000  # a drawn page, not a blank one
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


WIDER_THAN_THE_PAGE = """[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .map(e => e.tagName + (e.id ? '#' + e.id : '') + ' ' + Math.round(e.getBoundingClientRect().right))"""

CHARTS = """[...document.querySelectorAll('figure.chart')].map(f => ({
  id: f.id,
  svg: !!f.querySelector('svg'),
  title: (f.querySelector('svg [id$="-title"]') || {}).textContent || '',
  xlabels: [...f.querySelectorAll('svg [id*="-xlabel-"]')].map(e => e.textContent.trim()),
  ylabels: [...f.querySelectorAll('svg [id*="-ylabel-"]')].map(e => e.textContent.trim()),
  axes: f.querySelectorAll('svg g[id*="-axes_"]').length,
  caption: (f.querySelector('figcaption') || {}).textContent || '',
}))"""


def test_in_the_browser_no_console_error_nothing_wider_than_the_page_and_every_chart_labelled(
    tmp_path: Path, report: Path
) -> None:
    with DevToolsPage(tmp_path, report, width=1280) as page:
        assert page.console_errors() == []
        assert page.evaluate("document.title").startswith("NOT READY")  # nothing ran
        assert page.evaluate(WIDER_THAN_THE_PAGE) == []
        charts = page.evaluate(CHARTS)
        assert isinstance(charts, list) and len(charts) >= 7  # 5 audit-wide and one per tier
        for chart in charts:
            assert chart["svg"] and chart["title"].strip() and chart["caption"].strip(), chart
            assert chart["xlabels"] and all(chart["xlabels"]), chart
            assert len(chart["ylabels"]) == chart["axes"] and all(chart["ylabels"]), chart
        # at A4's printed width (210 mm less the margins, about 690 CSS pixels)
        page.call("Emulation.setEmulatedMedia", media="print")
        page.call("Emulation.setDeviceMetricsOverride", width=690, height=1000, deviceScaleFactor=1, mobile=False)
        assert page.evaluate(WIDER_THAN_THE_PAGE) == []
        assert page.console_errors() == []


def test_the_pdf_is_a4_with_page_numbers_and_a_page_per_section(tmp_path: Path, report: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")
    pdf = print_pdf(report, tmp_path / "report.pdf", chromium=CHROMIUM)
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-"
    sizes = set(re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", data))
    assert sizes and all(abs(float(w) - 595) < 2 and abs(float(h) - 842) < 2 for w, h in sizes), sizes  # A4
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed: page numbers not checked")
    pages = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout.split("\f")[:-1]  # fmt: skip
    total = len(pages)
    assert total >= 10
    for number, text in enumerate(pages, 1):
        assert f"Page {number} of {total}" in text, number
    # each section starts a page: its heading is the first line of a page
    starts = [" ".join(text.split())[:60] for text in pages]
    for heading in ("Recommendations", "Verdict and tiers", "Capacity", "Findings", "Environment",
                    "Appendix: method and glossary"):
        assert any(s.startswith(heading) for s in starts), heading
    assert starts[0].startswith("Scale-readiness audit")
