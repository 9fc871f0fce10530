"""HDR latency histograms: the one place latencies are recorded, merged and summarised.

Values are integer **microseconds** in an ``HdrHistogram(1, 3_600_000_000, 3)``: from 1 µs to one
hour at three significant digits, so a recorded 1.234 ms reads back as 1.234 ms (Locust's own
statistics round to about two digits and cannot be merged exactly). Histograms travel between
processes and onto disk as the standard HDR base64 encoding (compressed, a few hundred bytes), so
a record holds plain strings and merging several workers' histograms loses nothing.

Pure: no Locust, no I/O. Used by the load engine (recording) and by analysis (reading).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from hdrh.histogram import HdrHistogram

from harness.records import LatencySummary

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour
SIGNIFICANT_DIGITS = 3

__all__ = [
    "HIGHEST_US",
    "LOWEST_US",
    "SIGNIFICANT_DIGITS",
    "counts_index",
    "decode",
    "empty_summary",
    "encode",
    "merge",
    "merge_encoded",
    "new_histogram",
    "percentile_ms",
    "percentiles_us",
    "prepare",
    "record_many_ms",
    "record_ms",
    "summarise",
    "summarise_encoded",
]


def new_histogram() -> HdrHistogram:
    """An empty histogram with the harness's range and precision (microseconds)."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def _geometry() -> tuple[int, int, int, int, int]:
    h = new_histogram()
    return (h.unit_magnitude, h.sub_bucket_mask, h.unit_magnitude + h.sub_bucket_half_count_magnitude + 1,
            h.sub_bucket_half_count_magnitude, h.sub_bucket_half_count)


# hdrh's bucket geometry for the harness's (fixed) range and precision, so that the counts index of
# a value is computed here in a few integer operations instead of hdrh's five Python calls
_UNIT_MAGNITUDE, _SUB_BUCKET_MASK, _BUCKET_SHIFT, _HALF_COUNT_MAGNITUDE, _HALF_COUNT = _geometry()


def _us(value_ms: float) -> int:
    us = int(value_ms * 1000.0 + 0.5)
    if us < LOWEST_US:
        return LOWEST_US
    if us > HIGHEST_US:
        return HIGHEST_US
    return us


def counts_index(us: int) -> int:
    """hdrh's counts index of ``us`` (``HdrHistogram._counts_index_for``) for the harness's histograms."""
    bucket = (us | _SUB_BUCKET_MASK).bit_length() - _BUCKET_SHIFT
    return ((bucket + 1) << _HALF_COUNT_MAGNITUDE) + (us >> (bucket + _UNIT_MAGNITUDE)) - _HALF_COUNT


def record_ms(hist: HdrHistogram, value_ms: float) -> None:
    """Record one latency given in milliseconds (clamped into the histogram's range).

    Exactly ``hist.record_value(us)`` (same bucket, count, min and max), without hdrh's per-call
    overhead: the null target records every request it serves, so this is on its hot path.
    """
    us = _us(value_ms)
    _count(hist, counts_index(us), us)


def record_many_ms(histograms: Sequence[HdrHistogram], values_ms: Sequence[float]) -> None:
    """:func:`record_ms` of every value into each of ``histograms``, in a few vectorised passes.

    The same counts, total, min and max as recording the values one by one. The load engine
    buffers its latencies and records them this way: one call per few hundred requests costs a
    fraction of a per-request record, which near the generator's limit is throughput.
    """
    if not values_ms:
        return
    us = np.clip(np.floor(np.asarray(values_ms, dtype=np.float64) * 1000.0 + 0.5), LOWEST_US, HIGHEST_US)
    us = us.astype(np.int64)
    # bit_length of an integer below 2**53 is the exponent frexp gives its (exact) float value
    bucket = np.frexp((us | _SUB_BUCKET_MASK).astype(np.float64))[1].astype(np.int64) - _BUCKET_SHIFT
    index = ((bucket + 1) << _HALF_COUNT_MAGNITUDE) + (us >> (bucket + _UNIT_MAGNITUDE)) - _HALF_COUNT
    where, counts = np.unique(index, return_counts=True)
    low, high, n = int(us.min()), int(us.max()), len(us)
    for hist in histograms:
        view = _counts(hist)
        view[where] += counts.astype(np.uint64)
        hist.total_count += n
        if low < hist.min_value:
            hist.min_value = low
        if high > hist.max_value:
            hist.max_value = high


def _count(hist: HdrHistogram, index: int, us: int) -> None:
    hist.counts[index] += 1
    hist.total_count += 1
    if us < hist.min_value:
        hist.min_value = us
    if us > hist.max_value:
        hist.max_value = us


