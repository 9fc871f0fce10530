"""The pack API: one module, a curated list of names, and packs that use nothing else."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import harness.pack_api as pack_api

ROOT = Path(__file__).resolve().parents[1]

# Changing this list changes what every pack may rely on: do it deliberately, and say so in the
# README's pack reference.
EXPECTED = {
    "CustomerUser", "between", "constant", "tag", "task",
    "OpenApiUser", "openapi_service",
    "Api", "Attempt", "Operation", "Read", "Resource", "concurrent_write", "counter", "invariant", "isolation_reads", "listing", "public", "readback",
    "resource", "violation",
    "configured_target_url", "request_hooks", "request_timeout_s",
}  # fmt: skip


def test_the_pack_api_is_exactly_the_curated_list() -> None:
    assert set(pack_api.__all__) == EXPECTED
    assert len(pack_api.__all__) == len(EXPECTED)


def test_every_name_resolves() -> None:
    # In a child: the Locust names import Locust, which must never patch the test process.
    code = "import harness.pack_api as api; missing = [n for n in api.__all__ if getattr(api, n) is None]; assert not missing"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_an_unknown_name_says_what_the_api_is() -> None:
    with pytest.raises(AttributeError, match="the pack API is: CustomerUser"):
        pack_api.Nonexistent  # noqa: B018


def test_importing_it_for_invariants_or_provisioning_does_not_import_locust() -> None:
    code = (
        "import sys; from harness.pack_api import resource, readback, Read, Operation, violation; "
        "bad = {'locust', 'gevent'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def _harness_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("harness")}
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_bundled_packs_import_only_the_pack_api(path: Path) -> None:
    assert _harness_imports(path) <= {"harness.pack_api"}
