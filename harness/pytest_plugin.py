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
