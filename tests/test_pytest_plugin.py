"""harness.pytest_plugin: the target option and fixtures, and the Hypothesis profile.

Each case runs pytest in-process on a tiny generated suite (a child process costs seconds).
The plugin changes Hypothesis's process-wide state (the loaded profile, a forced seed, the
storage folder); `restore_hypothesis` puts it back so it cannot leak into this session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import configuration, core, settings

pytest_plugins = ["pytester"]

PLUGIN = ("-p", "harness.pytest_plugin", "-p", "no:cacheprovider")
ENV_VARS = (
    "SCALEREADY_TARGET_URL",
    "SCALEREADY_REQUEST_TIMEOUT_S",
    "SCALEREADY_HYPOTHESIS_MAX_EXAMPLES",
    "SCALEREADY_SEED",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def restore_hypothesis() -> Iterator[None]:
    profile = settings.get_current_profile_name()
    seed = core.global_force_seed
    home = configuration.storage_directory(intent_to_write=False).home_directory
    yield
    settings.load_profile(profile)
    core.global_force_seed = seed
    configuration.set_hypothesis_home_dir(home)


TARGET_TESTS = """
def test_url(target_url):
    print("URL=" + target_url)

def test_client(http):
    print("BASE=" + str(http.base_url))
    print("TIMEOUT=" + str(http.timeout.read))
"""


def test_target_url_comes_from_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TARGET_TESTS)
    result = pytester.runpytest(*PLUGIN, "-s", "--target-url=http://127.0.0.1:8123/")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*URL=http://127.0.0.1:8123", "*BASE=http://127.0.0.1:8123*"])
    result.stdout.fnmatch_lines(["scaleready: target http://127.0.0.1:8123", "*TIMEOUT=10.0"])


def test_target_url_and_timeout_come_from_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALEREADY_TARGET_URL", "http://127.0.0.1:9001")
    monkeypatch.setenv("SCALEREADY_REQUEST_TIMEOUT_S", "2.5")
    pytester.makepyfile(TARGET_TESTS)
    result = pytester.runpytest(*PLUGIN, "-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*URL=http://127.0.0.1:9001", "*TIMEOUT=2.5"])


def test_the_option_wins_over_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALEREADY_TARGET_URL", "http://127.0.0.1:9001")
    pytester.makepyfile(TARGET_TESTS)
    result = pytester.runpytest(*PLUGIN, "-s", "--target-url", "http://127.0.0.1:9002")
    result.stdout.fnmatch_lines(["*URL=http://127.0.0.1:9002"])


def test_without_a_target_tests_error_with_how_to_pass_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TARGET_TESTS)
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*No target URL configured: pass --target-url=http://127.0.0.1:PORT or set"
         " SCALEREADY_TARGET_URL.*"]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SCALEREADY_REQUEST_TIMEOUT_S", "soon", "*SCALEREADY_REQUEST_TIMEOUT_S='soon'*positive*"),
        ("SCALEREADY_REQUEST_TIMEOUT_S", "0", "*SCALEREADY_REQUEST_TIMEOUT_S='0'*positive*"),
        ("SCALEREADY_HYPOTHESIS_MAX_EXAMPLES", "lots", "*MAX_EXAMPLES='lots'*whole number*"),
        ("SCALEREADY_HYPOTHESIS_MAX_EXAMPLES", "0", "*MAX_EXAMPLES='0'*whole number*"),
    ],
)
def test_a_bad_environment_value_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*PLUGIN)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_hypothesis_storage_stays_out_of_the_working_directory(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(PROPERTY_TESTS)
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=3)
    assert not (pytester.path / ".hypothesis").exists()


PROPERTY_TESTS = """
from hypothesis import given, settings, strategies as st

CALLS = []

def test_profile():
    current = settings.default
    print(f"PROFILE={settings.get_current_profile_name()} MAX={current.max_examples}"
          f" DEADLINE={current.deadline} DATABASE={current.database}")

@given(st.integers())
def test_counted(n):
    CALLS.append(n)

