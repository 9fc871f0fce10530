"""harness.load.recording: HDR histograms in microseconds, encoded as text, merged without loss."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.load import recording

latencies_ms = st.lists(st.floats(min_value=0.0, max_value=120_000.0, allow_nan=False), max_size=300)


@settings(max_examples=60, deadline=None)
@given(st.lists(latencies_ms, min_size=1, max_size=5))
def test_merging_per_worker_histograms_equals_recording_everything_in_one(parts: list[list[float]]) -> None:
    single = recording.new_histogram()
    per_worker = []
    for values in parts:
        hist = recording.new_histogram()
        for v in values:
            recording.record_ms(hist, v)
            recording.record_ms(single, v)
        per_worker.append(recording.encode(hist))  # as it travels between processes

    merged = recording.decode(recording.merge_encoded(per_worker))

    assert merged.get_total_count() == single.get_total_count()
    assert recording.summarise(merged) == recording.summarise(single)
    for p in (50.0, 90.0, 99.0, 99.9, 100.0):
        assert merged.get_value_at_percentile(p) == single.get_value_at_percentile(p)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=0.001, max_value=60_000.0, allow_nan=False), min_size=1, max_size=200))
def test_summary_agrees_with_hdrh_and_keeps_three_significant_digits(values: list[float]) -> None:
    hist = recording.new_histogram()
    for v in values:
        recording.record_ms(hist, v)
    summary = recording.summarise(hist)
    assert summary.count == len(values)
    assert summary.p50_ms == hist.get_value_at_percentile(50.0) / 1000.0
    assert summary.p99_ms == hist.get_value_at_percentile(99.0) / 1000.0
    assert abs(summary.mean_ms - hist.get_mean_value() / 1000.0) < 1e-6
    # three significant digits: the reported max is within 0.1 % (or 1 µs) of the true max
    assert abs(summary.max_ms - max(values)) <= max(0.001, max(values) * 0.001)


def test_one_millisecond_precision_is_not_rounded_like_locust() -> None:
    hist = recording.new_histogram()
    for v in (1.234, 1.234, 1.234, 87.65):
        recording.record_ms(hist, v)
    assert recording.summarise(hist).p50_ms == 1.234  # Locust would report 1 ms
    assert 87.6 <= recording.summarise(hist).max_ms <= 87.7  # Locust would report 88 ms


def test_encoding_round_trips_and_empty_is_harmless() -> None:
    hist = recording.new_histogram()
    for v in (0.5, 2.0, 700.0):
        recording.record_ms(hist, v)
    again = recording.decode(recording.encode(hist))
    assert recording.summarise(again) == recording.summarise(hist)
    assert recording.summarise(recording.decode("")) == recording.empty_summary()
    assert recording.percentile_ms("", 99.0) == 0.0
    assert recording.percentile_ms(recording.encode(hist), 100.0) == hist.get_max_value() / 1000.0


def test_values_outside_the_range_are_clamped_not_lost() -> None:
    hist = recording.new_histogram()
    recording.record_ms(hist, -5.0)
    recording.record_ms(hist, 10 * 3_600_000.0)  # ten hours
    assert hist.get_total_count() == 2


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=-1.0, max_value=5_000_000_000.0, allow_nan=False), min_size=1, max_size=200),
    st.integers(min_value=0, max_value=200),
)
def test_fast_recording_is_exactly_hdrh_record_value(values: list[float], split: int) -> None:
    ours, bulk_a, bulk_b, reference = (recording.new_histogram() for _ in range(4))
    for v in values:
        recording.record_ms(ours, v)
        reference.record_value(min(max(int(v * 1000.0 + 0.5), recording.LOWEST_US), recording.HIGHEST_US))
    # in bulk, in two batches (as the engine flushes its buffer), into two histograms at once
    recording.record_many_ms((bulk_a, bulk_b), values[:split])
    recording.record_many_ms((bulk_a, bulk_b), values[split:])
    for hist in (ours, bulk_a, bulk_b):
        assert list(hist.counts) == list(reference.counts)
        assert hist.get_total_count() == reference.get_total_count()
        assert hist.get_min_value() == reference.get_min_value()
        assert hist.get_max_value() == reference.get_max_value()
        assert recording.encode(hist) == recording.encode(reference)


def test_counts_index_matches_hdrh_at_every_bucket_edge() -> None:
    hist = recording.new_histogram()
    edges = [1, recording.HIGHEST_US]
    for k in range(1, 32):
        edges += [v for v in (2**k - 1, 2**k, 2**k + 1) if 1 <= v <= recording.HIGHEST_US]
    for us in [*edges, *range(1, 5000)]:
        assert recording.counts_index(us) == hist._counts_index_for(us)
    bulk, reference = recording.new_histogram(), recording.new_histogram()
    recording.record_many_ms((bulk,), [us / 1000.0 for us in edges])
    for us in edges:
        reference.record_value(us)
    assert list(bulk.counts) == list(reference.counts)
