"""`scaleready selftest`: the matrix it writes, how it scales the pack, and the real thing.

The unit tests build audit records by hand. The end-to-end tests audit the real demo service: a
fast one on tiny tiers (healthy READY, and a flaw the regression gate catches) for `make test`,
and the full matrix behind the `slow` marker for the nightly job.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from factories import T0, audit_record, finding, integrity_result, phase, replayed_error, tier

from harness.pack import Pack, load_pack
from harness.records import ResourceSample, TierResult, WindowMeasurement
from harness.selftest import (
    BOOKING_EXPECTATIONS,
    HEALTHY,
    MatrixRow,
    SelftestResult,
    judge_row,
    matrix_markdown,
    run_selftest,
    scaled_pack,
    write_matrix,
)
from harness.tiers import count_requests

PACK_DIR = Path(__file__).resolve().parents[1] / "scenarios" / "booking"


@pytest.fixture(scope="module")
def pack() -> Pack:
    return load_pack(PACK_DIR)


def test_every_flaw_of_the_pack_has_an_expectation(pack: Pack) -> None:
    assert set(pack.config.target.flaws) == set(BOOKING_EXPECTATIONS)


def test_the_pack_says_how_to_replay_a_request_as_its_customer(pack: Pack) -> None:
    # Without it every replayed server error is a 401: "passes alone" would prove nothing.
    from harness.pack import import_pack_module

    auth = import_pack_module(pack, pack.provision_file).auth_headers
    assert auth({"api_key": "bk_x"}) == {"X-API-Key": "bk_x"}


def test_scaling_moves_the_goal_and_keeps_the_goals_traffic(pack: Pack) -> None:
    scaled = scaled_pack(pack, [20, 200, 1000])
    before, after = pack.config.customers, scaled.config.customers
    assert after.goal == 1000
    assert after.goal * after.peak_rps_per_customer == pytest.approx(before.goal * before.peak_rps_per_customer)
    assert scaled_pack(pack, [50, 500, 5000]) is pack  # nothing to scale


def test_a_flaw_is_detected_only_by_its_expected_category_on_its_endpoint() -> None:
    wrong_endpoint = finding("data-volume-scaling", endpoint="GET /slots", title="slots grow")
    right = finding("data-volume-scaling", endpoint="GET /patients?q", title="search grows")
    miss = judge_row("missing-index", audit_record(findings=[wrong_endpoint], verdict="AT RISK"),
                     10.0, Path("x"), BOOKING_EXPECTATIONS)  # fmt: skip
    hit = judge_row("missing-index", audit_record(findings=[wrong_endpoint, right], verdict="AT RISK"),
                    10.0, Path("x"), BOOKING_EXPECTATIONS)  # fmt: skip
    assert (miss.detected, hit.detected) == (False, True)
    assert "GET /patients?q" in miss.note
    assert hit.evidence == ("search grows",)
    either = judge_row("n-plus-one", audit_record(findings=[finding("slo-latency", endpoint="GET /reports/daily")],
                       verdict="NOT READY"), 1.0, Path("x"), BOOKING_EXPECTATIONS)  # fmt: skip
    assert either.detected and either.categories == ("slo-latency",)


def test_a_finding_the_healthy_service_got_too_does_not_count_as_detecting_the_flaw() -> None:
    # A single-process server is serialised by its interpreter: the healthy demo can show
    # contention too, and then contention says nothing about a global lock.
    lock = finding("contention", title="about 60% of each request's work is serialised")
    healthy = [finding("contention", title="about 77% of each request's work is serialised")]
    both = judge_row("global-lock", audit_record(findings=[lock], verdict="READY"), 1.0, Path("x"),
                     BOOKING_EXPECTATIONS, healthy)  # fmt: skip
    assert not both.detected
    assert "the healthy service got contention too: not specific to the flaw" in both.note
    alone = judge_row("global-lock", audit_record(findings=[lock], verdict="READY"), 1.0, Path("x"),
                      BOOKING_EXPECTATIONS, [finding("throughput", severity="info")])  # fmt: skip
    assert alone.detected
    # on another endpoint than the healthy one's, a trend is the flaw's
    search = finding("data-volume-scaling", endpoint="GET /patients?q")
    elsewhere = [finding("data-volume-scaling", endpoint="GET /slots")]
    assert judge_row("missing-index", audit_record(findings=[search], verdict="NOT READY"), 1.0, Path("x"),
                     BOOKING_EXPECTATIONS, elsewhere).detected  # fmt: skip


def test_healthy_must_be_ready() -> None:
    ready = judge_row(HEALTHY, audit_record(verdict="READY", findings=[finding("throughput", severity="info")]),
                      5.0, Path("x"), BOOKING_EXPECTATIONS)  # fmt: skip
    risky = judge_row(HEALTHY, audit_record(verdict="AT RISK", notes=["Headroom is thin."]),
                      5.0, Path("x"), BOOKING_EXPECTATIONS)  # fmt: skip
    assert (ready.detected, ready.expected, ready.categories) == (True, ("READY",), ("throughput",))
    assert not risky.detected and "Headroom" in risky.note


def test_matrix_files(tmp_path: Path, pack: Pack) -> None:
    rows = [
        MatrixRow(HEALTHY, "READY", ("throughput",), ("READY",), True, 100.4),
        MatrixRow("tenant-leak", "NOT READY", ("isolation-leak",), ("isolation-leak",), True, 120.0),
        MatrixRow("memory-leak", "READY", (), ("resource-leak",), False, 130.0, note="expected resource-leak"),
    ]
    write_matrix(tmp_path, rows, profile="selftest", tiers=[20, 200, 1000], pack=scaled_pack(pack, [20, 200, 1000]))
    data = json.loads((tmp_path / "matrix.json").read_text())
    assert (data["detected"], data["flaws"], data["healthy_ready"]) == (1, 2, True)
    assert data["rows"][1] == {**data["rows"][1], "flaw": "tenant-leak", "detected": True,
                               "categories": ["isolation-leak"], "wall_s": 120.0}  # fmt: skip
    md = (tmp_path / "matrix.md").read_text()
    assert "| memory-leak | READY | - | resource-leak | **no** | 130 |" in md
    assert "- memory-leak: expected resource-leak" in md
    assert md == matrix_markdown(rows, {**data, "rows": None})


def test_unknown_flaw_is_refused_with_a_suggestion(tmp_path: Path, pack: Pack) -> None:
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'tenant-leak'"):
        run_selftest(pack, flaws=["tenant-leek"], reports_dir=tmp_path)


# --- the generic detection the matrix relies on ------------------------------------------------


def _samples(rss: list[float], start: float) -> tuple[ResourceSample, ...]:
    return tuple(ResourceSample(at=start + i, rss_mb=mb, cpu_pct=10.0, open_fds=20, threads=4)
                 for i, mb in enumerate(rss))  # fmt: skip


def test_resource_samples_count_the_requests_the_load_engine_served() -> None:
    windows = tuple(WindowMeasurement(start=T0 + 5 * i, end=T0 + 5 * (i + 1), requests=100, errors=0,
                                      latency_hdr="", service_hdr="") for i in range(4))  # fmt: skip
    load = dataclasses.replace(phase(started_at=T0, duration_s=20.0), windows=windows)
    counted = count_requests(_samples([100.0] * 5, T0 - 2) + _samples([100.0], T0 + 12.5), [load], before=1000)
    # before the load, the count from earlier tiers; mid-window, its share of that window
    assert [s.requests_so_far for s in counted] == [1000, 1000, 1000, 1020, 1040, 1250]


def _tier_with_rss(n: int, rss: list[float], start_requests: int) -> TierResult:
    samples = tuple(dataclasses.replace(s, requests_so_far=start_requests + 1000 * i)
                    for i, s in enumerate(_samples(rss, T0)))  # fmt: skip
    return tier(n, steady=phase(started_at=T0, duration_s=60.0), integrity=integrity_result(), resources=samples)


def _leak(tiers: list[TierResult]) -> bool:
    from harness.verdict import EndpointSlo, ReproduceContext, VerdictPolicy
    from harness.verdict.rules.resources import resource_leak

    policy = VerdictPolicy(default_slo=EndpointSlo(100.0, 300.0), endpoint_slos={}, max_error_rate=0.01,
                           goal_customers=1000)  # fmt: skip
    ctx = ReproduceContext(pack="p", profile="quick", target_url=None, started_by_harness=True)
    return any(f.category == "resource-leak" for f in resource_leak(tiers, policy, ctx).findings)


def test_memory_that_steps_up_between_tiers_is_data_not_a_leak() -> None:
    # Flat while requests are served, 40 MB more after each tier's provisioning: not a leak.
    steps = [_tier_with_rss(n, [100.0 + 40 * k] * 10, 10_000 * k) for k, n in enumerate((20, 200, 1000))]
    assert not _leak(steps)
    # Growing 3 MB per 1000 requests served, in every tier: a leak, whatever the steps.
    growing = [_tier_with_rss(n, [100.0 + 40 * k + 3 * i for i in range(10)], 10_000 * k)
               for k, n in enumerate((20, 200, 1000))]  # fmt: skip
    assert _leak(growing)


def test_memory_held_while_the_target_is_overloaded_is_not_a_leak() -> None:
    # Flat while the target keeps up; climbing only during a stress step it could not sustain
    # (p95 500 ms against a 100 ms SLO): requests queued in it hold that memory.
    tiers = []
    for k, n in enumerate((20, 200, 1000)):
        rss = [100.0 + 40 * k] * 10 + [100.0 + 40 * k + 5 * i for i in range(10)]
        samples = tuple(dataclasses.replace(s, requests_so_far=20_000 * k + 1000 * i)
                        for i, s in enumerate(_samples(rss, T0)))  # fmt: skip
        overloaded = phase("stress", started_at=T0 + 10, duration_s=9.5, service_ms=250.0)
        tiers.append(tier(n, steady=phase(started_at=T0, duration_s=9.5), stress=[overloaded],
                          integrity=integrity_result(), resources=samples))  # fmt: skip
    assert not _leak(tiers)
    # The same climb while the target keeps up is a leak.
    kept_up = [dataclasses.replace(t, stress=(phase("stress", started_at=T0 + 10, duration_s=9.5),),
                                   resources=t.resources[10:]) for t in tiers]  # fmt: skip
    assert _leak(kept_up)


def test_server_errors_only_past_the_nominal_load_are_named_but_do_not_decide() -> None:
    from harness.verdict import EndpointSlo, ReproduceContext, VerdictPolicy
    from harness.verdict.tier import assess_tier

    policy = VerdictPolicy(default_slo=EndpointSlo(100.0, 300.0), endpoint_slos={}, max_error_rate=0.01,
                           goal_customers=1000)  # fmt: skip
    ctx = ReproduceContext(pack="p", profile="quick", target_url=None, started_by_harness=True)
    after = T0 + 70  # the steady window is T0 .. T0+60
    t = tier(1000, steady=phase(started_at=T0, duration_s=60.0), integrity=integrity_result(),
             replayed_errors=[replayed_error("POST /patients", still_failing=False, at=after, status=503)])  # fmt: skip
    a = assess_tier(t, policy, noise_floor=None, reproduce=ctx)
    assert a.status == "passed" and not a.risks
    (f,) = [f for f in a.findings if f.category == "saturation-errors"]
    assert f.severity == "low" and "pushed past" in f.title and f.evidence["beyond_nominal_load"] is True
    # A replay refused as unauthenticated did not show the request passes alone: no claim.
    refused = dataclasses.replace(t.replayed_errors[0], replay_status=401)
    b = assess_tier(dataclasses.replace(t, replayed_errors=(refused,)), policy, noise_floor=None, reproduce=ctx)
    assert not [f for f in b.findings if f.category == "saturation-errors"]


# --- end to end -----------------------------------------------------------------------------

TINY = {
    "parent": "quick",
    "description": "the smallest audit that still judges every area (tests only)",
    "tiers": [5, 20],
    "warmup_s": 1.0,
    "steady_s": 10.0,  # >= 200 requests of the busiest endpoint at the goal, for its p95
    "stress_factors": [2.0, 4.0],
    "stress_step_s": 3.0,
    "hypothesis_examples": 5,
    "noise_floor_s": 1.0,
    "probe_iterations": 10,
    "probe_rate": 10.0,
    "integrity_sample": 20,
}


@pytest.mark.slow
def test_tiny_selftest_healthy_is_ready_and_a_gate_flaw_is_caught(tmp_path: Path, pack: Pack) -> None:
    # The goal is the largest tiny tier at a traffic this machine carries with room to spare
    # (60 iterations/s), so healthy can show its headroom in two short stress steps.
    customers = pack.config.customers.model_copy(update={"goal": 20, "peak_rps_per_customer": 3.0})
    tiny = Pack(root=pack.root, config=pack.config.model_copy(
        update={"profiles": {**pack.config.profiles, "tiny": TINY}, "customers": customers}))  # fmt: skip
    healthy = run_selftest(tiny, profile="tiny", flaws=[], reports_dir=tmp_path, seed=3)
    assert healthy.passed, (healthy.rows, _generator_health(healthy))
    assert (healthy.run_dir / "matrix.json").exists() and (healthy.run_dir / "matrix.md").exists()
    # The regression gate alone catches this flaw: no need for the load.
    gate = run_selftest(tiny, profile="tiny", flaws=["functional-regression"], healthy=False,
                        only=("gate",), reports_dir=tmp_path, seed=3)  # fmt: skip
    (row,) = gate.rows
    assert row.detected and row.verdict == "NOT READY", row


def _generator_health(result: SelftestResult) -> list[object]:
    """Each row's tiers' generator blocks: what a failure on another machine needs to be read."""
    blocks: list[object] = []
    for row in result.rows:
        card = Path(row.run_dir) / "scorecard.json"
        if row.run_dir and card.exists():
            tiers = json.loads(card.read_text(encoding="utf-8"))["tiers"]
            blocks += [(row.flaw, t["customers"], t["status"], t.get("generator"), t.get("stress")) for t in tiers]
    return blocks


@pytest.mark.slow
@pytest.mark.timeout(3600)  # ten audits, one after another: about 25 minutes
def test_full_matrix_every_flaw_is_caught_and_healthy_is_ready(tmp_path: Path, pack: Pack) -> None:
    result = run_selftest(pack, reports_dir=tmp_path, seed=7)
    missed = [f"{r.flaw}: {r.verdict}, found {', '.join(r.categories) or 'nothing'}; {r.note}"
              for r in result.rows if not r.detected]  # fmt: skip
    assert not missed, "\n".join(missed)
