"""The verdict engine, rule by rule and boundary by boundary.

Each test builds a healthy audit (READY) and changes one thing, so the test reads as the rule.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest
from factories import (
    T0,
    capacity_estimate,
    endpoint,
    endpoint_trend,
    error_sample,
    falsified_property,
    gate_result,
    integrity_result,
    latency_summary,
    noise_floor,
    phase,
    properties_result,
    replayed_error,
    resource_series,
    tier,
    violation,
)

from harness.records import (
    CATEGORIES,
    CapacityEstimate,
    CapacityParams,
    EndpointMeasurement,
    GateResult,
    PhaseMeasurement,
    ResourceSample,
    TierResult,
    UslParameters,
)
from harness.verdict import (
    EndpointSlo,
    Judgement,
    ReproduceContext,
    VerdictPolicy,
    judge,
    lognormal_score,
    tier_status,
)

GOAL = 5000
POLICY = VerdictPolicy(
    default_slo=EndpointSlo(p95_ms=100.0, p99_ms=300.0),
    endpoint_slos={"GET /reports": EndpointSlo(p95_ms=800.0, p99_ms=1500.0)},
    max_error_rate=0.01,
    goal_customers=GOAL,
    endpoint_labels={"GET /patients": "Patient search"},
)
CTX = ReproduceContext(
    pack="scenarios/booking", profile="quick", target_url=None, started_by_harness=True
)


# --- builders: a healthy audit, changed one thing at a time -----------------------------------


def ep(
    name: str = "GET /items",
    *,
    requests: int = 2000,
    errors: int = 0,
    p95: float = 20.0,
    p99: float = 40.0,
    service_p95: float | None = None,
    reasons: dict[str, int] | None = None,
) -> EndpointMeasurement:
    latency = latency_summary(10.0, count=requests, p95_ms=p95, p99_ms=p99)
    service = latency_summary(
        10.0, count=requests, p95_ms=service_p95 or p95, p99_ms=service_p95 or p99
    )
    return endpoint(
        name,
        requests=requests,
        errors=errors,
        latency=latency,
        service=service,
        errors_by_reason=reasons,
    )


def steady(*endpoints: EndpointMeasurement, saturated: bool = False, **kw: Any) -> PhaseMeasurement:
    return phase(endpoints=endpoints or (ep(),), saturated=saturated, **kw)


def good_tier(n: int, steady_phase: PhaseMeasurement | None = None, **kw: Any) -> TierResult:
    kw.setdefault("integrity", integrity_result())
    return tier(n, steady=steady_phase or steady(), **kw)


def capacity(headroom: float | None = 2.0, **kw: Any) -> CapacityEstimate:
    est = capacity_estimate(None if headroom is None else headroom * GOAL, goal=GOAL)
    return dataclasses.replace(est, **kw)


def usl_fit(
    sigma: float, kappa: float, n_max: float, *, sigma_se: float | None = None, **params: Any
) -> CapacityParams:
    """An estimate's params with a USL fit (λ does not enter the verdict)."""
    usl = UslParameters(sigma=sigma, kappa=kappa, lam=100.0, sigma_se=sigma_se, n_max=n_max)
    return CapacityParams(usl=usl, **params)


def run(
    *,
    gate: GateResult | None = None,
    props: Any = "default",
    tiers: Sequence[TierResult] | None = None,
    cap: Any = "default",
    trends: Sequence[Any] = (),
    floor: Any = None,
    policy: VerdictPolicy = POLICY,
    ctx: ReproduceContext = CTX,
    partial: bool = False,
    replace_tier: dict[int, TierResult] | None = None,
) -> Judgement:
    if tiers is None:
        tiers = [good_tier(n) for n in (50, 500, 5000)]
    if replace_tier:
        tiers = [replace_tier.get(t.customers, t) for t in tiers]
    return judge(
        gate=gate_result() if gate is None else gate,
        properties=properties_result() if props == "default" else props,
        tiers=tuple(tiers),
        capacity=capacity() if cap == "default" else cap,
        trends=tuple(trends),
        noise_floor=floor,
        policy=policy,
        reproduce=ctx,
        partial=partial,
    )


def categories(j: Judgement) -> list[str]:
    return [f.category for f in j.findings if f.severity != "info"]


def only(j: Judgement, category: str) -> Any:
    found = [f for f in j.findings if f.category == category]
    assert len(found) == 1, [f.id for f in j.findings]
    return found[0]


# --- the healthy baseline ---------------------------------------------------------------------


def test_healthy_audit_is_ready_with_only_informational_findings() -> None:
    j = run()
    assert j.verdict == "READY"
    assert j.ready_up_to == 5000
    assert categories(j) == []
    assert dict(j.tier_status) == {50: "passed", 500: "passed", 5000: "passed"}
    assert [f.category for f in j.findings] == ["throughput"]  # the capacity headline, info
    assert j.reasons[0].startswith("The regression gate passed")
    assert {s.area: s.score is not None for s in j.scores} == {
        "correctness": True,
        "robustness": True,
        "latency": True,
        "capacity": True,
        "integrity": True,
    }
    assert all(s.explanation.endswith(".") for s in j.scores)


# --- capacity headroom ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headroom", "verdict", "severity"),
    [
        (2.0, "READY", "info"),
        (1.5, "READY", "info"),  # exactly ready_headroom is enough
        (1.4999, "AT RISK", "medium"),
        (1.0, "AT RISK", "medium"),  # exactly the goal: reaches it, thin margin
        (0.9999, "NOT READY", "high"),
    ],
)
def test_headroom_boundaries(headroom: float, verdict: str, severity: str) -> None:
    j = run(cap=capacity(headroom))
    assert j.verdict == verdict
    assert only(j, "throughput").severity == severity


def test_capacity_below_goal_says_so_in_a_sentence() -> None:
    f = only(run(cap=capacity(0.5)), "throughput")
    assert f.title.startswith("The service can handle about 2500 customers")
    assert "below the goal of 5000" in f.title
    assert f.reproduce == "scaleready audit scenarios/booking --profile quick --only tier:5000"


