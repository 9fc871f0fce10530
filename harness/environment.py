"""Where an audit ran: the harness's version, the host, the interpreter and the key libraries.

Read once at the start of an audit into an :class:`~harness.records.Environment`, so a report
says what machine its numbers come from and the history can tell runs of different hosts apart.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata

from harness.records import Environment

__all__ = ["KEY_LIBRARIES", "read_environment"]

#: The libraries whose versions change what the harness measures or how it judges.
KEY_LIBRARIES = ("locust", "gevent", "hdrhistogram", "hypothesis", "pytest", "scipy", "numpy", "httpx")


def read_environment() -> Environment:
    return Environment(
        harness_version=_version("scaleready"),
        python=platform.python_version(),
        platform=platform.platform(),
        cpu_model=_cpu_model(),
        cores=os.cpu_count() or 0,
        libraries=tuple((name, _version(name)) for name in KEY_LIBRARIES),
    )


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
