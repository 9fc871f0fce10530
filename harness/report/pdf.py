"""report.pdf: report.html printed to A4 by headless Chromium.

The HTML carries its own print layout (``@page``: A4, page numbers in the margin, a page break
before each section, charts kept whole), so printing is Chromium's ``--print-to-pdf`` of the file
as it is, with Chromium's own header and footer (date, file path) turned off. Chromium runs with
a fresh profile in a temporary folder and with every background service off: it opens one local
file and fetches nothing (the report's Content-Security-Policy forbids it too).

Chromium is found as ``$SCALEREADY_CHROMIUM``, else ``chromium``, ``chromium-browser``,
``google-chrome`` or ``google-chrome-stable`` on the PATH. When none is there, :func:`find_chromium`
raises :class:`ChromiumNotFound` (a configuration error, exit 2) saying how to install it; the
CLI asks before an audit starts, so ``audit --pdf`` fails in a second, not after an hour.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from harness.errors import ConfigError, HarnessError

__all__ = ["CHROMIUM_ENV", "ChromiumNotFound", "PdfError", "find_chromium", "print_pdf"]

CHROMIUM_ENV = "SCALEREADY_CHROMIUM"
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
    "--no-pdf-header-footer", "--generate-pdf-document-outline",
)  # fmt: skip


class ChromiumNotFound(ConfigError):
    """No headless Chromium to print the PDF with."""


class PdfError(HarnessError):
    """Chromium ran but did not produce a PDF."""


def find_chromium() -> str:
    """The Chromium executable to print with; :class:`ChromiumNotFound` when there is none."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        if Path(configured).is_file() and os.access(configured, os.X_OK):
            return configured
        raise ChromiumNotFound(
            f"{CHROMIUM_ENV}={configured}: no executable there; point it at chromium or unset it"
        )
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise ChromiumNotFound(
        "--pdf needs headless Chromium, and none is installed (looked for "
        f"{', '.join(_CANDIDATES)}): install it with `apt-get install chromium` (or `make browser`), "
        f"or set {CHROMIUM_ENV} to its path"
    )


def print_pdf(html: Path, pdf: Path, *, chromium: str | None = None, timeout_s: float = 180.0) -> Path:
    """Print ``html`` to ``pdf`` (written atomically) and return ``pdf``."""
    executable = chromium or find_chromium()
    html, pdf = Path(html).resolve(), Path(pdf)
    partial = pdf.with_name(f".{pdf.name}.printing")
    with tempfile.TemporaryDirectory(prefix="scaleready-chromium-") as profile:
        args = [executable, *_FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={partial}", html.as_uri()]
        started = time.monotonic()
        try:
            result = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            partial.unlink(missing_ok=True)
            raise PdfError(f"Chromium did not print {html.name} within {timeout_s:.0f} s; "
                           "try again, or open report.html and print it from a browser") from None  # fmt: skip
    if result.returncode != 0 or not partial.is_file() or partial.read_bytes()[:5] != b"%PDF-":
        partial.unlink(missing_ok=True)
        tail = " ".join(result.stderr.split()[-40:])
        raise PdfError(f"Chromium ({executable}) exited {result.returncode} after "
                       f"{time.monotonic() - started:.1f} s without printing {html.name}: {tail}")  # fmt: skip
    os.replace(partial, pdf)
    return pdf
