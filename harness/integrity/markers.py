"""Find other customers' markers in what one customer can read.

Every customer's data carries a marker unique to that customer and to the run
(``srm<run token>c<6-digit index>``, see :mod:`harness.provisioning`). A response read with
customer 7's credentials that contains customer 12's marker is a cross-tenant leak, whatever
the endpoint and whatever the cause (a missing filter, a shared cache, request context leaking
between concurrent requests).

:class:`MarkerScanner` is pure and cheap enough to run on every response under load: two
substring counts answer the common case (only the caller's own marker, or none), and one
compiled regular expression runs only when some other marker may be present. It accepts
``str`` or ``bytes`` so the load engine can scan ``response.content`` without decoding it.
Imports nothing beyond the standard library (it runs inside gevent-patched Locust processes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MARKER_DIGITS", "MarkerScanner", "marker_prefix"]

MARKER_DIGITS = 6  # the marker's index field: f"{index:06d}"
_MAX_INDEX = 10**MARKER_DIGITS


def marker_prefix(marker: str) -> str:
    """The run-wide prefix of one customer's marker: ``"srmab12c000042"`` -> ``"srmab12"``.

    Raises ValueError for a string that is not a marker.
    """
    tail = marker[-(MARKER_DIGITS + 1) :]
    if len(marker) <= MARKER_DIGITS + 1 or tail[0] != "c" or not tail[1:].isdigit():
        raise ValueError(
            f"marker {marker!r} does not end in 'c' and {MARKER_DIGITS} digits; "
            "markers are f'srm{{run_token}}c{{index:06d}}' (harness.provisioning.CustomerStore.marker)"
        )
    return marker[: -(MARKER_DIGITS + 1)]


class MarkerScanner:
    """Finds markers of customers other than the caller in a response body.

    ``pattern_prefix`` is the marker without its ``c<index>`` tail (``"srm" + run_token``);
    ``customers_count`` is how many customers the run has provisioned (markers above it are
    still reported: a leak is a leak, even of a marker nobody expected).
    """

    __slots__ = (
        "_bytes_prefix",
        "_bytes_re",
        "_own_cache",
        "_prefix",
        "_str_re",
        "customers_count",
    )

    def __init__(self, pattern_prefix: str, customers_count: int) -> None:
        if not pattern_prefix:
            raise ValueError("pattern_prefix is empty: give 'srm' + the run token, e.g. 'srmab12'")
        if not 0 <= customers_count <= _MAX_INDEX:
            raise ValueError(
                f"customers_count = {customers_count}: markers hold {MARKER_DIGITS} digits, "
                f"so at most {_MAX_INDEX} customers"
            )
        self._prefix = pattern_prefix
        self.customers_count = customers_count
        body = re.escape(pattern_prefix) + rf"c(\d{{{MARKER_DIGITS}}})(?!\d)"
        self._str_re = re.compile(body)
        self._bytes_re = re.compile(body.encode("ascii", "backslashreplace"))
        self._bytes_prefix = pattern_prefix.encode("utf-8")
        self._own_cache: dict[int, tuple[str, bytes]] = {}

    @classmethod
    def for_customers(cls, customers: Iterable[Mapping[str, Any]]) -> MarkerScanner:
        """A scanner for provisioned customer records (each with ``marker``)."""
        records = list(customers)
        if not records:
            raise ValueError("no customers: provision customers before scanning for their markers")
        return cls(marker_prefix(str(records[0]["marker"])), len(records))

    @property
    def prefix(self) -> str:
        return self._prefix

    def marker(self, index: int) -> str:
        return f"{self._prefix}c{index:0{MARKER_DIGITS}d}"

    def _own(self, index: int) -> tuple[str, bytes]:
        own = self._own_cache.get(index)
        if own is None:
            text = self.marker(index)
            own = (text, text.encode("utf-8"))
            if len(self._own_cache) < 100_000:
                self._own_cache[index] = own
        return own

    def foreign(self, body: str | bytes | None, own_index: int) -> list[int]:
        """Indexes (sorted, distinct) of the other customers whose markers appear in ``body``."""
        if not body:
            return []
        own_text, own_bytes = self._own(own_index)
        if isinstance(body, str):
            prefix_count = body.count(self._prefix)
            if prefix_count == 0 or prefix_count == body.count(own_text):
                return []
            found = {int(m) for m in self._str_re.findall(body)}
        else:
            prefix_count = body.count(self._bytes_prefix)
            if prefix_count == 0 or prefix_count == body.count(own_bytes):
                return []
            found = {int(m) for m in self._bytes_re.findall(body)}
        found.discard(own_index)
        return sorted(found)

    def indexes(self, body: str | bytes | None) -> list[int]:
        """Every customer index whose marker appears in ``body`` (sorted, distinct)."""
        if not body:
            return []
        if isinstance(body, str):
            return sorted({int(m) for m in self._str_re.findall(body)})
        return sorted({int(m) for m in self._bytes_re.findall(body)})