@pytest.mark.parametrize(
    "cap",
    [
        None,
        capacity(None, method="none"),
        capacity(2.0, method="none"),
        capacity(2.0, confidence="none"),
    ],
)
def test_missing_capacity_is_inconclusive(cap: CapacityEstimate | None) -> None:
    j = run(cap=cap)
    assert j.verdict == "INCONCLUSIVE"
    assert any("Capacity could not be estimated" in r for r in j.reasons)
    assert next(s for s in j.scores if s.area == "capacity").score is None


# --- latency SLOs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p95", "p99", "status"),
    [
        (100.0, 300.0, "passed"),  # exactly at the SLO meets it
        (100.1, 40.0, "failed"),  # p95 just over
        (20.0, 300.1, "failed"),  # p99 just over
    ],
)
def test_latency_slo_boundaries(p95: float, p99: float, status: str) -> None:
    t = good_tier(500, steady(ep(p95=p95, p99=p99)))
    assert tier_status(t, POLICY)[0] == status


def test_slo_latency_finding_is_per_endpoint_per_tier_and_reproducible() -> None:
    slow = good_tier(500, steady(ep("GET /items"), ep("GET /slots", p95=180.0)))
    j = run(replace_tier={500: slow})
    assert j.verdict == "NOT READY"
    f = only(j, "slo-latency")
    assert f.id == "slo-latency:500:get-slots"
    assert (f.tier, f.endpoint, f.severity) == (500, "GET /slots", "high")
    assert "1 request in 20 takes longer than 180 ms, over its 100 ms limit" in f.title
    assert f.reproduce == "scaleready audit scenarios/booking --profile quick --only tier:500"
    assert f.evidence["p95_ms"] == 180.0 and f.evidence["slo_p95_ms"] == 100.0


def test_not_ready_names_the_first_failing_tier_and_ready_up_to_the_last_passing() -> None:
    slow = good_tier(500, steady(ep(p95=180.0)))
    skipped = tier(5000, status="skipped", reason="an earlier tier failed")
    j = run(replace_tier={500: slow, 5000: skipped})
    assert j.verdict == "NOT READY"  # a failure on valid evidence beats the skipped tier
    assert j.ready_up_to == 50
    assert (
        j.reasons[0]
        == "The first tier to fail is 500 customers: GET /items p95 was 180 ms, over its 100 ms SLO."
    )
    assert dict(j.tier_status) == {50: "passed", 500: "failed", 5000: "skipped"}


def test_per_endpoint_slo_overrides_the_default() -> None:
    t = good_tier(500, steady(ep("GET /reports", p95=700.0, p99=1200.0)))
    assert tier_status(t, POLICY)[0] == "passed"


def test_queueing_versus_slow_handler_is_explained() -> None:
    queued = run(replace_tier={500: good_tier(500, steady(ep(p95=180.0, service_p95=20.0)))})
    slow = run(replace_tier={500: good_tier(500, steady(ep(p95=180.0, service_p95=170.0)))})
    assert "waited before being served" in only(queued, "slo-latency").detail
    assert "missing index" in only(slow, "slo-latency").detail


@pytest.mark.parametrize(
    ("customers", "requests", "p50", "status", "note"),
    [
        (500, 999, 9.0, "passed", "p99 of GET /items was not judged"),  # p99 needs 1000
        (500, 1000, 9.0, "failed", None),
        (500, 199, 9.0, "passed", "p95 of GET /items was not judged"),  # small tier: noted
        (500, 199, 101.0, "failed", None),  # ...but a median over the p95 limit is gross
        (500, 9, 900.0, "passed", "p95 of GET /items was not judged"),  # too few even for that
        (5000, 199, 9.0, "invalid", None),  # the goal tier must have enough for a p95
    ],
)
def test_too_few_requests_are_not_judged_and_say_why(
    customers: int, requests: int, p50: float, status: str, note: str | None
) -> None:
    latency = latency_summary(10.0, count=requests, p50_ms=p50, p95_ms=max(20.0, p50), p99_ms=900.0)
    e = endpoint("GET /items", requests=requests, latency=latency, service=latency)
    t = good_tier(customers, steady(e))
    assert tier_status(t, POLICY)[0] == status
    if note:
        j = run(replace_tier={customers: t})
        assert any(note in r and "at least 10 requests slower" in r for r in j.reasons)


def test_the_judgement_records_which_percentiles_each_endpoint_was_judged_on() -> None:
    # What a report needs to say what a passed tier's pass rests on (records.SloCheck).
    endpoints = (ep("GET /a", requests=1500), ep("GET /b", requests=300), ep("GET /c", requests=40),
                 ep("GET /d", requests=3))  # fmt: skip
    j = run(replace_tier={50: good_tier(50, steady(*endpoints)), 500: good_tier(500, steady(saturated=True))})
    assert [(c.endpoint, c.requests, c.percentiles) for c in j.tier_checks[50]] == [
        ("GET /a", 1500, ("p95", "p99")), ("GET /b", 300, ("p95",)), ("GET /c", 40, ("p50",)), ("GET /d", 3, ()),
    ]  # fmt: skip
    assert 500 not in j.tier_checks  # a spoiled window is not judged at all
    assert j.tier_status[50] == "passed"


def test_gross_median_failure_reads_plainly() -> None:
    latency = latency_summary(10.0, count=50, p50_ms=150.0, p95_ms=300.0, p99_ms=400.0)
    t = good_tier(50, steady(endpoint("GET /slots", requests=50, latency=latency, service=latency)))
    f = only(run(replace_tier={50: t}), "slo-latency")
    assert "half of its requests take longer than 150 ms, over its 100 ms limit" in f.title


# --- noise floor ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p95", "raised"),
    [
        (101.0, False),  # 1.0 ms over, floor 1.5 ms: within the harness's own noise
        (101.4, False),
        (101.5, True),  # excess equal to the floor is raised
        (130.0, True),
    ],
)
def test_noise_floor_suppresses_small_excesses(p95: float, raised: bool) -> None:
    floor = noise_floor(p99_ms=2.5)  # 2.5 ms p99 against a 1 ms null server: 1.5 ms overhead
    assert floor.p99_overhead_ms == pytest.approx(1.5)
    j = run(replace_tier={500: good_tier(500, steady(ep(p95=p95)))}, floor=floor)
    assert ("slo-latency" in categories(j)) is raised
    assert j.verdict == ("NOT READY" if raised else "READY")
    if not raised:
        assert any("noise floor" in r and "not raised" in r for r in j.reasons)


