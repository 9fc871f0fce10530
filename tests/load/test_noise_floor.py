"""The null target: known service time, optional freezes, its own ground-truth histogram.

And what it is for: showing that the harness sees a stall from the intended start of each
iteration (coordinated omission corrected) while plain service time hides most of it.
"""

from __future__ import annotations

import textwrap
import urllib.request
from pathlib import Path

import pytest

from harness.load import LoadPlan, PhasePlan, recording, run_load
from harness.load.noise_floor import NullTarget, measure_noise_floor, run_null_target, server_stats


def test_the_freeze_is_the_last_seconds_of_every_cycle() -> None:
    target = NullTarget(service_ms=0, stall_every=10, stall_for=1)
    start = target.started
    assert target.stall_remaining(start + 0.0) == 0
    assert target.stall_remaining(start + 8.99) == 0
    assert abs(target.stall_remaining(start + 9.25) - 0.75) < 1e-9
    assert abs(target.stall_remaining(start + 19.5) - 0.5) < 1e-9
    assert NullTarget(service_ms=0).stall_remaining(start + 9.5) == 0


def test_it_answers_keep_alive_http_and_records_its_own_service_time() -> None:
    with run_null_target(service_ms=2.0) as url:
        server_stats(url, reset=True)
        for _ in range(5):
            with urllib.request.urlopen(url + "/anything?x=1", timeout=2) as resp:  # noqa: S310
                assert resp.status == 200
                assert resp.read() == b'{"ok":true}'
        truth = recording.summarise_encoded(server_stats(url))
    assert truth.count == 5
    assert 2.0 <= truth.p50_ms < 20.0


@pytest.mark.slow
def test_a_stall_shows_in_latency_from_intended_start_but_hardly_in_service_time(tmp_path: Path) -> None:
    lf = tmp_path / "locustfile.py"
    lf.write_text(textwrap.dedent("""
        from harness.load.kit import CustomerUser, task

        class Visitor(CustomerUser):
            @task
            def home(self):
                self.client.get("/", name="GET /")
    """), encoding="utf-8")
    # 50 arrivals/s; the server freezes for the last 1 s of every 3 s; only 3 users may exist,
    # so during a freeze most arrivals wait for a user (as a closed-loop tool would, silently).
    with run_null_target(service_ms=0.2, stall_every=3, stall_for=1) as url:
        outcome = run_load(LoadPlan(
            locustfile=str(lf), host=url, output_dir=str(tmp_path / "out"),
            phases=(PhasePlan("steady", "steady", 50, 6.0),),
            min_users=3, max_users=3, max_start_delay_s=5.0, window_s=1.0,
        ))
    assert outcome.error is None, outcome.error
    (steady,) = outcome.phases
    assert steady.dropped_iterations == 0
    assert steady.latency.p95_ms > 300  # a third of the arrivals met a frozen server
    assert steady.service.p95_ms < 100  # only the few requests in flight saw the freeze
    assert steady.latency.p95_ms > 5 * steady.service.p95_ms
    worst_window = max(recording.percentile_ms(w.latency_hdr, 99.0) for w in steady.windows)
    assert worst_window > 500  # the stall is visible in time, too


def test_noise_floor_measures_the_harness_against_a_known_server() -> None:
    floor = measure_noise_floor(100, 2.0, service_ms=0.5, warmup_s=0.5)
    assert floor.offered_rps == 100 and floor.server_service_ms == 0.5
    assert floor.latency.count >= 180
    assert 0.5 <= floor.latency.p50_ms < 50.0
    assert floor.p99_overhead_ms >= 0.0
