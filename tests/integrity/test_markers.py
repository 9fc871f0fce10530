"""harness.integrity.markers: finding other customers' markers in what one customer reads."""

from __future__ import annotations

import json
import time

import pytest

from harness.integrity.markers import MarkerScanner, marker_prefix

PREFIX = "srmab12"


def marker(index: int) -> str:
    return f"{PREFIX}c{index:06d}"


def body_of(markers: list[str], size: int = 2048) -> str:
    rows = [{"id": i, "name": f"Patient {i}", "clinic_marker": m} for i, m in enumerate(markers)]
    text = json.dumps(rows)
    return text + " " * max(0, size - len(text))


@pytest.fixture
def scanner() -> MarkerScanner:
    return MarkerScanner(PREFIX, 5000)


def test_only_the_callers_own_marker_is_not_a_leak(scanner: MarkerScanner) -> None:
    assert scanner.foreign(body_of([marker(7)] * 20), 7) == []


def test_a_body_without_markers_is_not_a_leak(scanner: MarkerScanner) -> None:
    assert scanner.foreign('{"status": "ok"}', 7) == []
    assert scanner.foreign("", 7) == []
    assert scanner.foreign(None, 7) == []


def test_other_customers_markers_are_returned_sorted_and_distinct(scanner: MarkerScanner) -> None:
    body = body_of([marker(7), marker(12), marker(3), marker(12)])
    assert scanner.foreign(body, 7) == [3, 12]


def test_bytes_bodies_are_scanned_without_decoding(scanner: MarkerScanner) -> None:
    assert scanner.foreign(body_of([marker(7), marker(4999)]).encode(), 7) == [4999]
    assert scanner.foreign(body_of([marker(7)]).encode(), 7) == []


def test_markers_of_another_run_do_not_count(scanner: MarkerScanner) -> None:
    assert scanner.foreign(body_of([marker(7), "srmzz99c000012"]), 7) == []


def test_a_longer_digit_run_is_not_a_marker(scanner: MarkerScanner) -> None:
    # "c0000123" is not the 6-digit marker of customer 12 (or 123).
    assert scanner.foreign(f"{marker(7)} {PREFIX}c0000123", 7) == []


def test_a_prefix_with_regex_characters_is_matched_literally() -> None:
    scanner = MarkerScanner("srm.a+b", 10)
    assert scanner.foreign("srm.a+bc000001 srmXaabc000002", 0) == [1]


def test_indexes_lists_every_marker(scanner: MarkerScanner) -> None:
    assert scanner.indexes(body_of([marker(1), marker(2), marker(1)])) == [1, 2]


def test_for_customers_derives_the_prefix_from_provisioned_markers() -> None:
    scanner = MarkerScanner.for_customers([{"index": 0, "marker": marker(0)}, {"index": 1, "marker": marker(1)}])
    assert scanner.prefix == PREFIX
    assert scanner.marker(42) == marker(42)
    assert scanner.customers_count == 2


@pytest.mark.parametrize("bad", ["srmab12", "srmab12c12345", "srmab12x000001", "c000001"])
def test_marker_prefix_rejects_what_is_not_a_marker(bad: str) -> None:
    with pytest.raises(ValueError, match="marker"):
        marker_prefix(bad)


def test_marker_prefix_of_a_marker() -> None:
    assert marker_prefix(marker(42)) == PREFIX


def test_scanning_is_cheap_enough_for_every_response(scanner: MarkerScanner) -> None:
    clean = body_of([marker(7)] * 20).encode()
    leaky = body_of([marker(7)] * 19 + [marker(8)]).encode()
    n = 20_000
    t0 = time.perf_counter()
    for _ in range(n):
        scanner.foreign(clean, 7)
    clean_us = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n):
        scanner.foreign(leaky, 7)
    leaky_us = (time.perf_counter() - t0) / n * 1e6
    # Measured about 1 us (clean) and 5 us (leaky) per 2 KB body; the bound is generous for CI.
    assert clean_us < 50 and leaky_us < 200, (clean_us, leaky_us)
