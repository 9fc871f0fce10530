"""What of an audit record the history database keeps: the run, its metrics, their samples.

Per tier, from the steady window only (the load the tier is judged on): each endpoint's
percentiles from the intended start (p50, p95, p99) and of service time (service_p50,
service_p95), its error rate and request count; the same for every endpoint together ("*"), with
the achieved throughput and each time window's p95. The samples are the steady window's HDR
histograms as (value, count) buckets, so a comparison can test a difference against the noise
of every request, not only against two percentiles.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from harness.load import recording
from harness.records import (
    AuditRecord,
    Buckets,
    EndpointMeasurement,
    MetricKey,
    PhaseMeasurement,
    RunMetrics,
    RunSummary,
    TierResult,
)

__all__ = ["ci_commit", "run_metrics", "tier_metrics"]


def ci_commit(environ: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """The commit and branch a CI job runs on (GitHub Actions' GITHUB_SHA and GITHUB_REF_NAME)."""
    env = os.environ if environ is None else environ
    return env.get("GITHUB_SHA") or None, env.get("GITHUB_REF_NAME") or None


def run_metrics(record: AuditRecord) -> RunMetrics:
    cap = record.capacity
    env = record.environment
    steal = [t.steady.generator.steal_pct for t in record.tiers
             if t.steady is not None and t.steady.generator.steal_pct is not None]  # fmt: skip
    opts = record.options
    summary = RunSummary(
        run_id=record.run_id,
        pack=record.pack,
        profile=record.profile,
        started_at=record.started_at,
        finished_at=record.finished_at,
        verdict=record.verdict,
        partial=record.partial,
        ready_up_to=record.ready_up_to,
        capacity=cap.predicted_customers if cap else None,
        capacity_low=cap.low if cap else None,
        capacity_high=cap.high if cap else None,
        headroom=cap.headroom if cap else None,
        commit=_text(opts.get("commit")),
        branch=_text(opts.get("branch")),
        label=_text(opts.get("label")),
        flaw=_text(opts.get("flaw")),
        harness_version=env.harness_version if env else None,
        cores=env.cores if env else None,
        cpu_model=env.cpu_model if env else None,
        steal_pct=max(steal) if steal else None,
    )
    values, samples = tier_metrics(record.tiers)
    if summary.capacity is not None:
        values[(0, "*", "capacity")] = summary.capacity
    if summary.headroom is not None:
        values[(0, "*", "headroom")] = summary.headroom
    return RunMetrics(run=summary, values=values, samples=samples)


def tier_metrics(tiers: Sequence[TierResult]) -> tuple[dict[MetricKey, float], dict[MetricKey, Buckets]]:
    """Each tier's steady-window metrics and samples (what a comparison needs before a verdict)."""
    values: dict[MetricKey, float] = {}
    samples: dict[MetricKey, Buckets] = {}
    for tier in tiers:
        steady = tier.steady
        if steady is None or steady.requests == 0:
            continue
        n = tier.customers
        _phase_values(values, n, steady)
        for ep in steady.endpoints:
            _endpoint_values(values, samples, n, ep)
        windows = [recording.percentile_ms(w.latency_hdr, 95.0) for w in steady.windows if w.requests and w.latency_hdr]
        if windows:
            samples[(n, "*", "windows")] = tuple((round(v, 4), 1) for v in sorted(windows))
    return values, samples


def _phase_values(values: dict[MetricKey, float], n: int, steady: PhaseMeasurement) -> None:
    values[(n, "*", "p50")] = steady.latency.p50_ms
    values[(n, "*", "p95")] = steady.latency.p95_ms
    values[(n, "*", "p99")] = steady.latency.p99_ms
    values[(n, "*", "service_p50")] = steady.service.p50_ms
    values[(n, "*", "service_p95")] = steady.service.p95_ms
    values[(n, "*", "error_rate")] = steady.error_rate
    values[(n, "*", "requests")] = float(steady.requests)
    values[(n, "*", "throughput")] = steady.achieved_rps


def _endpoint_values(values: dict[MetricKey, float], samples: dict[MetricKey, Buckets], n: int,
                     ep: EndpointMeasurement) -> None:  # fmt: skip
    if not ep.requests:
        return
    name = ep.name
    values[(n, name, "p50")] = ep.latency.p50_ms
    values[(n, name, "p95")] = ep.latency.p95_ms
    values[(n, name, "p99")] = ep.latency.p99_ms
    values[(n, name, "service_p50")] = ep.service.p50_ms
    values[(n, name, "service_p95")] = ep.service.p95_ms
    values[(n, name, "error_rate")] = ep.error_rate
    values[(n, name, "requests")] = float(ep.requests)
    if ep.service_hdr:
        samples[(n, name, "service")] = tuple(recording.buckets_ms(ep.service_hdr))
    if ep.latency_hdr:
        samples[(n, name, "latency")] = tuple(recording.buckets_ms(ep.latency_hdr))


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None
