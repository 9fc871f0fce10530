"""harness.suites: the regression gate and the properties stage, each in a child pytest.

Each case writes a tiny suite into a temporary folder and runs it the way an audit does (a real
child process with the harness plugin), against no target: the tests need none.
"""

from __future__ import annotations

from pathlib import Path

from harness.suites import run_properties

FAILING_PROPERTIES = '''
from hypothesis import example, given, strategies as st

@given(count=st.integers(min_value=0), name=st.text())
def test_count_stays_under_ten(count, name):
    assert count < 10, f"count {count} is ten or more"

@given(word=st.text())
@example(word="boom")
def test_never_boom(word):
    assert word != "boom", "boom is not allowed"

@given(n=st.integers())
def test_holds(n):
    assert isinstance(n, int)
'''

def _suite(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "test_suite.py").write_text(source, encoding="utf-8")
    return folder


def test_a_falsified_property_carries_the_failing_call_hypothesis_reported(tmp_path: Path) -> None:
    folder = _suite(tmp_path, FAILING_PROPERTIES)
    result = run_properties(
        folder,
        rootdir=tmp_path,
        run_dir=tmp_path / "run",
        env={},
        examples=50,
        timeout_s=120,
        reproduce_prefix="scaleready audit pack --stage properties",
    )
    assert (result.status, result.passed, result.failed) == ("failed", 1, 2)
    by_name = {fp.name.split("::")[-1]: fp for fp in result.falsified}
    shrunk = by_name["test_count_stays_under_ten"]
    assert shrunk.example.startswith("test_count_stays_under_ten(")
    assert "count=10," in shrunk.example
    assert shrunk.error == "AssertionError: count 10 is ten or more"
    assert shrunk.reproduce.endswith("-k test_count_stays_under_ten")
    explicit = by_name["test_never_boom"]
    assert "word='boom'" in explicit.example