# --- error budget -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errors", "status"),
    [
        (0, "passed"),
        (20, "passed"),  # exactly 1 % of 2000: at the budget passes
        (21, "failed"),
    ],
)
def test_error_rate_boundary(errors: int, status: str) -> None:
    t = good_tier(500, steady(ep(requests=2000, errors=errors)))
    assert tier_status(t, POLICY)[0] == status


def test_slo_errors_finding_explains_the_kind_of_errors() -> None:
    bad = steady(ep(requests=2000, errors=100, reasons={"timeout": 90, "http-500": 10}))
    f = only(run(replace_tier={5000: good_tier(5000, bad)}), "slo-errors")
    assert f.id == "slo-errors:5000:get-items"
    assert "5% failed, over the 1% budget" in f.title
    assert "timeouts" in f.detail


@pytest.mark.parametrize(
    ("requests", "errors", "status"),
    [
        (50, 4, "passed"),  # 8 % of 50, but 4 errors is not enough evidence alone
        (50, 5, "failed"),  # 5 errors where the budget allows under 1
    ],
)
def test_small_endpoints_need_enough_errors(requests: int, errors: int, status: str) -> None:
    t = good_tier(500, steady(ep("GET /items"), ep("POST /rare", requests=requests, errors=errors)))
    assert tier_status(t, POLICY)[0] == status


# --- generator saturation ---------------------------------------------------------------------


def test_saturated_generator_makes_it_inconclusive_never_a_latency_failure() -> None:
    saturated = good_tier(5000, steady(ep(p95=900.0), saturated=True), status="invalid")
    j = run(replace_tier={5000: saturated})
    assert j.verdict == "INCONCLUSIVE"
    assert j.tier_status[5000] == "invalid"
    assert "slo-latency" not in categories(j)
    f = only(j, "generator-saturated")
    assert "--workers 2" in f.detail and "another machine" in f.detail
    assert f.reproduce.endswith("--only tier:5000 --workers 2")
    assert j.ready_up_to == 500


@pytest.mark.parametrize(("service_p50", "verdict"), [(2000.0, "NOT READY"), (250.0, "INCONCLUSIVE")])
def test_slowness_a_saturated_generator_cannot_explain_is_the_targets(service_p50: float, verdict: str) -> None:
    # The saturated generator's loop lagged at most 200 ms (factories.generator_health): a median
    # service time of 2 s is the target's own; 250 ms could be 100 ms of target and 150 of lag.
    slow = EndpointMeasurement(
        name="GET /items", requests=2000, errors=0, errors_by_reason={},
        latency=latency_summary(service_p50, count=2000, p50_ms=service_p50),
        service=latency_summary(service_p50, count=2000, p50_ms=service_p50),
        latency_hdr="", service_hdr="",
    )
    t = good_tier(5000, steady(slow, saturated=True), status="invalid")
    j = run(replace_tier={5000: t})
    assert j.verdict == verdict
    assert ("slo-latency" in categories(j)) is (verdict == "NOT READY")
    if verdict == "NOT READY":
        assert "never lagged more than 200 ms" in only(j, "slo-latency").detail


def test_server_errors_on_a_saturated_tier_still_fail_it() -> None:
    t = good_tier(5000, steady(ep(requests=2000, errors=200), saturated=True), status="invalid")
    j = run(replace_tier={5000: t})
    assert j.verdict == "NOT READY"
    assert only(j, "slo-errors").title.endswith("got server errors or malformed answers, over the 1% budget")


def test_saturated_workers_suggestion_doubles_existing_workers() -> None:
    from factories import generator_health

    gen = generator_health(True, workers=3)
    t = good_tier(5000, steady(generator=gen), status="invalid")
    assert "--workers 6" in only(run(replace_tier={5000: t}), "generator-saturated").reproduce


# --- a busy machine ---------------------------------------------------------------------------


def busy(**overrides: Any) -> Any:
    from factories import generator_health

    values: dict[str, Any] = {"crowded": True, "other_cpu_pct": 130.0, "machine_cpu_pct": 200.0,
                              "reasons": ("Other work on this machine used 130% of a core",)}  # fmt: skip
    return generator_health(**{**values, **overrides})


def test_a_window_that_met_its_slos_on_a_busy_machine_counts_as_an_upper_bound() -> None:
    # Other work only adds latency: 20 ms measured with it means 20 ms or less without it.
    j = run(replace_tier={5000: good_tier(5000, steady(generator=busy()))})
    assert j.verdict == "READY"
    assert j.tier_status[5000] == "passed"
    assert "generator-saturated" not in categories(j)
    assert any("the machine was busy (other work used 130% of a core)" in n and "upper bound" in n
               for n in j.reasons)  # fmt: skip


def test_a_window_that_missed_its_slos_on_a_busy_machine_is_inconclusive_not_a_failure() -> None:
    slow = good_tier(5000, steady(ep(p95=900.0), generator=busy(steal_pct=14.0)))
    j = run(replace_tier={5000: slow})
    assert j.verdict == "INCONCLUSIVE"
    assert j.tier_status[5000] == "invalid"
    assert "slo-latency" not in categories(j)
    f = only(j, "generator-saturated")
    assert "missed its SLOs while the machine was busy" in f.title
    assert "other work used 130% of a core, the hypervisor stole 14%" in f.title
    assert "--workers" not in f.reproduce  # more load processes would not help


@pytest.mark.parametrize(
    ("reasons", "verdict"),
    [
        ({"invalid-json": 100, "wrong-content-type": 100}, "NOT READY"),  # the target's own answers
        ({"oversized": 200}, "NOT READY"),
        ({"timeout": 100, "connection": 100}, "INCONCLUSIVE"),  # lateness can cause these
        ({"http-401": 200}, "INCONCLUSIVE"),  # a credential may age while a busy run drags on
    ],
)
def test_malformed_answers_fail_a_tier_on_a_busy_machine_and_timeouts_do_not(
    reasons: dict[str, int], verdict: str
) -> None:
    broken = ep(requests=2000, errors=200, p95=900.0, reasons=reasons)
    j = run(replace_tier={5000: good_tier(5000, steady(broken, generator=busy(steal_pct=14.0)))})
    assert j.verdict == verdict
    assert ("slo-errors" in categories(j)) is (verdict == "NOT READY")
    if verdict == "NOT READY":
        assert "malformed answers" in only(j, "slo-errors").title


