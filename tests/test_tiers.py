"""The tier stage: how it plans a tier's arrivals under the pack's max_rps."""

from __future__ import annotations

from harness.tiers import max_arrivals


def test_max_rps_counts_requests_so_the_arrivals_are_kept_under_it_by_the_measured_mix() -> None:
    # An action made 2.5 requests at the earlier tiers: 100 requests/s allow 40 actions/s.
    assert max_arrivals(100.0, 2.5) == 40.0
    # Before any tier measured it, one request an action (the engine holds back the rest).
    assert max_arrivals(100.0, None) == 100.0
    assert max_arrivals(100.0, 0.5) == 100.0  # never more actions than requests
    assert max_arrivals(None, 2.5) == float("inf")

