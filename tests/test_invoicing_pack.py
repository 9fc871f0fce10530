"""The second pack of another domain (tests/invoicing): its service and suites, end to end.

tests/invoicing is a pack like scenarios/booking, for a small invoicing service whose customers
are companies, with what the booking demo does not have: bearer tokens that expire, a public feed
every company reads, and a shared work queue (a job one company submits is done by another's
worker, and its receipt belongs to the submitter).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

INVOICING_PACK = Path(__file__).resolve().parent / "invoicing"


def test_the_pack_suites_pass_against_its_own_service() -> None:
    """The pack's conftest starts the service; its tests and properties pass on it."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q"], cwd=INVOICING_PACK,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
