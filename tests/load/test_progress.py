"""The engine child's progress line: what it writes is what the parent reads, and whatever else
appears on its stdout (a locustfile's print) is skipped rather than passed on as progress."""

from __future__ import annotations

import contextlib
import io

import pytest

from harness.load.progress import LoadProgress, print_progress


def test_a_progress_line_reads_back_as_what_the_engine_reported() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_progress("stress x2", 3.14159, 10.0, 412.37, 5, 48, 2)
    line = out.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert LoadProgress.from_line(line.strip()) == LoadProgress(
        phase="stress x2", elapsed=3.14, duration=10.0, rps=412.4, errors=5, users=48, dropped=2
    )


@pytest.mark.parametrize("line", ["", "hello from the locustfile", "[1, 2]", '{"phase": "steady"}',
                                  '{"phase": "steady", "elapsed": 1, "duration": 5, "rps": 3, "errors": 0, '
                                  '"users": 4, "dropped": 0, "extra": 1}'])  # fmt: skip
def test_a_line_that_is_not_progress_is_skipped(line: str) -> None:
    assert LoadProgress.from_line(line) is None

