"""A phase's tally: every request counted once, frozen into typed data that crosses processes
without loss, and merged across workers as if one process had recorded everything."""

from __future__ import annotations

import json

import pytest

from harness.load import recording
from harness.load.plan import PhasePlan
from harness.load.tally import (
    MAX_ERROR_SAMPLES,
    RECORD_BATCH,
    LiveTally,
    PhaseTally,
    ProcessHealth,
    merge_tallies,
)
from harness.records import ErrorSample
from tests.load.tallies import endpoint_tally, phase_tally, process_health, window_tally


def sample(at: float, reason: str = "http-500") -> ErrorSample:
    return ErrorSample(endpoint="GET /", method="GET", url="/", status=500, reason=reason,
                       body_excerpt="", at=at)  # fmt: skip


def test_merging_tallies_adds_counts_and_keeps_each_process_health() -> None:
    def tally(requests: int, cpu: float) -> PhaseTally:
        return phase_tally(
            scheduled=requests, started=requests, endpoints={"GET /": endpoint_tally([1.0] * requests)},
            processes=(process_health(cpu_max=cpu, cpu_mean=cpu, lag_p99_ms=1.0, lag_max_ms=1.0, rss_max_mb=50.0),),
        )

    merged = merge_tallies([tally(3, 10.0), tally(4, 95.0)])
    assert merged.endpoints["GET /"].requests == 7
    assert merged.offered_rps == 20.0
    assert [p.cpu_mean for p in merged.processes] == [10.0, 95.0]


def test_two_workers_merged_are_one_recorder_that_saw_every_request() -> None:
    a_values, b_values = [0.3, 1.2, 7.5, 40.0], [0.9, 2.2, 2.2, 350.0, 1200.0]
    a = phase_tally(
        offered_rps=50.0, started_at=10.0, ended_at=20.0, active_s=9.5, scheduled=5, dropped=1,
        endpoints={"GET /": endpoint_tally(a_values[:2]), "POST /x": endpoint_tally(a_values[2:], errors=1,
                                                                                    reasons={"timeout": 1})},
        windows=(window_tally(0, a_values[:3], start=10.0, end=15.0), window_tally(1, a_values[3:], start=15.0, end=20.0)),
        notes=("a's note",), samples=(sample(12.0),), aborted=None,
    )  # fmt: skip
    b = phase_tally(
        offered_rps=50.0, started_at=10.2, ended_at=20.4, active_s=9.8, scheduled=6, dropped=2,
        endpoints={"POST /x": endpoint_tally(b_values, errors=2, reasons={"timeout": 1, "http-503": 1})},
        windows=(window_tally(1, b_values, start=15.2, end=20.4),),
        notes=("b's note",), samples=(sample(11.0, "http-503"),), aborted="stop condition: p99",
    )  # fmt: skip
    merged = merge_tallies([a, b])

    post = merged.endpoints["POST /x"]
    everything = recording.decode(endpoint_tally(a_values[2:] + b_values).lat)
    assert list(recording.decode(post.lat).counts) == list(everything.counts)  # bucket for bucket
    assert (post.requests, post.errors, post.reasons) == (7, 3, {"timeout": 2, "http-503": 1})
    assert merged.endpoints["GET /"] == a.endpoints["GET /"]  # only one worker saw it: unchanged
    assert [(w.index, w.start, w.end, w.requests) for w in merged.windows] == [(0, 10.0, 15.0, 3), (1, 15.0, 20.4, 6)]
    assert recording.decode(merged.windows[1].lat).get_total_count() == 6
    assert (merged.started_at, merged.ended_at, merged.active_s) == (10.0, 20.4, 9.8)
    assert (merged.offered_rps, merged.scheduled, merged.dropped) == (100.0, 11, 3)
    assert merged.notes == ("a's note", "b's note")
    assert [s.at for s in merged.samples] == [11.0, 12.0]  # in time order, whoever saw them
    assert merged.aborted == "stop condition: p99"


def test_merged_error_samples_keep_the_first_ones_in_time() -> None:
    early = phase_tally(samples=tuple(sample(100.0 + i) for i in range(MAX_ERROR_SAMPLES)))
    earlier = phase_tally(samples=tuple(sample(50.0 + i) for i in range(10)))
    merged = merge_tallies([early, earlier])
    assert len(merged.samples) == MAX_ERROR_SAMPLES
    assert merged.samples[0].at == 50.0 and merged.samples[-1].at == 100.0 + MAX_ERROR_SAMPLES - 11


def test_a_tally_survives_the_trip_between_processes() -> None:
    tally = phase_tally(
        endpoints={"GET /": endpoint_tally([1.0, 2.0], errors=1, reasons={"timeout": 1})},
        windows=(window_tally(0, [1.0, 2.0]),), notes=("late responses",), samples=(sample(1.5),),
        processes=(process_health(steal_pct=0.4, machine_cpu_pct=None, max_rps=45.0, paced_requests=9,
                                  paced_held=2, paced_wait_s=0.01),),
    )  # fmt: skip
    # JSON turns tuples into lists and keeps only plain data, as Locust's messages do
    wire = json.loads(json.dumps(tally.to_dict()))
    assert PhaseTally.from_dict(wire) == tally


def test_a_misspelt_key_on_the_wire_is_an_error_not_a_silent_default() -> None:
    wire = phase_tally(processes=(process_health(),)).to_dict()
    wire["processes"][0]["cpu_maen"] = wire["processes"][0].pop("cpu_mean")
    with pytest.raises(TypeError, match="cpu_maen"):
        PhaseTally.from_dict(wire)
    wire["processes"][0]["cpu_mean"] = wire["processes"][0].pop("cpu_maen")
    del wire["scheduled"]
    with pytest.raises(TypeError, match="scheduled"):
        PhaseTally.from_dict(wire)
    wire["scheduled"], wire["schedueld"] = 10, 10
    with pytest.raises(TypeError, match="schedueld"):
        PhaseTally.from_dict(wire)


def test_every_recorded_request_is_in_the_snapshot_whether_or_not_its_batch_was_full() -> None:
    live = LiveTally(PhasePlan("steady", "steady", 10.0, 60.0), 10.0, window_s=60.0)
    n = RECORD_BATCH + 7  # one full batch recorded, seven still buffered
    for i in range(n):
        live.record("GET /", 2.0 + i % 3, 1.0, "timeout" if i % 100 == 0 else None)
    snap = live.snapshot()
    (endpoint,) = snap.endpoints.values()
    assert (endpoint.requests, endpoint.errors, endpoint.reasons) == (n, 6, {"timeout": 6})
    assert recording.decode(endpoint.lat).get_total_count() == n
    assert recording.decode(endpoint.svc).get_total_count() == n
    assert [w.requests for w in snap.windows] == [n]
    assert snap.requests_in_window == n  # the phase is still open: everything so far


def test_a_process_without_a_cap_or_machine_readings_reports_none_not_zero() -> None:
    live = LiveTally(PhasePlan("steady", "steady", 10.0, 1.0), 10.0, window_s=1.0)
    (health,) = live.snapshot().processes
    assert health == ProcessHealth(cpu_max=0.0, cpu_mean=0.0, lag_p99_ms=0.0, lag_max_ms=0.0, rss_max_mb=0.0)
    assert health.max_rps is None and health.runqueue_wait_pct is None
