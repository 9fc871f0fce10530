"""Headless Chromium from Debian's packages, as the report's browser tests open a page."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Open ``page`` from disk, as a user opens a run folder's report, with ``extra`` switches
    (``--dump-dom``, ``--screenshot=...``); skips the test where Chromium is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=3000", "--window-size=1280,2400", *extra, page.as_uri(),
    ]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=90, check=False)
