"""harness.integrity.declare: what a pack declares in its invariants.py, and how it is collected."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.integrity.declare import Invariants, counter, load_invariants, readback, resource

PACK_INVARIANTS = Path(__file__).resolve().parents[2] / "scenarios" / "booking" / "invariants.py"


def module_with(**attrs: Any) -> ModuleType:
    module = ModuleType("fake_invariants")
    module.__dict__.update(attrs)
    return module


def test_load_invariants_collects_the_declarations() -> None:
    inv = load_invariants(PACK_INVARIANTS)
    assert set(inv.resources) == {"booking"} and set(inv.readbacks) == {"booking"}
    assert set(inv.listings) == {"booking"} and inv.isolation_reads is not None
    assert inv.headers({"api_key": "k"}) == {"X-API-Key": "k"}


def test_a_readback_without_a_resource_is_refused() -> None:
    @readback("order")
    def read(client: Any, customer: Any, ident: str) -> None:
        return None

    with pytest.raises(ConfigError, match=r"no resource\('order'"):
        load_invariants(module_with(read=read))


def test_a_resource_without_a_readback_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"has no @readback\('order'\)"):
        load_invariants(module_with(order=resource("order", stable_fields=("sku",))))


def test_stable_fields_are_required() -> None:
    with pytest.raises(ConfigError, match="stable_fields is empty"):
        resource("order", stable_fields=())


def test_invariants_can_be_given_ready_made() -> None:
    inv = load_invariants(PACK_INVARIANTS)
    assert load_invariants(inv) is inv and isinstance(inv, Invariants)


def test_counters_are_collected_with_what_they_count_and_a_wrong_op_is_refused() -> None:
    [made] = load_invariants(PACK_INVARIANTS).counters
    assert (made.name, made.kind, made.op) == ("bookings_made", "booking", "create")
    with pytest.raises(ConfigError, match=r"op must be one of \['create', 'delete', 'update'\]"):
        counter("booking", op="insert")
