"""The baseline-regression rule: a regression beyond the noise makes READY into AT RISK."""

from __future__ import annotations

from harness.records import BaselineComparison, MetricChange
from harness.verdict import judge


def _change(kind: str, *, endpoint: str = "GET /slots", metric: str = "service_p50", change: float = 0.31) -> MetricChange:
    return MetricChange(tier=500, endpoint=endpoint, metric=metric, before=2.0, after=2.0 * (1 + change),
                        change=change, low=change - 0.04, high=change + 0.04, p_value=1e-40, threshold=0.1,
                        noise=0.06, requests_before=3000, requests_after=3100, kind=kind, noise_runs=3)  # type: ignore[arg-type]


def _judge(*changes: MetricChange):  # noqa: ANN202
    comparison = BaselineComparison("20261201-010000-0001", "20261202-010000-0002", pinned=False,
                                    changes=changes, baseline_commit="abc")  # fmt: skip
    return judge(**_inputs(), baseline=comparison)  # type: ignore[arg-type]


def _inputs() -> dict[str, object]:
    import test_verdict as tv

    return dict(gate=tv.gate_result(), properties=tv.properties_result(),
                tiers=tuple(tv.good_tier(n) for n in (50, 500, 5000)), capacity=tv.capacity(), trends=(),
                noise_floor=None, policy=tv.POLICY, reproduce=tv.CTX)  # fmt: skip


def test_without_a_regression_the_healthy_audit_stays_ready() -> None:
    assert _judge(_change("unchanged", change=0.02)).verdict == "READY"


def test_a_regression_is_one_finding_per_endpoint_with_its_numbers_and_at_risk() -> None:
    j = _judge(_change("regression"), _change("regression", metric="p95", change=0.28))
    assert j.verdict == "AT RISK"
    found = [f for f in j.findings if f.category == "baseline-regression"]
    assert len(found) == 1
    f = found[0]
    assert (f.endpoint, f.tier, f.severity) == ("GET /slots", 500, "medium")
    assert f.evidence["before_ms"] == 2.0 and f.evidence["after_ms"] == 2.62
    assert f.evidence["interval"] == [0.27, 0.35] and f.evidence["p_value"] == 1e-40
    assert f.evidence["baseline_run_id"] == "20261201-010000-0001"
    assert "31% slower" in f.title and "scaleready baseline pin 20261202-010000-0002" in f.detail
    assert any("slower at 500 customers" in r for r in j.reasons)


def test_an_improvement_is_a_note_not_a_finding() -> None:
    j = _judge(_change("improvement", change=-0.25))
    assert j.verdict == "READY"
    assert not [f for f in j.findings if f.category == "baseline-regression"]
    assert any(r.startswith("Faster than the baseline") for r in j.reasons)


def test_a_regression_does_not_soften_a_not_ready() -> None:
    import test_verdict as tv

    inputs = {**_inputs(), "capacity": tv.capacity(headroom=0.5)}
    comparison = BaselineComparison("a", "b", pinned=False, changes=(_change("regression"),))
    assert judge(**inputs, baseline=comparison).verdict == "NOT READY"  # type: ignore[arg-type]
