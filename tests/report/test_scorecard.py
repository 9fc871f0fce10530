"""The scorecard JSON: the contract CI and tools read (DESIGN.md, "The scorecard JSON")."""

from __future__ import annotations

import copy
import json
import math
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harness.records import (
    AuditRecord,
    CapacityParams,
    OverlapProbeResult,
    Popularity,
    TargetInfo,
    UslParameters,
)
from harness.report import SCHEMA_VERSION, build_scorecard, load_schema
from harness.report.scorecard import MAX_RESOURCE_SAMPLES, MAX_VIOLATIONS, usl_from_params
from harness.timestamps import iso_utc
from tests.factories import (
    T0,
    audit_record,
    capacity_estimate,
    endpoint,
    finding,
    full_audit_record,
    gate_result,
    integrity_result,
    latency_summary,
    phase,
    resource_series,
    tier,
    violation,
)

VERDICTS = ["READY", "AT RISK", "NOT READY", "INCONCLUSIVE"]


def validate(card: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(load_schema()).validate(card)


def strict(schema: Any) -> Any:
    """The schema with every object closed: fails if the scorecard has a field it does not describe."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


# --- the schema itself ------------------------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_schema_is_shipped_as_package_data() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    shipped = pyproject["tool"]["setuptools"]["package-data"]["harness"]
    assert "report/*.json" in shipped and "report/templates/*" in shipped
    assert "jsonschema" in " ".join(pyproject["project"]["dependencies"])


def test_schema_version_is_1_2() -> None:
    # 1.2: fields added since 1.1 (a field or category added is a minor version bump)
    assert SCHEMA_VERSION == "1.2"
    assert build_scorecard(full_audit_record())["schema_version"] == "1.2"


# --- every scorecard validates, and the schema describes every field --------------------------


@pytest.mark.parametrize("verdict", VERDICTS)
def test_a_full_scorecard_validates_against_the_schema(verdict: str) -> None:
    card = build_scorecard(full_audit_record(verdict))  # type: ignore[arg-type]
    validate(card)
    jsonschema.Draft202012Validator(strict(load_schema())).validate(card)


def test_an_empty_audit_validates_too() -> None:
    """Nothing ran (interrupted during preflight): every section is present and null or empty."""
    record = audit_record(partial=True)
    card = build_scorecard(record)
    validate(card)
    jsonschema.Draft202012Validator(strict(load_schema())).validate(card)
    assert card["tiers"] == [] and card["capacity"] is None and card["noise_floor"] is None
    assert card["stages"]["regression"] == {
        "status": "skipped", "passed": 0, "failed": 0, "errors": 0, "skipped": 0,
        "duration_s": None, "junit": None, "failures": [], "benchmarks": [],
    }


def test_a_skipped_tier_has_no_numbers_rather_than_zeros() -> None:
    card = build_scorecard(audit_record([tier(5000, status="skipped", reason="time budget")]))
    validate(card)
    t = card["tiers"][0]
    assert t["status"] == "skipped" and t["reason"] == "time budget"
    assert t["achieved_rps"] is None and t["p99_ms"] is None and t["steady_window"] is None
    assert t["generator"] is None and t["endpoints"] == []


def test_the_scorecard_is_plain_json() -> None:
    card = build_scorecard(full_audit_record("NOT READY"))
    assert json.loads(json.dumps(card, allow_nan=False)) == card


def test_the_contract_fields_are_all_present() -> None:
    card = build_scorecard(full_audit_record())
    for key in ("schema_version", "run_id", "pack", "profile", "started_at", "finished_at",
                "verdict", "ready_up_to", "partial", "target", "stages", "tiers", "noise_floor",
                "capacity", "trends", "scores", "findings", "notes"):
        assert key in card
    assert set(card["target"]) >= {"base_url", "started_by_harness"}
    assert set(card["stages"]["regression"]) >= {"status", "passed", "failed", "junit"}
    assert set(card["stages"]["properties"]) >= {"status", "falsified"}
    t = card["tiers"][0]
    assert set(t) >= {"customers", "status", "offered_rps", "achieved_rps", "dropped_iterations",
                      "steady_window", "endpoints", "stress", "generator", "integrity", "reason"}
    assert set(t["endpoints"][0]) >= {"name", "requests", "errors", "error_rate", "p50_ms",
                                      "p95_ms", "p99_ms", "max_ms", "service_p50_ms",
                                      "service_p99_ms"}
    assert set(t["stress"][0]) >= {"label", "offered_rps", "achieved_rps", "p99_ms", "error_rate"}
    assert set(t["generator"]) >= {"cpu_max_pct", "loop_lag_p99_ms", "saturated", "reasons"}
    assert set(t["integrity"]) >= {"status", "checked", "violations"}
    assert set(card["capacity"]) >= {"predicted_customers", "low", "high", "method", "params",
                                     "headroom", "confidence", "note"}
    assert set(card["findings"][0]) == {"id", "category", "severity", "title", "detail",
                                        "evidence", "reproduce", "tier", "endpoint", "caused_by"}


# --- what the numbers mean --------------------------------------------------------------------


def test_percentiles_are_intended_start_latency_and_service_time_is_alongside() -> None:
    """Coordinated omission: a stall shows in p99_ms even when service time stays small."""
    ep = endpoint("GET /slots", requests=1000,
                  latency=latency_summary(50.0, p50_ms=12.0, p95_ms=400.0, p99_ms=900.0, max_ms=1000.0),
                  service=latency_summary(5.0, p50_ms=4.5, p95_ms=9.0, p99_ms=11.0))
    card = build_scorecard(audit_record([tier(50, steady=phase(endpoints=[ep]))]))
    e = card["tiers"][0]["endpoints"][0]
    assert (e["p50_ms"], e["p95_ms"], e["p99_ms"], e["max_ms"]) == (12.0, 400.0, 900.0, 1000.0)
    assert (e["service_p50_ms"], e["service_p99_ms"]) == (4.5, 11.0)


def test_milliseconds_are_rounded_to_hundredths_and_model_parameters_keep_significant_digits() -> None:
    ep = endpoint("GET /slots", latency=latency_summary(1.0, p99_ms=12.34567, p50_ms=0.004))
    cap = replace(capacity_estimate(8234.6), params=CapacityParams(usl=UslParameters(sigma=0.0281, kappa=0.000104321987, lam=995.6)))
    card = build_scorecard(audit_record([tier(50, steady=phase(endpoints=[ep]))], capacity=cap))
    e = card["tiers"][0]["endpoints"][0]
    assert e["p99_ms"] == 12.35 and e["p50_ms"] == 0.0
    assert card["capacity"]["params"]["kappa"] == pytest.approx(0.000104322, rel=1e-9)
    assert card["capacity"]["predicted_customers"] == 8235


def test_values_json_cannot_hold_become_null() -> None:
    cap = replace(capacity_estimate(), headroom=math.inf, params=CapacityParams(usl=UslParameters(sigma=0.0281, kappa=math.nan, lam=995.6)))
    f = finding(evidence={"ratio": math.nan, "ok": 1.5, "when": {1, 2}})
    card = build_scorecard(audit_record(capacity=cap, findings=[f]))
    assert card["capacity"]["headroom"] is None and card["capacity"]["params"]["kappa"] is None
    assert card["findings"][0]["evidence"] == {"ratio": None, "ok": 1.5, "when": [1, 2]}
    validate(card)


def test_times_are_iso_8601_utc() -> None:
    card = build_scorecard(full_audit_record())
    assert card["started_at"] == iso_utc(T0) == "2023-11-14T22:13:20.000Z"
    assert card["finished_at"] == "2023-11-14T22:23:20.000Z"
    assert card["tiers"][0]["steady_window"] == {"start": "2023-11-14T22:13:20.000Z",
                                                 "end": "2023-11-14T22:14:20.000Z"}


def test_findings_are_ordered_most_severe_first_keeping_the_record_order_within_a_severity() -> None:
    fs = [finding(severity="low", id="a"), finding(severity="critical", id="b"),
          finding(severity="low", id="c"), finding(severity="high", id="d")]
    card = build_scorecard(audit_record(findings=fs))
    assert [f["id"] for f in card["findings"]] == ["b", "d", "a", "c"]


def test_many_integrity_violations_are_capped_with_the_full_count_kept() -> None:
    many = [violation(customer=f"c{i}") for i in range(MAX_VIOLATIONS + 25)]
    t = replace(tier(50, steady=phase()), integrity=integrity_result(many))
    integrity = build_scorecard(audit_record([t]))["tiers"][0]["integrity"]
    assert len(integrity["violations"]) == MAX_VIOLATIONS
    assert integrity["violation_count"] == MAX_VIOLATIONS + 25
    assert integrity["violations"][0]["check"] == "lost-write"  # no checker named: by kind


# --- the verdict, explained -------------------------------------------------------------------


def headline(record: AuditRecord) -> str:
    return str(build_scorecard(record)["summary"]["headline"])


def test_ready_says_how_far() -> None:
    assert headline(full_audit_record("READY")) == "ready up to 5000 customers"


def test_not_ready_names_the_first_failing_tier_and_why() -> None:
    assert headline(full_audit_record("NOT READY")) == (
        "fails at 5000 customers: GET /slots p99 is 912 ms against a 300 ms SLO")


def test_not_ready_from_the_gate_says_so() -> None:
    record = replace(full_audit_record("READY"), verdict="NOT READY",
                     gate=gate_result(failed=["test_a"]))
    assert headline(record) == "the regression gate failed: 1 test(s) did not pass"


def test_at_risk_says_what_is_at_risk() -> None:
    assert headline(full_audit_record("AT RISK")) == (
        "ready up to 5000 customers, but GET /slots slows linearly with data volume")


def test_inconclusive_names_the_tier_that_could_not_be_measured() -> None:
    assert headline(full_audit_record("INCONCLUSIVE")) == (
        "the 5000-customer tier was invalid: the load generator was saturated (CPU 97 %)")


def test_why_lists_the_deciding_findings() -> None:
    why = build_scorecard(full_audit_record("NOT READY"))["summary"]["why"]
    assert why[0] == {"finding": "slo-latency-5000-get-slots",
                      "text": "GET /slots is too slow at 5000 customers"}
    assert all(w["finding"] != "resource-leak-info" for w in why)  # info never decides


def test_the_scorecard_does_not_change_the_record_or_depend_on_anything_else() -> None:
    record = full_audit_record("NOT READY")
    before = copy.deepcopy(record)
    assert build_scorecard(record) == build_scorecard(record)
    assert record == before


# --- what the report draws from (fields added for the audit report) ----------------------------


def test_each_tier_carries_what_was_judged_and_the_targets_resources() -> None:
    card = build_scorecard(full_audit_record("INCONCLUSIVE"))
    small, goal = card["tiers"][0], card["tiers"][2]
    assert small["slo_checks"][0] == {"endpoint": "GET /slots", "requests": 400, "percentiles": ["p95"]}
    assert goal["slo_checks"] is None  # a saturated window is not judged
    assert len(small["resources"]) == 6
    assert set(small["resources"][0]) == {"at", "rss_mb", "cpu_pct", "open_fds", "threads", "requests_so_far"}
    assert small["resources"][0]["at"] == iso_utc(T0)


def test_a_long_tier_keeps_at_most_600_resource_samples_and_the_last() -> None:
    samples = resource_series([100.0 + i / 100 for i in range(1801)])
    card = build_scorecard(audit_record([tier(50, steady=phase(), resources=samples)]))
    kept = card["tiers"][0]["resources"]
    assert len(kept) <= MAX_RESOURCE_SAMPLES + 1
    assert kept[0]["at"] == iso_utc(samples[0].at) and kept[-1]["at"] == iso_utc(samples[-1].at)


def test_throughput_is_also_given_in_the_offered_loads_unit() -> None:
    # 1.6 requests per action: completed_ips compares with offered_rps, achieved_rps does not
    p = replace(phase(offered_rps=100.0, achieved_rps=160.0, duration_s=60.0), iterations_completed=6000, active_s=60.0)
    card = build_scorecard(audit_record([tier(50, steady=p, stress=[replace(p, kind="stress", label="stress x2")])]))
    t = card["tiers"][0]
    assert (t["achieved_rps"], t["completed_ips"]) == (160.0, 100.0)
    assert t["stress"][0]["completed_ips"] == 100.0 and t["stress"][0]["p95_ms"] == 20.0
    assert t["stress"][0]["start"] == iso_utc(p.started_at) and t["concurrency"] == pytest.approx(1.6)


def test_the_target_command_is_kept() -> None:
    target = TargetInfo("http://127.0.0.1:9", started_by_harness=True, command="python -m shop --port 9")
    assert build_scorecard(audit_record(target=target))["target"]["command"] == "python -m shop --port 9"


def test_the_usl_fit_is_read_back_from_the_scorecards_parameters() -> None:
    usl = UslParameters(sigma=0.03, kappa=0.0001, lam=400.0, sigma_se=0.01, n_points=9, n_max=30.0)
    card = build_scorecard(audit_record(capacity=replace(capacity_estimate(), params=CapacityParams(usl=usl, goal_rps=5.0))))
    assert usl_from_params(card["capacity"]["params"]) == usl
    assert usl_from_params({"goal_rps": 5.0}) is None


def test_the_customer_popularity_is_recorded_with_the_busiest_customers_share() -> None:
    card = build_scorecard(full_audit_record(popularity=Popularity("zipf", 1.0)))
    jsonschema.Draft202012Validator(strict(load_schema())).validate(card)
    popularity = card["popularity"]
    assert (popularity["distribution"], popularity["exponent"]) == ("zipf", 1.0)
    shares = {s["customers"]: s["share"] for s in popularity["busiest_customer_share"]}
    assert shares[50] == pytest.approx(1 / sum(1 / k for k in range(1, 51)), abs=1e-4)
    uniform = build_scorecard(full_audit_record(popularity=Popularity()))["popularity"]
    assert uniform["exponent"] is None
    assert {s["customers"]: s["share"] for s in uniform["busiest_customer_share"]}[500] == 0.002


def test_each_tier_records_its_overlap_probe_or_null() -> None:
    probe = OverlapProbeResult(rounds=4, concurrency=16, customers=(0, 1, 2, 3), writes=64, acknowledged=60,
                               refused=4, unknown=0, duration_s=0.5234)  # fmt: skip
    record = full_audit_record()
    first, *rest = record.tiers
    card = build_scorecard(replace(record, tiers=(replace(first, overlap=probe), *rest)))
    jsonschema.Draft202012Validator(strict(load_schema())).validate(card)
    assert card["tiers"][0]["overlap_probe"] == {
        "rounds": 4, "concurrency": 16, "customers": [0, 1, 2, 3], "writes": 64, "acknowledged": 60,
        "refused": 4, "unknown": 0, "duration_s": 0.52, "note": "",
    }  # fmt: skip
    assert card["tiers"][1]["overlap_probe"] is None
