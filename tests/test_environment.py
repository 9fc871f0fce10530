"""Where an audit ran, as every report says it."""

from __future__ import annotations

import os
import platform

from harness.environment import KEY_LIBRARIES, read_environment


def test_the_environment_names_the_host_the_interpreter_and_the_libraries_that_matter() -> None:
    env = read_environment()
    assert env.cores == os.cpu_count() and env.python == platform.python_version()
    assert env.cpu_model and env.platform
    versions = dict(env.libraries)
    assert set(versions) == set(KEY_LIBRARIES)
    assert versions["locust"][0].isdigit() and env.harness_version[0].isdigit()