def kept_waiting(**overrides: Any) -> Any:
    """The machine kept the generator off the CPU (its loop ran up to 300 ms late) while the other
    work measured was small: the harness's own target took the CPU."""
    return busy(**{"other_cpu_pct": 1.0, "cpu_wait_pct": 22.0, "loop_lag_max_ms": 300.0,
                   "crowded_by": ("cpu-wait",), "reasons": ("event loop ran late while it waited",),
                   **overrides})  # fmt: skip


@pytest.mark.parametrize(
    ("p95", "health", "verdict"),
    [
        (10_000.0, {}, "NOT READY"),  # 9.9 s over: twice 300 ms of lateness cannot explain it
        (500.0, {}, "INCONCLUSIVE"),  # 400 ms over: it could be the generator's lateness
        (10_000.0, {"other_cpu_pct": None}, "INCONCLUSIVE"),  # whose CPU it was is unknown
        (10_000.0, {"crowded_by": ("cpu-wait", "steal"), "steal_pct": 14.0}, "INCONCLUSIVE"),  # paused the target too
    ],
)
def test_a_miss_larger_than_a_busy_machine_could_add_to_the_generators_timing_is_the_targets(
    p95: float, health: dict[str, Any], verdict: str
) -> None:
    slow = good_tier(5000, steady(ep(p95=p95, p99=p95), generator=kept_waiting(**health)))
    j = run(replace_tier={5000: slow})
    assert j.verdict == verdict
    assert ("slo-latency" in categories(j)) is (verdict == "NOT READY")
    if verdict == "NOT READY":
        assert any("larger than twice that, the most it could add" in n for n in j.reasons)


def test_a_pool_a_slow_target_filled_is_judged_on_its_service_time_on_a_machine_it_kept_busy() -> None:
    # The target took both cores, the pool filled with users waiting on it (iterations dropped:
    # saturated), and the generator's loop ran late for want of a CPU. Its median service time of
    # 10 s is still 9.7 s more than the lateness could add.
    slow = EndpointMeasurement(
        name="GET /items", requests=2000, errors=0, errors_by_reason={},
        latency=latency_summary(10_000.0, count=2000, p50_ms=10_000.0),
        service=latency_summary(10_000.0, count=2000, p50_ms=10_000.0),
        latency_hdr="", service_hdr="",
    )
    gen = kept_waiting(saturated=True, reasons=("446 of 5400 iterations could not start",))
    t = good_tier(5000, steady(slow, generator=gen), status="invalid")
    j = run(replace_tier={5000: t})
    assert j.verdict == "NOT READY"
    assert "never lagged more than 300 ms" in only(j, "slo-latency").detail
    behind = only(j, "generator-saturated")  # said, but not as if the tier told nothing
    assert behind.severity == "low" and "larger than anything the generator could add" in behind.title


def test_a_busy_machine_does_not_excuse_server_errors() -> None:
    erring = good_tier(5000, steady(ep(requests=2000, errors=200, reasons={"http-500": 200}), generator=busy()))
    j = run(replace_tier={5000: erring})
    assert j.verdict == "NOT READY"
    assert "slo-errors" in categories(j)


def test_thin_headroom_where_the_next_load_missed_on_a_busy_machine_is_unknown_not_thin() -> None:
    params = CapacityParams(unmeasured_customers=7500.0, unmeasured_rps=300.0)
    j = run(cap=capacity(1.2, method="lower-bound", params=params))
    assert j.verdict == "INCONCLUSIVE"
    assert any("measured only up to 1.20x the goal" in r for r in j.reasons)
    f = only(j, "throughput")
    assert f.severity == "info" and "was measured on a busy machine" in f.title
    # Without such a load, the same floor is thin headroom, AT RISK.
    assert run(cap=capacity(1.2, method="lower-bound")).verdict == "AT RISK"
    # A floor at the margin needs nothing more.
    assert run(cap=capacity(1.6, method="lower-bound", params=params)).verdict == "READY"


def test_a_floor_below_the_goal_with_nothing_measured_failing_is_missing_evidence_not_a_failure() -> None:
    # An audit stopped (Ctrl-C, --deadline) after a small tier: the floor it measured is below
    # the goal only because the goal's load was never offered.
    j = run(cap=capacity(0.5, method="lower-bound"))
    assert j.verdict == "INCONCLUSIVE"
    assert "never offered" in only(j, "throughput").title
    # A measured failure above the floor is evidence: below the goal, NOT READY.
    j = run(cap=capacity(0.5, method="lower-bound", params=CapacityParams(ceiling_customers=3000.0)))
    assert j.verdict == "NOT READY"


def test_thin_headroom_where_the_packs_max_rps_stopped_the_load_is_unknown_not_thin() -> None:
    j = run(cap=capacity(1.2, method="lower-bound", params=CapacityParams(max_rps_customers=6000.0)))
    assert j.verdict == "INCONCLUSIVE"
    f = only(j, "throughput")
    assert "the pack's max_rps kept the load at 6000 customers' traffic" in f.title
    assert any("measured only up to 1.20x" in r for r in j.reasons)


# --- integrity --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "category"),
    [
        ("lost-write", "integrity-lost-write"),
        ("resurrected", "integrity-lost-write"),
        ("half-written", "integrity-lost-write"),
        ("duplicate", "integrity-duplicate"),
        ("isolation-leak", "isolation-leak"),
    ],
)
def test_integrity_violation_beats_great_latency(kind: str, category: str) -> None:
    fast = steady(ep(p95=2.0, p99=3.0))
    t = good_tier(500, fast, integrity=integrity_result([violation(kind)]))
    j = run(replace_tier={500: t})
    assert j.verdict == "NOT READY"
    assert j.tier_status[500] == "failed"
    f = only(j, category)
    assert f.severity == "critical" and f.id == f"{category}:500"
    assert next(s for s in j.scores if s.area == "integrity").score == 0.0


