"""A malformed pack: exit 2 and one message naming the file, the key or line, and the fix."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.robustness.faultpack import make_pack, run_audit


def edit(path: str, old: str, new: str) -> Callable[[Path], None]:
    def apply(pack: Path) -> None:
        text = (pack / path).read_text()
        assert old in text, (path, old)
        (pack / path).write_text(text.replace(old, new, 1))

    return apply


def rename(old: str, new: str) -> Callable[[Path], None]:
    return lambda pack: (pack / old).rename(pack / new)


CASES = {
    # case: (how to break the pack, what the message must say)
    "toml-syntax": (edit("scenario.toml", "tiers = [3, 6]", "tiers = [3, 6"),
                    [r"scenario\.toml: TOML syntax error", r"line \d+", r"fix the line"]),
    "unknown-key": (edit("scenario.toml", "request_timeout_s =", "request_timout_s ="),
                    [r"scenario\.toml", r"line \d+", r"unknown key 'target\.request_timout_s'",
                     r"did you mean 'request_timeout_s'"]),
    "wrong-type": (edit("scenario.toml", "peak_rps_per_customer = 2", 'peak_rps_per_customer = "lots"'),
                   [r"scenario\.toml", r"line \d+", r"customers\.peak_rps_per_customer",
                    r"valid number", r"got 'lots'"]),
    "tiers-not-increasing": (edit("scenario.toml", "tiers = [3, 6]", "tiers = [6, 3]"),
                             [r"scenario\.toml", r"line 1", r"tiers must increase; write \[3, 6\]"]),
    "missing-file": (rename("locustfile.py", "locustfiles.py"),
                     [r"scenario\.toml", r"customers\.locustfile = 'locustfile\.py'",
                      r"no such file", r"did you mean 'locustfiles\.py'"]),
    "module-raises": (edit("provision.py", "import httpx", "import httpx\nraise RuntimeError('no config')"),
                      [r"provision\.py: raised RuntimeError on import at line 3", r"no config",
                       r"fix the module"]),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_malformed_pack_exits_2_with_one_clear_message_and_no_traceback(tmp_path: Path, case: str) -> None:
    breaker, expected = CASES[case]
    pack = make_pack(tmp_path / "pack", "ok")
    breaker(pack)
    run = run_audit(pack, tmp_path / "reports", timeout_s=30)

    assert run.code == 2, run.output[-3000:]
    assert "Traceback" not in run.output
    message = run.stderr.strip()
    assert "\n" not in message, message
    assert message.startswith("scaleready: ") and message.count("scaleready: ") == 1, message
    for pattern in expected:
        assert re.search(pattern, message), (pattern, message)
    assert not any((tmp_path / "reports").glob("*/")), "no run folder for a pack that never ran"


def test_debug_shows_the_traceback_of_a_pack_error(tmp_path: Path) -> None:
    pack = make_pack(tmp_path / "pack", "ok")
    edit("scenario.toml", "tiers = [3, 6]", "tiers = [6, 3]")(pack)
    run = run_audit(pack, tmp_path / "reports", "--debug", timeout_s=30)
    assert run.code == 2
    assert "Traceback" in run.stderr and "ConfigError" in run.stderr