def encode(hist: HdrHistogram) -> str:
    """The HDR base64 (compressed) encoding of ``hist`` as text."""
    return hist.encode().decode("ascii")


def decode(encoded: str) -> HdrHistogram:
    """Inverse of :func:`encode`; an empty string decodes to an empty histogram."""
    if not encoded:
        return new_histogram()
    hist = new_histogram()
    hist.decode_and_add(encoded.encode("ascii") if isinstance(encoded, str) else encoded)
    return hist


def merge(histograms: Iterable[HdrHistogram]) -> HdrHistogram:
    """A new histogram holding every value of every input (lossless: counts add up exactly)."""
    total = new_histogram()
    for hist in histograms:
        if hist.get_total_count():
            total.add(hist)
    return total


def merge_encoded(encoded: Iterable[str]) -> str:
    """Merge encoded histograms into one encoded histogram."""
    return encode(merge(decode(e) for e in encoded if e))


def percentile_ms(encoded: str, percentile: float) -> float:
    """The value at ``percentile`` (0..100) of an encoded histogram, in milliseconds (0 if empty)."""
    return percentiles_us(decode(encoded), (percentile,))[percentile] / 1000.0


def empty_summary() -> LatencySummary:
    return LatencySummary(count=0, p50_ms=0.0, p95_ms=0.0, p99_ms=0.0, p999_ms=0.0, max_ms=0.0, mean_ms=0.0)


class _IndexValues:
    """Per counts-index values (highest and median equivalent), computed once with hdrh's rules.

    hdrh's pure-Python percentile and mean walk all ~23 500 buckets per call (tens of ms each);
    inside the load generator's event loop that would show up as loop lag. With these arrays a
    summary is a few vectorised numpy operations and gives exactly hdrh's answers.
    """

    def __init__(self) -> None:
        h = new_histogram()
        n = h.counts_len
        low = [h.get_value_from_index(i) for i in range(n)]
        self.highest = np.array([h.get_highest_equivalent_value(v) for v in low], dtype=np.float64)
        self.median = np.array([h._hdr_median_equiv_value(v) for v in low], dtype=np.float64)


_index_values: _IndexValues | None = None


def _values() -> _IndexValues:
    global _index_values  # a lazily built constant table, not configuration
    if _index_values is None:
        _index_values = _IndexValues()
    return _index_values


def prepare() -> None:
    """Build the lookup table now (~0.1 s), e.g. before a load phase rather than during one."""
    _values()


def _counts(hist: HdrHistogram) -> np.ndarray:
    return np.frombuffer(hist.counts, dtype=np.uint64, count=hist.counts_len)


def percentiles_us(hist: HdrHistogram, percentiles: Iterable[float]) -> dict[float, float]:
    """hdrh's ``get_value_at_percentile`` for several percentiles at once (microseconds)."""
    total = hist.get_total_count()
    pcts = list(percentiles)
    if not total:
        return dict.fromkeys(pcts, 0.0)
    cum = np.cumsum(_counts(hist))
    highest = _values().highest
    out = {}
    for p in pcts:
        target = max(int(min(p, 100.0) * total / 100 + 0.5), 1)
        idx = int(np.searchsorted(cum, target, side="left"))
        out[p] = float(highest[min(idx, len(highest) - 1)])
    return out


def buckets_ms(encoded: str) -> list[tuple[float, int]]:
    """The recorded values of an encoded histogram as (value in ms, count), one per non-empty
    bucket in increasing value (a bucket's value is its median equivalent, as in the mean): the
    whole sample, at the histogram's precision, in a few hundred pairs."""
    hist = decode(encoded)
    counts = _counts(hist)
    nonzero = np.flatnonzero(counts)
    values = _values().median[nonzero] / 1000.0
    return [(round(float(v), 4), int(c)) for v, c in zip(values, counts[nonzero], strict=True)]


def summarise(hist: HdrHistogram) -> LatencySummary:
    """Count, percentiles, max and mean of ``hist`` in milliseconds (hdrh's definitions)."""
    count = hist.get_total_count()
    if not count:
        return empty_summary()
    pct = percentiles_us(hist, (50.0, 95.0, 99.0, 99.9))
    mean_us = float(np.dot(_counts(hist).astype(np.float64), _values().median)) / count
    return LatencySummary(
        count=count,
        p50_ms=pct[50.0] / 1000.0,
        p95_ms=pct[95.0] / 1000.0,
        p99_ms=pct[99.0] / 1000.0,
        p999_ms=pct[99.9] / 1000.0,
        max_ms=hist.get_max_value() / 1000.0,
        mean_ms=mean_us / 1000.0,
    )


def summarise_encoded(encoded: str) -> LatencySummary:
    return summarise(decode(encoded))