def test_integrity_violation_on_a_saturated_tier_is_still_not_ready() -> None:
    t = good_tier(
        5000,
        steady(saturated=True),
        status="invalid",
        integrity=integrity_result([violation("duplicate")]),
    )
    j = run(replace_tier={5000: t}, partial=True)
    assert j.verdict == "NOT READY"
    assert "integrity-duplicate" in categories(j)


def test_integrity_not_checked_is_missing_evidence() -> None:
    j = run(replace_tier={5000: good_tier(5000, integrity=None)})
    assert j.verdict == "INCONCLUSIVE"
    assert j.tier_status[5000] == "invalid"
    assert "integrity check did not run" in j.reasons[0]
    lenient = dataclasses.replace(POLICY, require_integrity=False)
    assert (
        run(replace_tier={5000: good_tier(5000, integrity=None)}, policy=lenient).verdict == "READY"
    )


# --- gate and properties ----------------------------------------------------------------------


def test_gate_failure_names_the_failing_tests() -> None:
    j = run(gate=gate_result(failed=["test_booking_cancel", "test_slot_listing"]))
    assert j.verdict == "NOT READY"
    f = only(j, "regression")
    assert "test_booking_cancel" in f.title and "test_slot_listing" in f.title
    assert f.reproduce == "scaleready audit scenarios/booking --profile quick --only gate"
    assert j.reasons[0].startswith("The regression gate failed: 2 test(s)")
    assert next(s for s in j.scores if s.area == "correctness").score == 50.0


def test_a_failing_test_is_shown_by_its_assertion_message_not_its_traceback_tail() -> None:
    message = (
        "AssertionError: the total of the parts should be 61\nassert 60 == 61\n"
        "def test_total():\nE       +  where 60 = sum([3, 3, 3, ...])\n\ntest_g.py:4: AssertionError"
    )
    failed = gate_result(failed=["test_total"]).cases[-1]
    case = dataclasses.replace(failed, message=message, headline="AssertionError: the total of the parts should be 61")
    j = run(gate=gate_result(failed=["test_total"], cases=[case]))
    detail = only(j, "regression").detail
    assert "- test_total: AssertionError: the total of the parts should be 61\n" in detail
    assert "where 60" not in detail


def test_property_falsified_reports_the_minimal_example_and_replay() -> None:
    fp = falsified_property("test_no_5xx_on_any_input", example="create_booking(slot_id=-1)")
    j = run(props=properties_result(falsified=[fp]))
    assert j.verdict == "NOT READY"
    f = only(j, "property")
    assert "create_booking(slot_id=-1)" in f.detail
    assert fp.reproduce in f.detail
    assert f.reproduce == "scaleready audit scenarios/booking --profile quick --only properties"
    assert f.id == "property:test-no-5xx-on-any-input"


@pytest.mark.parametrize(
    ("gate", "props"),
    [
        ("none", "default"),
        ("skipped", "default"),
        ("error", "default"),
        ("default", None),
    ],
)
def test_stage_that_did_not_run_is_inconclusive(gate: str, props: Any) -> None:
    g = gate_result()
    gate_rec = {
        "none": None,
        "skipped": dataclasses.replace(g, status="skipped"),
        "error": dataclasses.replace(g, status="error", output_tail="ImportError: x"),
        "default": g,
    }[gate]
    j = judge(
        gate=gate_rec,
        properties=properties_result() if props == "default" else props,
        tiers=tuple(good_tier(n) for n in (50, 500, 5000)),
        capacity=capacity(),
        trends=(),
        noise_floor=None,
        policy=POLICY,
        reproduce=CTX,
    )
    assert j.verdict == "INCONCLUSIVE"


# --- precedence: partial runs, missing tiers, tiers beyond the goal ---------------------------


@pytest.mark.parametrize(
    ("partial", "failing", "verdict"),
    [
        (True, False, "INCONCLUSIVE"),
        (True, True, "NOT READY"),  # valid evidence of failure beats the missing rest
    ],
)
def test_partial_audit(partial: bool, failing: bool, verdict: str) -> None:
    replace = {500: good_tier(500, steady(ep(p95=400.0)))} if failing else None
    assert run(partial=partial, replace_tier=replace).verdict == verdict


def test_no_tier_at_the_goal_is_inconclusive() -> None:
    j = run(tiers=[good_tier(50), good_tier(500)])
    assert j.verdict == "INCONCLUSIVE"
    assert any("No tier reached the goal" in r for r in j.reasons)


def test_failure_beyond_the_goal_is_at_risk_not_a_failure() -> None:
    tiers = [good_tier(n) for n in (50, 500, 5000)] + [good_tier(10000, steady(ep(p95=400.0)))]
    j = run(tiers=tiers)
    assert j.verdict == "AT RISK"
    assert only(j, "slo-latency").severity == "medium"
    assert j.ready_up_to == 5000


def test_missing_evidence_beats_at_risk() -> None:
    j = run(cap=capacity(1.2), replace_tier={5000: tier(5000, status="skipped", reason="x")})
    assert j.verdict == "INCONCLUSIVE"


# --- target availability ----------------------------------------------------------------------


def _conn_steady(aborted: str | None = "target unreachable") -> PhaseMeasurement:
    return steady(
        ep(requests=2000, errors=1500, reasons={"connection": 1400, "timeout": 100}),
        aborted=aborted,
    )


def test_target_gone_under_nominal_load_is_not_ready() -> None:
    t = good_tier(
        500,
        _conn_steady(),
        status="invalid",
        reason="the target stopped answering: its process exited during the load",
    )
    j = run(replace_tier={500: t})
    assert j.verdict == "NOT READY"
    f = only(j, "target-unavailable")
    assert f.severity == "critical"
    assert "slo-errors" not in categories(j)  # the crash explains the errors
    assert next(s for s in j.scores if s.area == "robustness").score == 0.0


def test_target_crashing_in_a_stress_step_is_at_risk() -> None:
    crash = phase(
        "stress",
        label="stress x3",
        offered_rps=300.0,
        endpoints=(ep(requests=2000, errors=1500, reasons={"connection": 1500}),),
        aborted="target exited",
    )
    t = good_tier(
        5000,
        stress=[crash],
        status="invalid",
        reason="the target stopped answering: its process exited during the load",
    )
    j = run(replace_tier={5000: t})
    assert j.verdict == "AT RISK"
    assert j.tier_status[5000] == "passed"  # its steady window was measured before the crash
    f = only(j, "target-unavailable")
    assert f.severity == "medium" and "stress x3" in f.detail


