"""Causes, not symptoms: several endpoints missing their SLOs in one tier are explained once."""

from __future__ import annotations

import dataclasses

from factories import (
    T0,
    endpoint,
    endpoint_trend,
    gate_result,
    integrity_result,
    latency_summary,
    phase,
    properties_result,
    tier,
)

from harness.records import EndpointMeasurement, PhaseMeasurement, ResourceSample, TierResult
from harness.verdict import EndpointSlo, ReproduceContext, VerdictPolicy, judge

GOAL = 5000
POLICY = VerdictPolicy(default_slo=EndpointSlo(p95_ms=100.0, p99_ms=300.0), endpoint_slos={},
                       max_error_rate=0.01, goal_customers=GOAL)  # fmt: skip
CTX = ReproduceContext(pack="pack", profile="quick", target_url=None, started_by_harness=True)
SECONDS = 40.0


def measured(name: str, requests: int, ms: float, *, errors: int = 0, reason: str = "http-503") -> EndpointMeasurement:
    summary = latency_summary(ms, count=requests, p50_ms=ms, p95_ms=ms * 1.5, p99_ms=ms * 2)
    return endpoint(name, requests=requests, errors=errors, latency=summary, service=summary,
                    errors_by_reason={reason: errors} if errors else {})  # fmt: skip


def probe(unloaded: dict[str, float], requests: dict[str, int] | None = None) -> PhaseMeasurement:
    counts = requests or {}
    return phase("probe", offered_rps=4.0, duration_s=15.0,
                 endpoints=[measured(n, counts.get(n, 10), ms) for n, ms in unloaded.items()])  # fmt: skip


def collapsed(rates: dict[str, float], ms: float, offered: float, completed_share: float = 1.0,
              **errors: int) -> PhaseMeasurement:  # fmt: skip
    eps = [measured(n, int(r * SECONDS), ms, errors=errors.get(n.split()[-1].strip("/"), 0)) for n, r in rates.items()]
    p = phase(offered_rps=offered, duration_s=SECONDS, endpoints=eps, achieved_rps=sum(rates.values()))
    return dataclasses.replace(p, iterations_completed=int(offered * SECONDS * completed_share), active_s=SECONDS)


def audit(goal_tier: TierResult, trends=()) -> object:  # type: ignore[no-untyped-def]
    return judge(gate=gate_result(), properties=properties_result(), tiers=(goal_tier,), capacity=None,
                 trends=tuple(trends), noise_floor=None, policy=POLICY, reproduce=CTX)  # fmt: skip


def test_an_endpoint_taking_most_of_the_services_time_is_the_cause_and_the_rest_are_folded_under_it() -> None:
    # Unloaded, the search takes 96 ms and the lookups 5 ms; at 8 searches/s the search keeps the
    # service busy 0.77 s of every second, the lookups 0.2 s together: everything queued behind it.
    unloaded = {"GET /search": 96.0, "GET /item": 5.0, "GET /user": 5.0}
    steady = collapsed({"GET /search": 8.0, "GET /item": 20.0, "GET /user": 20.0}, ms=900.0, offered=40.0)
    grew = endpoint_trend("GET /search", growth_class="linear", breaks_at=None,
                          points=((50, 23.0), (500, 36.0), (5000, 96.0)))  # fmt: skip
    grew = dataclasses.replace(grew, measure="probe-p50")
    j = audit(tier(GOAL, steady=steady, integrity=integrity_result(), probe=probe(unloaded)), trends=[grew])
    cause = j.findings[0]  # type: ignore[attr-defined]
    assert cause.category == "data-volume-scaling" and cause.endpoint == "GET /search"
    assert cause.severity == "high" and "takes 79% of the service's time" in cause.title
    assert "2 other endpoints waited behind it" in cause.title and "23 -> 96 ms" in cause.detail
    symptoms = [f for f in j.findings if f.category == "slo-latency"]  # type: ignore[attr-defined]
    assert len(symptoms) == 3 and all(f.caused_by == cause.id and f.severity == "low" for f in symptoms)
    assert j.verdict == "NOT READY"  # type: ignore[attr-defined]
    assert j.reasons[0].startswith(  # type: ignore[attr-defined]
        "The first tier to fail is 5000 customers: 3 endpoints missed their SLOs because GET /search took 79%")


def test_the_costly_endpoint_is_the_cause_from_the_few_requests_a_short_probe_gives_it() -> None:
    # A quick probe sends each task a handful of times: three answered searches are enough for
    # its median, and without it the busy time would be credited to the lookups' queueing.
    unloaded = {"GET /search": 96.0, "GET /item": 5.0, "GET /user": 5.0}
    steady = collapsed({"GET /search": 8.0, "GET /item": 20.0, "GET /user": 20.0}, ms=900.0, offered=40.0)
    short = probe(unloaded, requests={"GET /search": 3, "GET /item": 5, "GET /user": 4})
    j = audit(tier(GOAL, steady=steady, integrity=integrity_result(), probe=short))
    cause = j.findings[0]  # type: ignore[attr-defined]
    assert cause.endpoint == "GET /search" and "takes 79% of the service's time" in cause.title


def test_a_lookup_that_only_waited_is_not_told_to_look_at_its_queries() -> None:
    unloaded = {"GET /search": 96.0, "GET /item": 5.0}
    steady = collapsed({"GET /search": 8.0, "GET /item": 20.0}, ms=900.0, offered=30.0)
    j = audit(tier(GOAL, steady=steady, integrity=integrity_result(), probe=probe(unloaded)))
    item = next(f for f in j.findings if f.category == "slo-latency" and f.endpoint == "GET /item")  # type: ignore[attr-defined]
    assert "look at its queries" not in item.detail
    assert "With no other load (the tier's probe) it takes 5.0 ms" in item.detail


