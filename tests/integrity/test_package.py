"""harness.integrity's import contracts: the pure modules and the load's modules stay light.

Each module is imported in a fresh interpreter, so what an earlier test imported cannot hide
what the module pulls in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def modules_loaded_by(module: str, watched: tuple[str, ...]) -> list[str]:
    script = (
        f"import importlib, json, sys; importlib.import_module({module!r}); "
        f"print(json.dumps(sorted(m for m in {list(watched)!r} if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


@pytest.mark.parametrize("module", ["harness.integrity.declare", "harness.integrity.evaluate"])
def test_declaring_and_evaluating_need_no_http_client(module: str) -> None:
    assert modules_loaded_by(module, ("httpx",)) == []


@pytest.mark.parametrize("module", ["harness.integrity.ledger", "harness.integrity.markers"])
def test_what_the_load_processes_import_loads_no_locust_http_client_or_pack_loader(
    module: str,
) -> None:
    assert modules_loaded_by(module, ("locust", "gevent", "httpx", "harness.pack")) == []