def test_target_exiting_while_provisioning_is_a_failure() -> None:
    t = tier(
        5000,
        status="invalid",
        reason="the target exited while provisioning; only 3000 of 5000 customers could be provisioned",
    )
    j = run(replace_tier={5000: t})
    assert j.verdict == "NOT READY"
    assert "target-unavailable" in categories(j)


def test_interrupted_tier_is_invalid_without_judging_it() -> None:
    t = good_tier(
        5000, steady(ep(p95=900.0)), status="invalid", reason="interrupted during the load"
    )
    assert tier_status(t, POLICY) == ("invalid", "Interrupted during the load.")


# --- replayed server errors -------------------------------------------------------------------


def test_request_failing_even_alone_is_a_bug() -> None:
    t = good_tier(500, replayed_errors=[replayed_error("GET /patients", still_failing=True)])
    j = run(replace_tier={500: t})
    assert j.verdict == "NOT READY"
    f = only(j, "property")
    assert f.id == "property:500:get-patients:replay"
    assert f.title.startswith("Patient search fails with a server error even on its own")


def test_errors_passing_alone_within_budget_are_at_risk() -> None:
    t = good_tier(500, replayed_errors=[replayed_error(still_failing=False, at=T0 + 30)])
    j = run(replace_tier={500: t})
    assert j.verdict == "AT RISK"
    assert only(j, "saturation-errors").severity == "medium"


def test_errors_passing_alone_over_budget_explain_the_slo_errors() -> None:
    bad = steady(ep(requests=2000, errors=100))
    t = good_tier(500, bad, replayed_errors=[replayed_error(still_failing=False)])
    j = run(replace_tier={500: t})
    assert j.verdict == "NOT READY"
    assert only(j, "saturation-errors").severity == "high"
    assert "slo-errors" in categories(j)


def test_errors_during_stress_steps_are_the_probe_doing_its_job() -> None:
    after = T0 + 60 + 10  # the steady window is T0 .. T0+60
    t = good_tier(500, replayed_errors=[replayed_error(still_failing=False, at=after)])
    assert run(replace_tier={500: t}).verdict == "READY"


# --- data-volume trends -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("growth", "breaks_at", "verdict"),
    [
        ("linear", 9000.0, "AT RISK"),
        ("super-linear", 6000.0, "AT RISK"),
        ("linear", 10000.0, "READY"),  # exactly 2x the goal: not "before" it (a low finding)
        ("linear", 11000.0, "READY"),
        ("linear", None, "READY"),
        ("sub-linear", 6000.0, "AT RISK"),  # slower growth still crosses the SLO: where it does decides
        ("flat", 6000.0, "READY"),  # flat never breaks, whatever a fit said
    ],
)
def test_trend_breaking_before_twice_the_goal(
    growth: str, breaks_at: float | None, verdict: str
) -> None:
    trend = endpoint_trend(
        "GET /patients",
        growth_class=growth,
        breaks_at=breaks_at,
        points=((50, 5.0), (500, 9.0), (5000, 48.0)),
    )
    assert run(trends=[trend]).verdict == verdict


def test_trend_title_reads_like_the_spec() -> None:
    trend = endpoint_trend(
        "GET /patients",
        growth_class="linear",
        breaks_at=11342.0,
        points=((50, 5.0), (500, 9.0), (5000, 48.0)),
    )
    j = run(trends=[trend])
    f = only(j, "data-volume-scaling")
    assert (j.verdict, f.severity) == ("READY", "low")  # beyond 2x the goal: noted, not decisive
    assert f.title == (
        "Patient search gets slower as you add customers: at 5000 it takes 48 ms and will break "
        "its 100 ms SLO at about 11000"
    )
    assert "index" in f.detail
    assert f.id == "data-volume-scaling:get-patients"


def test_headroom_just_short_of_the_threshold_never_reads_as_the_threshold() -> None:
    f = only(run(cap=capacity(1.47)), "throughput")
    assert "only 1.47x the goal" in f.title and "less than the 1.5x margin" in f.title
    assert "only 1.2x the goal" in only(run(cap=capacity(1.2)), "throughput").title


# --- resource leak ----------------------------------------------------------------------------


def _with_rss(series: Sequence[float]) -> list[TierResult]:
    third = len(series) // 3
    chunks = [series[:third], series[third : 2 * third], series[2 * third :]]
    out, start = [], 0
    for n, chunk in zip((50, 500, 5000), chunks, strict=True):
        out.append(good_tier(n, resources=resource_series(chunk, start_requests=start)))
        start += len(chunk) * 5000
    return out


LINEAR = [200.0 + 3.0 * i for i in range(30)]  # 3 MB per 5000 requests = 6 MB / 10k
PLATEAU = [200.0 + 80.0 * (1 - math.exp(-i / 2)) for i in range(30)]  # caches warm, then flat
NOISY_FLAT = [200.0 + (5.0 if i % 2 else -5.0) for i in range(30)]
SLOW = [200.0 + 0.2 * i for i in range(30)]  # 0.4 MB / 10k: under the threshold
STEP = [200.0] * 15 + [260.0] * 15  # one cache filled mid-run
# 15 MB over the fitted span, under the 20 MB that any good line needs: a leak only when straight.
SHORT_STRAIGHT = [200.0 + 0.79 * i for i in range(30)]  # R^2 1.0
SHORT_BENT = [v + (1.0 if i % 2 else -1.0) for i, v in enumerate(SHORT_STRAIGHT)]  # R^2 0.86


@pytest.mark.parametrize(
    ("series", "leak"),
    [(LINEAR, True), (PLATEAU, False), (NOISY_FLAT, False), (SLOW, False), (STEP, False),
     (SHORT_STRAIGHT, True), (SHORT_BENT, False)],
    ids=["linear", "plateau", "noisy-flat", "slow", "step", "short-straight", "short-bent"],
)
def test_resource_leak_only_for_steady_linear_growth(series: list[float], leak: bool) -> None:
    j = run(tiers=_with_rss(series))
    assert ("resource-leak" in categories(j)) is leak
    assert j.verdict == ("NOT READY" if leak else "READY")


