"""harness.suites: the regression gate and the properties stage, each in a child pytest.

Each case writes a tiny suite into a temporary folder and runs it the way an audit does (a real
child process with the harness plugin), against no target: the tests need none.
"""

from __future__ import annotations

from pathlib import Path

from harness.suites import run_properties, run_regression_gate

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

FAILING_GATE = '''
def test_total():
    parts = [3] * 20
    assert sum(parts) == 61, "the total of the parts should be 61"

def test_bare():
    values = [1, 2]
    assert len(values) == 3
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



def test_a_failed_regression_test_is_summed_up_by_its_assertion_message(tmp_path: Path) -> None:
    folder = _suite(tmp_path, FAILING_GATE)
    gate = run_regression_gate(
        folder, rootdir=tmp_path, run_dir=tmp_path / "run", env={}, timeout_s=120
    )
    assert (gate.status, gate.failed) == ("failed", 2)
    headlines = {case.name.split("::")[-1]: case.headline for case in gate.cases}
    # The message the test's author wrote, else the comparison: never "+ where ..." nor the
    # traceback's "file.py:4: AssertionError".
    assert headlines == {
        "test_total": "AssertionError: the total of the parts should be 61",
        "test_bare": "assert 2 == 3",
    }