def test_count():
    print(f"CALLS={len(CALLS)} FIRST={CALLS[:5]}")
"""


def test_max_examples_from_the_environment_sets_the_profile(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALEREADY_HYPOTHESIS_MAX_EXAMPLES", "7")
    pytester.makepyfile(PROPERTY_TESTS)
    result = pytester.runpytest(*PLUGIN, "-s")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["*PROFILE=scaleready MAX=7 DEADLINE=None DATABASE=None*", "*CALLS=7 *"]
    )


def test_the_profile_applies_without_max_examples_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PROPERTY_TESTS)
    result = pytester.runpytest(*PLUGIN, "-s")
    result.stdout.fnmatch_lines(["*PROFILE=scaleready MAX=100 DEADLINE=None DATABASE=None*"])


def test_an_explicit_hypothesis_profile_wins(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALEREADY_HYPOTHESIS_MAX_EXAMPLES", "7")
    pytester.makepyfile(PROPERTY_TESTS)
    result = pytester.runpytest(*PLUGIN, "-s", "--hypothesis-profile=default")
    result.stdout.fnmatch_lines(["*PROFILE=default MAX=100*"])


def _first_examples(pytester: pytest.Pytester) -> str:
    result = pytester.runpytest(*PLUGIN, "-s")
    result.assert_outcomes(passed=3)
    (line,) = [line for line in result.outlines if "CALLS=" in line]
    return line


def test_a_seed_from_the_environment_replays_the_same_examples(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALEREADY_HYPOTHESIS_MAX_EXAMPLES", "20")
    pytester.makepyfile(PROPERTY_TESTS)
    monkeypatch.setenv("SCALEREADY_SEED", "1234")
    first, again = _first_examples(pytester), _first_examples(pytester)
    monkeypatch.setenv("SCALEREADY_SEED", "99")
    other = _first_examples(pytester)
    assert first == again
    assert first != other


def test_a_conftest_may_load_the_plugin_again(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]')
    pytester.makepyfile(TARGET_TESTS)
    result = pytester.runpytest(*PLUGIN, "-s", "--target-url=http://127.0.0.1:8123")
    result.assert_outcomes(passed=2)
    # and the conftest alone is enough
    result = pytester.runpytest("-s", "--target-url=http://127.0.0.1:8123")
    result.assert_outcomes(passed=2)


FAILING_PROPERTY = """
from hypothesis import given, strategies as st

@given(n=st.integers(), label=st.text())
def test_stays_small(n, label):
    assert n < 10, "too big"

def test_plain_failure():
    assert 1 == 2
"""


def _case_properties(junit: str) -> dict[str, dict[str, str]]:
    import xml.etree.ElementTree as ET

    return {
        case.get("name", ""): {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        for case in ET.parse(junit).getroot().iter("testcase")
    }


def test_a_falsified_property_records_hypothesis_s_minimal_example_in_the_junit_report(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(FAILING_PROPERTY)
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest(*PLUGIN, f"--junitxml={junit}", "-o", "junit_family=xunit2")
    result.assert_outcomes(failed=2)
    cases = _case_properties(str(junit))
    example = cases["test_stays_small"]["scaleready.failing_example"]
    # The call Hypothesis shrank to, with the value that fails (not a blank `n=,`), and no
    # console wording of any one Hypothesis version in front of it.
    assert example.startswith("test_stays_small(")
    assert "n=10," in example
    assert "scaleready.failing_example" not in cases["test_plain_failure"]


def test_failing_examples_fall_back_to_the_notes_hypothesis_attached() -> None:
    from harness.pytest_plugin import failing_examples

    class Item:
        def function(self) -> None: ...

    error = AssertionError("too big")
    error.add_note("Some future wording: function(\n    n=10,\n)")
    error.add_note("You can reproduce this example by temporarily adding ...")
    assert failing_examples(Item(), error) == ["function(\n    n=10,\n)"]  # type: ignore[arg-type]
    assert failing_examples(Item(), None) == []  # type: ignore[arg-type]