def test_resource_leak_evidence_and_counter_resets() -> None:
    # Per-tier counters that restart at zero are made cumulative.
    tiers = [
        good_tier(n, resources=resource_series(LINEAR[i * 10 : (i + 1) * 10], start_requests=5000))
        for i, n in enumerate((50, 500, 5000))
    ]
    f = only(run(tiers=tiers), "resource-leak")
    assert f.evidence["mb_per_10k_requests"] == pytest.approx(6.0)
    assert f.evidence["r2"] == pytest.approx(1.0)
    assert "MB per 10000 requests" in f.title


PHASE_S = 60.0


def _loads(customers: int, rss_by_phase: Sequence[Sequence[float]], start_requests: int) -> TierResult:
    """A tier whose steady window and stress steps (60 s each, one after the other) each carry
    the RSS samples given, one every 5000 requests served."""
    phases = [phase("steady" if k == 0 else "stress", label=None if k == 0 else f"stress x{k + 1}",
                    started_at=T0 + k * PHASE_S, duration_s=PHASE_S) for k in range(len(rss_by_phase))]  # fmt: skip
    samples, served = [], start_requests
    for k, rss in enumerate(rss_by_phase):
        for j, mb in enumerate(rss):
            at = T0 + k * PHASE_S + (j + 0.5) * PHASE_S / len(rss)
            samples.append(ResourceSample(at=at, rss_mb=mb, cpu_pct=50.0, open_fds=40 + 20 * k, threads=8 + 10 * k,
                                          requests_so_far=served))  # fmt: skip
            served += 5000
    return good_tier(customers, phases[0], stress=phases[1:], resources=tuple(samples))


def _staircase(within_phase_mb: float) -> list[TierResult]:
    """Three tiers of four loads each; RSS steps up 10 MB with every load and grows
    ``within_phase_mb`` per 5000 requests while one load is served."""
    tiers, served = [], 0
    for t, n in enumerate((50, 500, 5000)):
        loads = [[200.0 + 40 * t + 10 * k + within_phase_mb * j for j in range(6)] for k in range(4)]
        tiers.append(_loads(n, loads, served))
        served += 4 * 6 * 5000
    return tiers


def test_memory_that_steps_up_with_each_load_and_holds_at_it_is_not_a_leak() -> None:
    # More requests at once take more threads, connections and buffers: bounded by the load.
    j = run(tiers=_staircase(within_phase_mb=0.0))
    assert "resource-leak" not in categories(j) and j.verdict == "READY"


def test_memory_that_grows_while_one_load_is_served_is_a_leak_whatever_its_steps() -> None:
    j = run(tiers=_staircase(within_phase_mb=3.0))
    f = only(j, "resource-leak")
    assert f.evidence["mb_per_10k_requests"] == pytest.approx(6.0)
    assert j.verdict == "NOT READY"


# --- USL contention and coherency -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sigma", "kappa", "n_max", "expected"),
    [
        (0.08, 0.0, 20.0, ["contention"]),
        (0.05, 0.0, 20.0, []),  # at the threshold: not raised
        (0.08, 0.01, 20.0, ["coherency"]),  # kappa*N = 0.2 > sigma; N* = 9.6 <= 2 x 20
        (0.01, 0.0001, 20.0, []),  # N* = 99 is far beyond 2 x 20
    ],
)
def test_usl_findings(sigma: float, kappa: float, n_max: float, expected: list[str]) -> None:
    cap = capacity(1.2, params=usl_fit(sigma, kappa, n_max))
    j = run(cap=cap)
    got = [f.category for f in j.findings if f.category in ("contention", "coherency")]
    assert got == expected
    assert all(f.severity == "medium" for f in j.findings if f.category in expected)
    assert j.verdict == "AT RISK"  # the headroom decides, not the explanation


@pytest.mark.parametrize(("headroom", "explained"), [(0.8, True), (1.3, True), (2.0, False)])
def test_a_measured_lower_bound_short_of_the_margin_is_explained_by_the_usl_coefficients(
    headroom: float, explained: bool
) -> None:
    # No phase past the knee: capacity is the measured floor (the next step failed), yet the
    # coefficients fitted to the same points still say why throughput flattens (a global lock
    # shows as sigma).
    failed_at = headroom * GOAL * 1.5
    cap = capacity(headroom, method="lower-bound",
                   params=usl_fit(0.5, 0.0, 30.0, ceiling_customers=failed_at))  # fmt: skip
    j = run(cap=cap)
    assert [f.category for f in j.findings if f.category == "contention"] == (["contention"] if explained else [])


@pytest.mark.parametrize(
    ("sigma", "sigma_se", "past_knee", "named"),
    [
        (0.68, 0.18, 1, True),  # a global lock on a fast machine: 3x headroom, yet serialised
        (0.68, 0.18, 0, False),  # no phase past the knee: the fit extrapolates, nothing to say
        (0.30, 0.14, 1, False),  # within two standard errors of the 0.05 threshold
    ],
)
def test_ample_headroom_still_names_a_contention_the_measurements_show_clearly(
    sigma: float, sigma_se: float, past_knee: int, named: bool
) -> None:
    params = usl_fit(sigma, 0.0003, 800.0, sigma_se=sigma_se, past_knee_points=past_knee)
    j = run(cap=capacity(3.0, method="lower-bound", params=params))
    found = [f for f in j.findings if f.category == "contention"]
    assert [f.severity for f in found] == (["low"] if named else [])
    assert j.verdict == "READY"  # named, not judged: the headroom decides


# --- commands, ids, categories, scores --------------------------------------------------------


def test_reproduce_names_the_target_when_the_harness_did_not_start_it() -> None:
    ctx = ReproduceContext(
        "scenarios/booking", "standard", "http://10.0.0.5:8000", False, "--seed 7"
    )
    j = run(ctx=ctx, replace_tier={500: good_tier(500, steady(ep(p95=400.0)))})
    assert only(j, "slo-latency").reproduce == (
        "scaleready audit scenarios/booking --profile standard --only tier:500 "
        "--target http://10.0.0.5:8000 --seed 7"
    )


