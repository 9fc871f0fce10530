"""The pytest plugin a pack's regression suite and Hypothesis properties run under.

The harness runs ``python -m pytest -p harness.pytest_plugin ...`` against a running target; a
pack's ``conftest.py`` (or ``pytest.ini``) may load it too, so ``pytest scenarios/<pack>/tests``
works by hand. Loading it twice is harmless: pytest registers a plugin module once by name.

What it provides:

``--target-url`` / ``SCALEREADY_TARGET_URL``
    Base URL of the service under test. The option wins over the environment.
``target_url`` (session fixture)
    That URL as a string. With none configured, tests that need it error with one sentence saying
    how to pass it. A pack may override this fixture (the booking pack starts its demo service).
``http`` (session fixture)
    An ``httpx.Client`` with ``base_url=target_url`` and the timeout from
    ``SCALEREADY_REQUEST_TIMEOUT_S`` (seconds, default 10).
Hypothesis profile ``"scaleready"``
    ``deadline=None`` (a network round trip is not a slow test), ``database=None`` (a run must not
    write ``.hypothesis/`` into the pack) and the ``too_slow`` / ``filter_too_much`` health checks
    suppressed. ``SCALEREADY_HYPOTHESIS_MAX_EXAMPLES`` sets ``max_examples`` (else Hypothesis's
    default, 100). Loaded whenever this plugin is, because Hypothesis's default 200 ms deadline
    makes any property against a server flaky; an explicit ``--hypothesis-profile`` wins.
    Hypothesis also caches what it learns from the source in ``.hypothesis/`` under the working
    directory; unless ``HYPOTHESIS_STORAGE_DIRECTORY`` says otherwise, that goes to the system's
    temporary folder instead of the pack.
``SCALEREADY_SEED``
    Same effect as ``--hypothesis-seed``: every property draws the same examples on a rerun.
    An explicit ``--hypothesis-seed`` wins.
Minimal failing examples
    When a Hypothesis test fails, the examples Hypothesis itself hands its pytest plugin (the
    call it shrank to, e.g. ``test_x(n=10)``) are recorded as the JUnit property
    ``scaleready.failing_example`` of that test case, so the properties stage reads them from the
    report rather than from whatever wording the installed Hypothesis prints before them.
``request_hooks()``
    httpx event hooks that keep a client under the pack's ``target.max_rps`` (handed down by the
    audit as ``SCALEREADY_MAX_RPS``); the ``http`` fixture has them, and clients a pack's
    conftest builds itself should take them too.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterator, Mapping

import httpx
import pytest

from harness import pacing

ENV_TARGET_URL = "SCALEREADY_TARGET_URL"
ENV_REQUEST_TIMEOUT_S = "SCALEREADY_REQUEST_TIMEOUT_S"
ENV_MAX_EXAMPLES = "SCALEREADY_HYPOTHESIS_MAX_EXAMPLES"
ENV_SEED = "SCALEREADY_SEED"
ENV_HYPOTHESIS_STORAGE = "HYPOTHESIS_STORAGE_DIRECTORY"  # Hypothesis's own variable
FAILING_EXAMPLE_PROPERTY = "scaleready.failing_example"
# Where Hypothesis's core leaves the shrunk failing calls for its own pytest plugin (it writes
# them as patches from there); the same name as _hypothesis_pytestplugin.FAILING_EXAMPLES_KEY.
_HYPOTHESIS_FAILING_EXAMPLES = "_hypothesis_failing_examples"

HYPOTHESIS_PROFILE = "scaleready"
DEFAULT_REQUEST_TIMEOUT_S = 10.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("scaleready", "scaleready harness")
    group.addoption(
        "--target-url",
        dest="scaleready_target_url",
        default=None,
        metavar="URL",
        help=f"base URL of the service under test (default: ${ENV_TARGET_URL})",
    )


def configured_target_url(config: pytest.Config) -> str | None:
    """The target URL from ``--target-url`` or the environment, or None when neither is set.

    A pack's conftest uses this to decide whether to start its own demo service.
    """
    url = config.getoption("scaleready_target_url", default=None) or os.environ.get(
        ENV_TARGET_URL, ""
    )
    return url.strip().rstrip("/") or None


@functools.cache
def _shared_pacer() -> pacing.RequestPacer | None:
    return pacing.pacer_from_env()


def request_hooks() -> pacing.Hooks:
    """httpx event hooks that hold a client to the audit's ``target.max_rps`` (none without one).

    Give them to every client your tests build, ``httpx.Client(..., event_hooks=request_hooks())``:
    the clients of one test process share one pacer, so together they keep the cap.
    """
    return pacing.request_hooks(_shared_pacer())


def request_timeout_s(environ: Mapping[str, str] = os.environ) -> float:
    """Per-request timeout for the ``http`` fixture, validated."""
    raw = environ.get(ENV_REQUEST_TIMEOUT_S, "").strip()
    if not raw:
        return DEFAULT_REQUEST_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise pytest.UsageError(
            f"{ENV_REQUEST_TIMEOUT_S}={raw!r}: the request timeout must be a positive number of"
            f" seconds; set e.g. {ENV_REQUEST_TIMEOUT_S}=10 or unset it"
        )
    return value


def max_examples_from_env(environ: Mapping[str, str] = os.environ) -> int | None:
    raw = environ.get(ENV_MAX_EXAMPLES, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise pytest.UsageError(
            f"{ENV_MAX_EXAMPLES}={raw!r}: max_examples must be a whole number of at least 1;"
            f" set e.g. {ENV_MAX_EXAMPLES}=100 or unset it"
        )
    return int(raw)


def seed_from_env(environ: Mapping[str, str] = os.environ) -> int | str | None:
    raw = environ.get(ENV_SEED, "").strip()
    if not raw:
        return None
    # Same parsing as ``--hypothesis-seed``: an integer if it is one, else the string itself.
    try:
        return int(raw)
    except ValueError:
        return raw


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Validate the environment early: a typo should stop the run, not error every test.
    request_timeout_s()
    max_examples = max_examples_from_env()
    seed = seed_from_env()

    from hypothesis import HealthCheck, settings
    from hypothesis.configuration import set_hypothesis_home_dir

    if not os.environ.get(ENV_HYPOTHESIS_STORAGE):
        set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "scaleready-hypothesis"))

    settings.register_profile(
        HYPOTHESIS_PROFILE,
        # Every example is at least one HTTP round trip to a server under test.
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        max_examples=max_examples or settings.get_profile("default").max_examples,
    )
    if not config.getoption("hypothesis_profile", default=None):
        settings.load_profile(HYPOTHESIS_PROFILE)

    if seed is not None and config.getoption("hypothesis_seed", default=None) is None:
        # Hypothesis's own plugin reads the option in its pytest_configure; tryfirst puts us
        # before it. If this plugin was registered late (from a conftest), that hook has already
        # run, so set the seed where the option would have put it as well.
        config.option.hypothesis_seed = str(seed)
        from hypothesis import core

        core.global_force_seed = seed  # type: ignore[assignment]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _restore_hypothesis_printer()


def _restore_hypothesis_printer() -> None:
    """Put back the printer Hypothesis shows failing examples with (before each test, since a
    test module may import Schemathesis only at collection).

    Importing Schemathesis (its pytest plugin loads with it) swaps Hypothesis's printer for one
    that prints nothing, to speed up its own generation; every failing example then reads
    ``test_x(n=,)``. Schemathesis's own objects print nothing either way (their
    ``_repr_pretty_`` is empty), so restoring it costs them nothing and gives back the values.
    """
    from hypothesis import core
    from hypothesis.vendor import pretty

    if getattr(core, "RepresentationPrinter", None) is not pretty.RepresentationPrinter:
        core.RepresentationPrinter = pretty.RepresentationPrinter  # type: ignore[misc]


def failing_examples(item: pytest.Item, error: BaseException | None) -> list[str]:
    """The minimal failing examples Hypothesis found for `item`, as calls; [] when none.

    First what Hypothesis's core handed its pytest plugin; failing that (another Hypothesis
    version), the notes it attached to the error that are a call of the test itself.
    """
    handed = getattr(item, _HYPOTHESIS_FAILING_EXAMPLES, None)
    if isinstance(handed, list) and handed:
        return [str(example).strip() for example in handed if str(example).strip()]
    function = getattr(item, "function", None)
    name = getattr(function, "__name__", "")
    if not name or error is None:
        return []
    calls: list[str] = []
    pending = [error]
    while pending:
        current = pending.pop(0)
        pending.extend(getattr(current, "exceptions", ()))
        for note in getattr(current, "__notes__", ()):
            text = str(note)
            at = text.find(f"{name}(")
            if at >= 0:
                calls.append(text[at:].strip())
    return calls


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    yield
    if call.when != "call" or call.excinfo is None:
        return
    examples = failing_examples(item, call.excinfo.value)
    if examples:
        # The JUnit writer takes a case's properties from its last (teardown) report, which
        # copies them from the item: so they go on the item, not on this report.
        item.user_properties.append((FAILING_EXAMPLE_PROPERTY, "\n\n".join(examples)))


def pytest_report_header(config: pytest.Config) -> list[str]:
    url = configured_target_url(config) or "(not configured)"
    lines = [f"scaleready: target {url}"]
    max_examples = os.environ.get(ENV_MAX_EXAMPLES)
    seed = os.environ.get(ENV_SEED)
    if max_examples or seed:
        lines.append(f"scaleready: hypothesis max_examples={max_examples} seed={seed}")
    return lines


@pytest.fixture(scope="session")
def target_url(pytestconfig: pytest.Config) -> str:
    """Base URL of the service under test, without a trailing slash."""
    url = configured_target_url(pytestconfig)
    if url is None:
        pytest.fail(
            f"No target URL configured: pass --target-url=http://127.0.0.1:PORT or set"
            f" {ENV_TARGET_URL}.",
            pytrace=False,
        )
    return url


@pytest.fixture(scope="session")
def http(target_url: str) -> Iterator[httpx.Client]:
    """An unauthenticated client for the target; the session closes it. Under an audit of a pack
    with ``target.max_rps`` its requests are paced to it (``harness.pacing``)."""
    with httpx.Client(base_url=target_url, timeout=request_timeout_s(), event_hooks=request_hooks()) as client:
        yield client
