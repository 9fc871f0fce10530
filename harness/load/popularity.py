"""Which customer an action acts for: the customer-popularity distribution, as weights.

Pure and Locust-free: the locustfile kit draws from these weights (``Popularity.weights``).
The Zipf distribution here is the finite one (ranks 1..N, weight ``1 / k ** s``), drawn exactly
with ``random.choices`` over cumulative weights; numpy's ``zipf`` is the unbounded distribution (s > 1 only), which would need
rejection to fit N customers and would not allow the mild exponents (s <= 1) real tenants show.
"""

from __future__ import annotations

import itertools

from harness.records import Popularity

__all__ = ["POPULARITY_ENV", "cumulative_weights", "from_env_value", "to_env_value"]

POPULARITY_ENV = "SCALEREADY_POPULARITY"  # "uniform" or "zipf:1.0", set for the load engine


def cumulative_weights(popularity: Popularity, customers: int) -> list[float] | None:
    """What ``random.choices(cum_weights=...)`` needs; None for uniform (``random.choice`` is faster)."""
    if popularity.distribution == "uniform" or customers < 2:
        return None
    return list(itertools.accumulate(popularity.weights(customers)))


def to_env_value(popularity: Popularity) -> str:
    if popularity.distribution == "uniform":
        return "uniform"
    return f"zipf:{popularity.exponent:g}"


def from_env_value(text: str) -> Popularity:
    """The inverse of :func:`to_env_value`; an empty or unknown value is uniform."""
    name, _, exponent = text.strip().partition(":")
    if name == "zipf":
        return Popularity("zipf", float(exponent or 1.0))
    return Popularity()