def test_every_finding_uses_a_known_category_and_a_unique_id() -> None:
    tiers = [
        good_tier(
            50, integrity=integrity_result([violation("lost-write"), violation("duplicate")])
        ),
        good_tier(
            500,
            steady(ep("GET /a", p95=400.0, errors=500), ep("GET /b", p99=900.0)),
            replayed_errors=[
                replayed_error("GET /a", still_failing=True),
                replayed_error("GET /a", still_failing=False),
            ],
        ),
        good_tier(
            5000, steady(saturated=True), status="invalid", resources=resource_series(LINEAR)
        ),
    ]
    j = run(
        tiers=tiers,
        gate=gate_result(failed=["test_x"]),
        props=properties_result(falsified=[falsified_property()]),
        cap=capacity(0.8, params=usl_fit(0.2, 0.0, 10.0)),
        trends=[endpoint_trend(growth_class="super-linear", breaks_at=3000.0)],
    )
    assert j.verdict == "NOT READY"
    assert all(f.category in CATEGORIES for f in j.findings)
    ids = [f.id for f in j.findings]
    assert len(ids) == len(set(ids))
    ranks = ["critical", "high", "medium", "low", "info"]
    assert [ranks.index(f.severity) for f in j.findings] == sorted(
        ranks.index(f.severity) for f in j.findings
    )
    assert all(
        f.title and f.detail and f.reproduce.startswith("scaleready audit") for f in j.findings
    )


@pytest.mark.parametrize(("value", "score"), [(1.0, 0.5), (0.5, 0.9), (0.0, 1.0)])
def test_lognormal_score_control_points(value: float, score: float) -> None:
    assert lognormal_score(value, median=1.0, p10=0.5) == pytest.approx(score)


@pytest.mark.parametrize(
    ("p95", "low", "high"),
    [(50.0, 89.0, 91.0), (100.0, 49.0, 51.0), (200.0, 9.0, 11.0)],
)
def test_latency_score_follows_p95_against_slo(p95: float, low: float, high: float) -> None:
    floor = noise_floor(p99_ms=1000.0)  # keep the 200 ms case from failing the verdict
    j = run(replace_tier={5000: good_tier(5000, steady(ep(p95=p95)))}, floor=floor)
    score = next(s for s in j.scores if s.area == "latency").score
    assert score is not None and low <= score <= high


def test_scores_are_none_when_not_measured() -> None:
    j = judge(
        gate=None,
        properties=None,
        tiers=(),
        capacity=None,
        trends=(),
        noise_floor=None,
        policy=POLICY,
        reproduce=CTX,
    )
    assert j.verdict == "INCONCLUSIVE"
    assert j.ready_up_to is None
    assert all(s.score is None for s in j.scores)


def test_error_sample_is_quoted_in_the_errors_finding() -> None:
    bad = steady(ep(requests=2000, errors=100), error_samples=[error_sample("GET /items")])
    f = only(run(replace_tier={500: good_tier(500, bad)}), "slo-errors")
    assert "GET /items -> 500" in f.detail


def test_verdict_is_pure() -> None:
    code = (
        "import sys, harness.verdict, harness.validity; "
        "bad = {'locust', 'matplotlib', 'gevent', 'httpx'} & set(sys.modules); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("category", "severity", "verdict"),
    [
        ("baseline-regression", "high", "AT RISK"),  # a regression vs baseline is a risk
        ("slo-latency", "high", "NOT READY"),
        ("slo-latency", "medium", "AT RISK"),
        ("throughput", "info", "READY"),
    ],
)
def test_extra_findings_count_by_category_and_severity(
    category: str, severity: str, verdict: str
) -> None:
    from factories import finding

    extra = finding(category, severity=severity, id=f"{category}:history")  # type: ignore[arg-type]
    j = judge(
        gate=gate_result(),
        properties=properties_result(),
        tiers=tuple(good_tier(n) for n in (50, 500, 5000)),
        capacity=capacity(),
        trends=(),
        noise_floor=None,
        policy=POLICY,
        reproduce=CTX,
        extra_findings=[extra],
    )
    assert j.verdict == verdict
    assert extra in j.findings


def test_tier_reasons_give_one_sentence_per_tier() -> None:
    j = run(replace_tier={500: good_tier(500, steady(ep(p95=180.0)))})
    assert j.tier_reasons[50] == "Every endpoint met its SLOs and integrity held."
    assert j.tier_reasons[500] == "GET /items p95 was 180 ms, over its 100 ms SLO."


def _tiers_with_cpu(peak_cpu: float) -> list[TierResult]:
    """Three tiers whose largest has a stress step with the highest throughput, during which the
    target's processes used ``peak_cpu`` % CPU (its steady window used less)."""
    tiers = [good_tier(n) for n in (50, 500)]
    base = steady()
    step = phase("stress", offered_rps=150.0, label="stress x1.5", started_at=base.ended_at, duration_s=10.0)
    samples = [
        ResourceSample(at=base.started_at + i, rss_mb=60.0, cpu_pct=30.0, open_fds=40, threads=8)
        for i in range(1, int(base.ended_at - base.started_at))
    ] + [
        ResourceSample(at=step.started_at + i, rss_mb=60.0, cpu_pct=peak_cpu, open_fds=40, threads=8)
        for i in range(1, 11)
    ]
    return [*tiers, good_tier(5000, base, stress=[step], resources=samples)]


@pytest.mark.parametrize(("peak_cpu", "reading"), [(45.0, "waiting, not computing"), (98.0, "more worker processes")])
def test_contention_says_whether_the_target_was_waiting_or_computing_at_its_peak(
    peak_cpu: float, reading: str
) -> None:
    cap = capacity(1.2, params=usl_fit(0.5, 0.0, 30.0))
    f = only(run(cap=cap, tiers=_tiers_with_cpu(peak_cpu)), "contention")
    assert f.evidence["target_cpu_pct_at_peak"] == pytest.approx(peak_cpu)
    assert f.evidence["peak_phase"] == "stress x1.5 at 5000 customers"
    assert reading in f.detail


def test_contention_without_target_samples_says_nothing_about_cpu() -> None:
    cap = capacity(1.2, params=usl_fit(0.5, 0.0, 30.0))
    f = only(run(cap=cap), "contention")
    assert "target_cpu_pct_at_peak" not in f.evidence
    assert "CPU" not in f.detail
