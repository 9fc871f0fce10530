"""The harness's own process never imports Locust or gevent: Locust monkey-patches the process
with gevent on import, which would change how every thread and socket of the audit behaves. Only
the engine child (``python -m harness.load.engine``) and locustfiles import them.

Checked in a fresh interpreter, so that what this test process has imported does not count.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

PARENT_SIDE = [
    "harness.load",
    "harness.load.plan",
    "harness.load.stage",
    "harness.load.progress",
    "harness.load.result_file",
    "harness.load.results",
    "harness.load.tally",
    "harness.load.phases",
    "harness.load.recording",
    "harness.load.machine",
    "harness.load.noise_floor",
    "harness.tiers",
    "harness.audit",
    "harness.cli",
]

CHECK = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
found = sorted(m for m in sys.modules if m.split(".")[0] in ("locust", "gevent", "greenlet"))
print(" ".join(found))
"""


def imported_after(*modules: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", CHECK, *modules], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_the_parent_side_of_the_load_stage_imports_no_locust_and_no_gevent() -> None:
    assert imported_after(*PARENT_SIDE) == []


@pytest.mark.parametrize("module", ["harness.load.engine", "harness.load.kit"])
def test_the_child_side_does_import_them_so_the_check_above_can_fail(module: str) -> None:
    found = imported_after(module)
    assert "locust" in found and "gevent" in found
