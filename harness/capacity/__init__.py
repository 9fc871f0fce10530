"""Capacity analysis: how many customers the target can serve, and how each endpoint scales with data.

Pure analysis over records: no I/O, no Locust, no matplotlib. Three questions, three tools:

* **Throughput scalability** (:mod:`~harness.capacity.usl`): the Universal Scalability Law
  (Gunther) fitted to goodput against the in-server concurrency N = X·R (Little's law), with the
  uncertainty of its parameters, its curve and what is derived from them.
* **Capacity in customers** (:mod:`~harness.capacity.estimate`): the largest throughput the fitted
  curve reaches while its latency, scaled from mean to the SLO percentile, stays within the SLO;
  divided by one customer's peak rate. A measured load that met the SLO is always a floor under
  the estimate, and a load measured failing is a ceiling no model may exceed. The latency knee
  (:mod:`~harness.capacity.knee`, Kneedle) is reported beside it.
* **Data-volume scaling** (:mod:`~harness.capacity.trends`): each endpoint's service p95 at
  nominal load against the tier's customer count, as a power law (log-log slope).
"""

from __future__ import annotations

from harness.capacity.estimate import (
    completed_iterations_per_s,
    estimate_capacity,
    margin_factors,
    requests_per_iteration,
)
from harness.capacity.knee import find_knee
from harness.capacity.trends import endpoint_trends
from harness.capacity.usl import InsufficientData, UslFit, fit_usl

__all__ = [
    "InsufficientData",
    "UslFit",
    "completed_iterations_per_s",
    "endpoint_trends",
    "estimate_capacity",
    "find_knee",
    "fit_usl",
    "margin_factors",
    "requests_per_iteration",
]