def test_without_its_data_growing_the_costly_endpoint_is_a_throughput_cause() -> None:
    unloaded = {"GET /report": 150.0, "GET /item": 5.0}
    steady = collapsed({"GET /report": 3.0, "GET /item": 10.0}, ms=900.0, offered=20.0)
    j = audit(tier(GOAL, steady=steady, integrity=integrity_result(), probe=probe(unloaded)))
    assert j.findings[0].category == "throughput" and "did not grow with the data" in j.findings[0].detail  # type: ignore[attr-defined]


def cpu(pct: float) -> tuple[ResourceSample, ...]:
    return tuple(ResourceSample(at=T0 + 1 + i, rss_mb=80.0, cpu_pct=pct, open_fds=20, threads=4) for i in range(30))


def test_a_service_serving_one_request_at_a_time_while_its_cpu_idles_is_named_as_waiting() -> None:
    # Every request takes 10 ms alone; it completed 90 requests/s of far more offered, so 0.9
    # requests were in service at once, on 30 % of a core: they waited, they did not compute.
    unloaded = {f"GET /{n}": 10.0 for n in "abc"}
    steady = collapsed({f"GET /{n}": 30.0 for n in "abc"}, ms=900.0, offered=200.0, completed_share=0.45)
    j = audit(tier(GOAL, steady=steady, integrity=integrity_result(), probe=probe(unloaded), resources=cpu(30.0)))
    cause = j.findings[0]  # type: ignore[attr-defined]
    assert cause.category == "contention" and "about one request at a time" in cause.title
    assert "only 30% of a CPU" in cause.detail and "blocking call" in cause.detail
    assert all(f.caused_by == cause.id for f in j.findings if f.category == "slo-latency")  # type: ignore[attr-defined]


def test_a_service_that_waits_one_call_at_a_time_is_serialised_even_where_one_endpoint_takes_its_time() -> None:
    # The blocking-event-loop flaw as measured on 2026-12-07: two endpoints wait 28 ms each for a
    # downstream on the event loop, the rest take 2 ms. Most requests timed out (never answered):
    # what was answered kept 0.7 requests in service at once, on 20 % of a core. The endpoint
    # with most of the busy time is where it waits, not a cost to cut.
    unloaded = {"GET /slow": 28.0, "POST /slow": 28.0, "GET /a": 2.0, "GET /b": 2.0}
    rates = {"GET /slow": 80.0, "POST /slow": 10.0, "GET /a": 20.0, "GET /b": 20.0}
    eps = [measured(n, int(r * SECONDS), 5000.0, errors=int(r * SECONDS * 0.85), reason="timeout")
           for n, r in rates.items() if n != "POST /slow"] + [measured("POST /slow", int(10.0 * SECONDS), 5000.0)]
    steady = dataclasses.replace(
        phase(offered_rps=300.0, duration_s=SECONDS, endpoints=eps, achieved_rps=130.0),
        iterations_completed=int(40 * SECONDS), active_s=SECONDS,
    )
    j = audit(tier(GOAL, steady=steady, integrity=integrity_result(), probe=probe(unloaded), resources=cpu(20.0)))
    cause = j.findings[0]  # type: ignore[attr-defined]
    assert cause.category == "contention" and "about one request at a time" in cause.title
    assert cause.evidence["requests_in_service"] < 1.0  # answered requests only, not the timeouts
    assert "only 20% of a CPU" in cause.detail
    assert "GET /slow, POST /slow take 98% of that time: look there first" in cause.detail
    assert not any(f.evidence.get("busy_share") for f in j.findings)  # type: ignore[attr-defined]


def test_a_service_that_scales_is_not_called_serialised() -> None:
    # 10 ms requests completed at 900 requests/s: nine in service at once.
    unloaded = {f"GET /{n}": 10.0 for n in "abc"}
    steady = collapsed({f"GET /{n}": 300.0 for n in "abc"}, ms=900.0, offered=1200.0, completed_share=0.75)
    j = audit(tier(GOAL, steady=steady, integrity=integrity_result(), probe=probe(unloaded), resources=cpu(190.0)))
    assert not any(f.category == "contention" for f in j.findings)  # type: ignore[attr-defined]
    assert all(f.caused_by is None for f in j.findings)  # type: ignore[attr-defined]


def test_endpoints_failing_with_one_kind_of_error_share_one_cause() -> None:
    steady = collapsed({"GET /quote": 10.0, "GET /cart": 10.0}, ms=20.0, offered=20.0, quote=200, cart=150)
    j = audit(tier(GOAL, steady=steady, integrity=integrity_result(), probe=probe({"GET /quote": 5.0, "GET /cart": 5.0})))
    cause = j.findings[0]  # type: ignore[attr-defined]
    assert cause.category == "saturation-errors" and "2 endpoints fail with the same error" in cause.title
    assert "http-503" in cause.title
    assert all(f.caused_by == cause.id for f in j.findings if f.category == "slo-errors")  # type: ignore[attr-defined]


def test_without_a_probe_the_symptoms_stay_as_they_are() -> None:
    steady = collapsed({"GET /search": 2.5, "GET /item": 10.0}, ms=900.0, offered=20.0)
    j = audit(tier(GOAL, steady=steady, integrity=integrity_result()))
    assert all(f.caused_by is None for f in j.findings)  # type: ignore[attr-defined]
    assert sum(f.category == "slo-latency" for f in j.findings) == 2  # type: ignore[attr-defined]
