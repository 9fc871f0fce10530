"""The report's first page: the verdict in one sentence, the capacity bar, what to do first;
and what each tier's status rests on."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from harness.records import CapacityEstimate, SloCheck
from harness.report import build_scorecard
from harness.report.judged import tier_judged
from harness.report.summary import briefing
from tests.factories import capacity_estimate, endpoint, finding, full_audit_record, phase, tier


def card(verdict: str = "READY", **overrides: object) -> dict[str, Any]:
    return build_scorecard(full_audit_record(verdict, **overrides))  # type: ignore[arg-type]


def lower_bound(predicted: float) -> CapacityEstimate:
    return replace(capacity_estimate(predicted), method="lower-bound", low=predicted, high=None)


def test_at_risk_says_the_capacity_against_the_goal_and_what_to_fix() -> None:
    brief = briefing(card("AT RISK", capacity=capacity_estimate(7100.0)), {})
    assert brief.sentence == (
        "Handles about 7,100 customers, 1.4 times the 5,000 you plan for; we recommend fixing "
        "the slowdown of GET /slots as data grows before launch."
    )
    assert [a.heading for a in brief.top] == ["The slowdown of GET /slots as data grows"]


def test_ready_says_ready_for_launch() -> None:
    brief = briefing(card("READY", capacity=lower_bound(7500.0)), {})
    assert brief.sentence == "Handles at least 7,500 customers, 1.5 times the 5,000 you plan for: ready for launch."
    assert brief.top == ()  # the info finding is not something to do


def test_not_ready_names_the_goal_and_the_first_fix() -> None:
    brief = briefing(card("NOT READY", capacity=lower_bound(500.0)), {})
    assert brief.sentence == (
        "Not ready for 5,000 customers yet: the service handles at least 500 customers, only 0.1 "
        "times the 5,000 you plan for; fix the slow responses of GET /slots first."
    )


def test_inconclusive_says_there_is_no_verdict_and_why() -> None:
    brief = briefing(card("INCONCLUSIVE"), {})
    assert brief.sentence == ("No verdict yet: the load generator was saturated at 5000 customers. The report "
                              "shows what was measured; rerun the audit to complete it.")  # fmt: skip


def test_inconclusive_without_a_deciding_finding_gives_the_judgements_reason_not_a_findings_title() -> None:
    # The headline falls back to the top finding's title, which need not be why there is no verdict.
    scorecard = card("INCONCLUSIVE", findings=[finding("data-volume-scaling", severity="low", title="GET /x slows")],
                     notes=["No tier reached the goal of 5000 customers (largest: 200), so readiness at the "
                            "goal would rest on extrapolation alone."])  # fmt: skip
    scorecard["summary"]["why"] = []
    assert briefing(scorecard, {}).sentence.startswith("No verdict yet: no tier reached the goal of 5000 customers")


def test_findings_of_one_kind_at_one_tier_are_one_thing_to_do() -> None:
    slow = [finding(tier=5000, endpoint=f"GET /e{i}", title=f"GET /e{i} is too slow", id=f"slow-{i}")
            for i in range(7)]  # fmt: skip
    errors = [finding("slo-errors", tier=5000, endpoint="GET /e0", title="GET /e0 fails", id="err-0")]
    leak = [finding("isolation-leak", severity="critical", tier=500, title="A customer read another's data",
                    id="leak")]  # fmt: skip
    brief = briefing(card("NOT READY", findings=slow + errors + leak), {"slow-0": "finding-2"})
    assert [a.heading for a in brief.actions] == [
        "The leak of one customer's data to another",
        "The slow responses of 7 endpoints at 5,000 customers",
        "The failing requests on GET /e0",
    ]
    grouped = brief.actions[1]
    assert len(grouped.findings) == 7 and grouped.anchors[0] == "finding-2"
    assert grouped.found.startswith("7 findings: GET /e0, GET /e1, GET /e2, GET /e3 and 3 more.")
    assert len(brief.top) == 3


def test_the_capacity_bar_runs_from_the_first_tier_to_the_limit_with_the_goal_marked() -> None:
    bar = briefing(card("AT RISK", capacity=capacity_estimate(7100.0)), {}).bar
    assert bar is not None
    assert (bar.first_tier, bar.goal, bar.predicted) == (50, 5000, 7100.0)
    assert bar.low == 5325.0 and bar.high == 9585.0 and not bar.at_least
    assert bar.pct(bar.high) < 100 and bar.pct(5000) < bar.pct(7100)


def test_the_capacity_bar_marks_where_a_tier_failed() -> None:
    bar = briefing(card("NOT READY", capacity=lower_bound(500.0)), {}).bar
    assert bar is not None and bar.at_least and bar.failed_at == 5000.0


def test_no_bar_without_a_capacity() -> None:
    assert briefing(card("INCONCLUSIVE", capacity=capacity_estimate(None)), {}).bar is None


def test_what_was_tested_in_one_sentence() -> None:
    assert briefing(card(), {}).tested == (
        "We ran 12 of the service's own tests, 6 property checks (100 generated inputs each) and the "
        "peak-hour traffic of 50, 500, 5,000 customers, each with their data in place, checking "
        "afterwards that nothing written was lost or leaked to another customer."
    )


# --- what a tier's status rests on ---------------------------------------------------------


def tier_card(checks: tuple[SloCheck, ...] | None, status: str = "passed") -> dict[str, Any]:
    t = replace(tier(50, steady=phase(endpoints=[endpoint("GET /a"), endpoint("GET /b")]), status=status),  # type: ignore[arg-type]
                slo_checks=checks)  # fmt: skip
    return build_scorecard(replace(full_audit_record(), tiers=(t,)))["tiers"][0]


def test_a_tier_that_passed_on_every_percentile_is_passed() -> None:
    judged = tier_judged(tier_card((SloCheck("GET /a", 1000, ("p95", "p99")), SloCheck("GET /b", 1200, ("p95", "p99")))))
    assert judged.status == "passed" and judged.fully_judged
    assert judged.summary == "p95 2/2 · p99 2/2"


def test_a_tier_that_passed_without_its_percentiles_is_not_shown_as_passed() -> None:
    judged = tier_judged(tier_card((SloCheck("GET /a", 40, ("p50",)), SloCheck("GET /b", 3, ()))))
    assert judged.status == "partly judged" and not judged.fully_judged
    assert judged.summary == "p95 0/2 · p99 0/2 · median only 1/2"
    assert judged.sentence.startswith(
        "Passed on what its traffic allowed to judge: the error budget of all 2 endpoints; the p95 of "
        "none and the p99 of none; for 1 only the median, against the p95 limit; 1 had too few "
        "requests for any percentile."
    )


def test_a_failed_tier_keeps_its_status() -> None:
    assert tier_judged(tier_card((SloCheck("GET /a", 40, ("p50",)),), status="failed")).status == "failed"


def test_an_older_scorecard_says_it_does_not_record_what_was_judged() -> None:
    older = tier_card(None)
    del older["slo_checks"]
    judged = tier_judged(older)
    assert judged.status == "passed" and "predates" in judged.sentence
