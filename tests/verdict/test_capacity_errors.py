"""A capacity short of the margin because a load past it was refused with errors says so.

The capacity model stops below a step whose errors were over the budget (harness.capacity); the
capacity finding then names what refused that step when the measurements say: server errors that
passed when replayed alone are a bounded resource (a pool, a downstream's slots), not slowness.
"""

from __future__ import annotations

from factories import (
    T0,
    capacity_estimate,
    endpoint,
    gate_result,
    integrity_result,
    phase,
    properties_result,
    replayed_error,
    tier,
)

from harness.verdict import EndpointSlo, Judgement, ReproduceContext, VerdictPolicy, judge

GOAL = 5000
POLICY = VerdictPolicy(default_slo=EndpointSlo(p95_ms=100.0, p99_ms=300.0), endpoint_slos={},
                       max_error_rate=0.01, goal_customers=GOAL)  # fmt: skip
CTX = ReproduceContext(pack="pack", profile="quick", target_url=None, started_by_harness=True)


def _audit(still_failing: bool) -> Judgement:
    steady = phase(offered_rps=100.0, duration_s=30.0, endpoints=[
        endpoint("GET /quote", requests=1500), endpoint("POST /order", requests=1500)])  # fmt: skip
    stress = phase(label="stress x1.5", offered_rps=150.0, duration_s=10.0, started_at=T0 + 40.0, endpoints=[
        endpoint("GET /quote", requests=800, errors=80, errors_by_reason={"http-503": 80}),
        endpoint("POST /order", requests=700, errors=35, errors_by_reason={"http-503": 35}),
        endpoint("GET /user", requests=500),
    ])  # fmt: skip
    replays = [replayed_error(e, still_failing=still_failing, status=503, at=T0 + 45.0)
               for e in ("GET /quote", "POST /order")]  # fmt: skip
    goal_tier = tier(GOAL, steady=steady, stress=[stress], integrity=integrity_result(), replayed_errors=replays)
    return judge(gate=gate_result(), properties=properties_result(), tiers=(goal_tier,),
                 capacity=capacity_estimate(6000.0, goal=GOAL), trends=(), noise_floor=None,
                 policy=POLICY, reproduce=CTX)  # fmt: skip


def test_thin_headroom_from_errors_that_pass_alone_names_a_resource_with_fixed_slots() -> None:
    j = _audit(still_failing=False)
    capacity = next(f for f in j.findings if f.id == "throughput:capacity")
    assert capacity.severity == "medium" and "only 1.2x the goal" in capacity.title
    assert ("stress x1.5 at 5000 customers, 150 iterations/s offered) failed because GET /quote, POST /order "
            "answered http-503 to 7.7% of their requests") in capacity.detail
    assert "a fixed number of requests at once" in capacity.detail and "contention and coherency" not in capacity.detail
    assert capacity.evidence["shed_errors"]["endpoints"] == ["GET /quote", "POST /order"]  # type: ignore[index]


def test_errors_that_fail_alone_too_are_bugs_not_a_full_resource() -> None:
    j = _audit(still_failing=True)
    capacity = next(f for f in j.findings if f.id == "throughput:capacity")
    assert "a fixed number of requests at once" not in capacity.detail and "shed_errors" not in capacity.evidence
