"""junit.xml: one suite per stage and per tier; failures carry the finding."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

from harness.report.junit import render_junit
from tests.factories import (
    audit_record,
    endpoint,
    falsified_property,
    finding,
    full_audit_record,
    gate_result,
    integrity_result,
    phase,
    properties_result,
    tier,
    violation,
)


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml.encode("utf-8"))


def suite(root: ET.Element, name: str) -> ET.Element:
    found = root.find(f"testsuite[@name='{name}']")
    assert found is not None, [s.get("name") for s in root]
    return found


def case(s: ET.Element, name: str) -> ET.Element:
    found = [c for c in s.findall("testcase") if c.get("name") == name]
    assert found, [c.get("name") for c in s.findall("testcase")]
    return found[0]


def test_one_suite_per_stage_and_per_tier() -> None:
    root = parse(render_junit(full_audit_record()))
    assert root.tag == "testsuites"
    names = [s.get("name") for s in root.findall("testsuite")]
    assert names[:5] == ["regression gate", "properties", "tier 50 customers",
                         "tier 500 customers", "tier 5000 customers"]


def test_a_test_case_per_slo_per_endpoint_and_per_integrity_check() -> None:
    root = parse(render_junit(full_audit_record()))
    s = suite(root, "tier 500 customers")
    names = [c.get("name") for c in s.findall("testcase")]
    for ep in ("GET /slots", "POST /bookings", "GET /bookings/{id}"):
        assert f"{ep}: latency SLO" in names and f"{ep}: error-rate SLO" in names
    assert "integrity: set-full" in names and "integrity: unique-ids" in names
    assert s.get("failures") == "0" and s.get("tests") == str(len(names))


def test_an_slo_failure_carries_the_finding_title_detail_and_reproduce_command() -> None:
    root = parse(render_junit(full_audit_record("NOT READY")))
    failure = case(suite(root, "tier 5000 customers"), "GET /slots: latency SLO").find("failure")
    assert failure is not None
    assert failure.get("message") == "GET /slots is too slow at 5000 customers"
    assert failure.get("type") == "slo-latency"
    assert "p99 840 ms against an SLO of 300 ms." in (failure.text or "")
    assert "Reproduce: scaleready run --only tier:500" in (failure.text or "")
    assert root.get("failures") == "1"


def test_integrity_violations_fail_their_check() -> None:
    t = replace(tier(500, steady=phase()), status="failed", integrity=integrity_result(
        [violation("lost-write", check="set-full"), violation("duplicate")],
        checks={"set-full": 400, "unique-ids": 400}))
    f = finding("integrity-lost-write", severity="critical", tier=500,
                title="2 acknowledged bookings were lost")
    root = parse(render_junit(audit_record([t], findings=[f], verdict="NOT READY")))
    s = suite(root, "tier 500 customers")
    lost = case(s, "integrity: set-full").find("failure")
    assert lost is not None and lost.get("message") == "2 acknowledged bookings were lost"
    assert "clinic-7" in (lost.text or "")
    assert case(s, "integrity: unique-ids").find("failure") is None
    assert case(s, "integrity: duplicate").find("failure") is not None  # no checker named: by kind


def test_gate_cases_and_falsified_properties_are_reported() -> None:
    record = audit_record(gate=gate_result(passed=2, failed=["test_booking_roundtrip"]),
                          properties=properties_result(falsified=[falsified_property()]))
    root = parse(render_junit(record))
    gate = suite(root, "regression gate")
    assert gate.get("tests") == "3" and gate.get("failures") == "1"
    assert case(gate, "test_booking_roundtrip").find("failure") is not None
    prop = case(suite(root, "properties"), "test_no_5xx_on_any_input").find("failure")
    assert prop is not None
    assert "create_booking(slot_id=-1)" in (prop.text or "")
    assert "scaleready run --only properties --replay" in (prop.text or "")


def test_an_invalid_tier_skips_its_slo_cases_and_errors_on_the_generator() -> None:
    root = parse(render_junit(full_audit_record("INCONCLUSIVE")))
    s = suite(root, "tier 5000 customers")
    assert case(s, "GET /slots: latency SLO").find("skipped") is not None
    gen = case(s, "load generator kept up").find("error")
    assert gen is not None and gen.get("message") == "The load generator was saturated at 5000 customers"


def test_a_skipped_tier_is_a_skipped_case() -> None:
    root = parse(render_junit(audit_record([tier(5000, status="skipped", reason="time budget")])))
    skipped = case(suite(root, "tier 5000 customers"), "tier result").find("skipped")
    assert skipped is not None and skipped.get("message") == "time budget"


def test_findings_outside_tiers_go_to_an_analysis_suite() -> None:
    f = finding("throughput", severity="medium", title="Capacity headroom is thin")
    root = parse(render_junit(audit_record(findings=[f])))
    c = suite(root, "analysis").find("testcase")
    assert c is not None and c.find("failure") is not None


def test_markup_and_control_characters_from_the_target_still_make_valid_xml() -> None:
    nasty = 'GET /x"><script>alert(1)</script>\x00\x1b[31m&amp;'
    ep = endpoint(nasty)
    f = finding(title=nasty, detail=nasty, tier=50, endpoint=nasty)
    record = audit_record([tier(50, steady=phase(endpoints=[ep]), status="failed")], findings=[f])
    xml = render_junit(record)
    root = parse(xml)  # would raise on a raw NUL or ESC
    failure = case(suite(root, "tier 50 customers"),
                   f"{nasty}: latency SLO".replace("\x00", "\ufffd").replace("\x1b", "\ufffd"))
    node = failure.find("failure")
    assert node is not None and "<script>" in (node.get("message") or "")  # text, not markup
    assert "<script>" not in xml
