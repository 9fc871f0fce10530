"""Customers the service could not create are a finding, with its answers and the true counts."""

from __future__ import annotations

import dataclasses

from factories import gate_result, integrity_result, phase, properties_result, tier

from harness.records import ProvisioningResult, TierResult
from harness.verdict import EndpointSlo, ReproduceContext, VerdictPolicy, judge

POLICY = VerdictPolicy(default_slo=EndpointSlo(p95_ms=100.0, p99_ms=300.0), endpoint_slos={},
                       max_error_rate=0.01, goal_customers=50)  # fmt: skip
CTX = ReproduceContext(pack="pack", profile="quick", target_url=None, started_by_harness=True)
LOCKED = "customer 13: POST /signup answered 500: database is locked"


def provisioned(present: int, failed: int, retried: int = 0) -> TierResult:
    prov = ProvisioningResult(customers=present, created=present, failed=failed, duration_s=3.0, rate_per_s=10.0,
                              errors=(LOCKED,) * min(failed, 3), wanted=50, retried=retried)  # fmt: skip
    return dataclasses.replace(tier(50, steady=phase(offered_rps=10.0), integrity=integrity_result()), provisioning=prov)


def audit(t: TierResult):  # type: ignore[no-untyped-def]
    return judge(gate=gate_result(), properties=properties_result(), tiers=(t,), capacity=None, trends=(),
                 noise_floor=None, policy=POLICY, reproduce=CTX)  # fmt: skip


def test_customers_that_could_not_be_created_fail_the_tier_with_the_services_answer_and_true_counts() -> None:
    j = audit(provisioned(present=39, failed=22, retried=0))
    (f,) = [f for f in j.findings if f.category == "provisioning"]
    assert f.severity == "high"
    assert f.title == ("The service could not create 11 of the 50 customers the 50-customer tier needs: " + LOCKED)
    assert "Of 50 customers, 39 exist; 11 could not be created" in f.detail and "22 failed attempts" in f.detail
    assert j.verdict == "NOT READY" and j.tier_status[50] == "failed"
    assert not any("interrupted" in r for r in j.reasons)


def test_creations_that_passed_when_retried_gently_are_noted_not_failed() -> None:
    j = audit(provisioned(present=50, failed=4, retried=4))
    (f,) = [f for f in j.findings if f.category == "provisioning"]
    assert f.severity == "low" and "succeeded when retried two at a time" in f.title
    assert j.tier_status[50] == "passed"


def test_no_failures_no_finding() -> None:
    assert not any(f.category == "provisioning" for f in audit(provisioned(present=50, failed=0)).findings)
