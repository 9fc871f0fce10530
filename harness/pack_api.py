"""The pack API: the names a pack's files may import. Everything else in ``harness`` is internal.

::

    from harness.pack_api import CustomerUser, task              # locustfile.py
    from harness.pack_api import resource, readback, Read, ...   # invariants.py
    from harness.pack_api import request_hooks, ...              # conftest.py

A name is added here deliberately, and removed only with a note in the pack reference, docs/PACKS.md:
``tests/test_pack_api.py`` fails when ``__all__`` changes unnoticed.

The Locust names (``CustomerUser``, ``task`` ...) are imported on first use: importing Locust
monkey-patches the process with gevent, which only a locustfile's process (the load engine)
may have. A provision.py or invariants.py that imports this module stays free of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from harness.integrity.declare import (
    Read,
    Resource,
    concurrent_write,
    counter,
    invariant,
    isolation_reads,
    listing,
    public,
    readback,
    resource,
    violation,
)
from harness.integrity.ledger import Operation
from harness.integrity.overlap import Attempt

if TYPE_CHECKING:
    from harness.integrity.session import Api
    from harness.load.kit import CustomerUser, between, constant, tag, task
    from harness.openapi.persona import OpenApiUser
    from harness.openapi.service import openapi_service
    from harness.pytest_plugin import configured_target_url, request_hooks, request_timeout_s

__all__ = [
    # locustfile.py: what customers do (Locust, imported on first use)
    "CustomerUser",
    "between",
    "constant",
    "tag",
    "task",
    # packs written by `scaleready init`: the service as its OpenAPI document describes it
    "OpenApiUser",
    "openapi_service",
    # invariants.py: what integrity under load means for this service
    "Api",
    "Attempt",
    "Operation",
    "Read",
    "Resource",
    "concurrent_write",
    "counter",
    "invariant",
    "isolation_reads",
    "listing",
    "public",
    "readback",
    "resource",
    "violation",
    # conftest.py and tests: the target the suites run against
    "configured_target_url",
    "request_hooks",
    "request_timeout_s",
]

# Imported on first use: name -> the module that defines it.
_LAZY = {
    "CustomerUser": "harness.load.kit",
    "between": "harness.load.kit",
    "constant": "harness.load.kit",
    "tag": "harness.load.kit",
    "task": "harness.load.kit",
    "OpenApiUser": "harness.openapi.persona",
    "openapi_service": "harness.openapi.service",
    "Api": "harness.integrity.session",
    "configured_target_url": "harness.pytest_plugin",
    "request_hooks": "harness.pytest_plugin",
    "request_timeout_s": "harness.pytest_plugin",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"harness.pack_api has no name {name!r}; the pack API is: {', '.join(__all__)}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
