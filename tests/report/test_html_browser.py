"""report.html in a real browser (headless Chromium from Debian's packages).

The HTML is opened from disk, as a user would open it from a run folder. Chromium builds the DOM
(``--dump-dom``) and draws the page (``--screenshot``); the test checks that the verdict is there,
that nothing the target sent became an element or ran, and that the page asked for nothing
from the network.
"""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.report.html import render_html
from tests.browser import chromium
from tests.factories import endpoint, error_sample, finding, full_audit_record, phase, tier

pytestmark = pytest.mark.browser

PAYLOAD = '<script>document.title="PWNED"</script>"><img src=x onerror="document.title=\'PWNED\'">'


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


@pytest.fixture
def report(tmp_path: Path) -> Path:
    ep = endpoint(f"GET /x{PAYLOAD}", errors=2)
    record = full_audit_record("NOT READY", partial=True)
    hostile = replace(tier(5000, steady=replace(phase(endpoints=[ep]),
                                                  error_samples=(error_sample(body=PAYLOAD),))),
                      status="failed", reason=PAYLOAD)
    record = replace(
        record,
        tiers=(*record.tiers[:2], hostile),
        findings=(finding(title=PAYLOAD, detail=PAYLOAD, tier=5000, endpoint=ep.name),
                  *record.findings),
    )
    path = tmp_path / "report.html"
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
