"""The resources of a target the harness did not start: its Prometheus metrics, a PID, a cgroup.

A target the harness starts is sampled through its process tree (harness/target.py). One that
runs elsewhere (`--target URL`) can still say how it is doing: a pack names a Prometheus text
endpoint (`target.stats_path`, e.g. "/metrics" with `process_resident_memory_bytes`,
`process_cpu_seconds_total`, `process_open_fds`), a local PID (`target.stats_pid`) or a cgroup
(`target.stats_cgroup`, cgroup v2). A sampler thread reads it about once a second into the same
`ResourceSample`s, so the leak and saturation rules judge whichever source there is, and the
record says which one it was (`TargetInfo.resources_source`).

Counters (CPU seconds) become a rate between two reads: each sample is the CPU used since the
previous one, as for the process tree.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from harness.config import TargetSection
from harness.errors import ConfigError
from harness.records import ResourceSample
from harness.target import check_target_allowed, sample_tree

__all__ = [
    "PROCESS_TREE", "Reading", "ResourceSampler", "cgroup_reader", "external_sampler", "parse_prometheus",
    "pid_reader", "prometheus_reader",
]  # fmt: skip

PROCESS_TREE = "the target's process tree (started by the harness)"


def external_sampler(config: TargetSection, base_url: str) -> ResourceSampler | None:
    """A sampler for the source the pack names (a PID first, then a cgroup, then Prometheus:
    the operating system's own counts before what the service says of itself); None if none."""
    if config.stats_pid is not None:
        return ResourceSampler(pid_reader(config.stats_pid), f"PID {config.stats_pid} on this machine")
    if config.stats_cgroup is not None:
        path = Path(config.stats_cgroup)
        return ResourceSampler(cgroup_reader(path), f"cgroup {path}")
    if config.stats_path is not None:
        url = config.stats_path if "://" in config.stats_path else base_url.rstrip("/") + config.stats_path
        check_target_allowed(url, config.allowed_hosts, "target.stats_path in scenario.toml")
        return ResourceSampler(prometheus_reader(url), f"Prometheus metrics at {url}")
    return None


@dataclass(frozen=True)
class Reading:
    """One read of a source: CPU as cumulative seconds (None when it does not say)."""

    rss_mb: float
    cpu_seconds: float | None
    open_fds: int
    threads: int


Reader = Callable[[], Reading | ResourceSample | None]


def parse_prometheus(text: str) -> Reading | None:
    """The process metrics of a Prometheus text exposition, summed over the series of each
    (a target whose workers each export their own); None when it has no resident memory."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + float(sample.value)
    rss = values.get("process_resident_memory_bytes")
    if rss is None:
        return None
    threads = values.get("process_threads", values.get("go_threads", 0.0))
    return Reading(
        rss_mb=rss / 2**20,
        cpu_seconds=values.get("process_cpu_seconds_total"),
        open_fds=int(values.get("process_open_fds", 0)),
        threads=int(threads),
    )


def prometheus_reader(url: str, timeout_s: float = 2.0) -> Callable[[], Reading | None]:
    client = httpx.Client(timeout=timeout_s)

    def read() -> Reading | None:
        try:
            response = client.get(url)
            response.raise_for_status()
            return parse_prometheus(response.text)
        except (httpx.HTTPError, ValueError):
            return None  # a missed read is a gap in the samples, not the end of the audit

    return read


def pid_reader(pid: int) -> Callable[[], ResourceSample | None]:
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        raise ConfigError(f"target.stats_pid: no process {pid} on this machine; give the PID of the running service") from None
    known: dict[int, psutil.Process] = {}
    return lambda: sample_tree(root, known)


def cgroup_reader(path: Path) -> Callable[[], Reading | None]:
    """cgroup v2: memory.current, cpu.stat's usage_usec, pids.current; the open files of the
    processes in cgroup.procs that this user may read."""
    if not (path / "memory.current").exists():
        raise ConfigError(
            f"target.stats_cgroup: {path} is not a cgroup v2 folder with memory.current; "
            "give its path under /sys/fs/cgroup"
        )

    def read() -> Reading | None:
        try:
            rss = int((path / "memory.current").read_text())
            cpu_us = _cpu_stat(path / "cpu.stat")
            pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
            threads = int((path / "pids.current").read_text()) if (path / "pids.current").exists() else 0
        except (OSError, ValueError):
            return None
        fds = 0
        for pid in pids:
            try:
                fds += psutil.Process(pid).num_fds()
            except psutil.Error:
                continue
        return Reading(rss_mb=rss / 2**20, cpu_seconds=None if cpu_us is None else cpu_us / 1e6, open_fds=fds, threads=threads)

    return read


def _cpu_stat(path: Path) -> int | None:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "usage_usec":
                return int(value)
    except OSError:
        return None
    return None


class ResourceSampler:
    """Reads a source about once a second on its own thread; the samples as the tiers ask."""

    def __init__(self, read: Reader, source: str, interval_s: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self._read = read
        self._interval_s = interval_s
        self._clock = clock
        self._samples: list[ResourceSample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous: tuple[float, float] | None = None  # (at, cpu seconds)
        self.readings = 0  # reads that answered (a CPU counter's origin included)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="target-resources", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def samples(self, since: float | None = None) -> tuple[ResourceSample, ...]:
        with self._lock:
            return tuple(s for s in self._samples if since is None or s.at >= since)

    def sample_once(self) -> ResourceSample | None:
        """Read the source now; the first read of a CPU counter only sets its origin."""
        reading = self._read()
        at = self._clock()
        self.readings += reading is not None
        if reading is None or isinstance(reading, ResourceSample):
            sample = reading
        else:
            cpu_pct = 0.0
            if reading.cpu_seconds is not None:
                previous, self._previous = self._previous, (at, reading.cpu_seconds)
                if previous is None or at <= previous[0]:
                    return None  # the counter's origin: a CPU of 0 here would be made up
                cpu_pct = max(0.0, reading.cpu_seconds - previous[1]) / (at - previous[0]) * 100
            sample = ResourceSample(
                at=at, rss_mb=reading.rss_mb, cpu_pct=cpu_pct, open_fds=reading.open_fds, threads=reading.threads
            )
        if sample is not None:
            with self._lock:
                self._samples.append(sample)
        return sample

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sample_once()
