"""What the load engine is asked to do: a :class:`LoadPlan` of back-to-back :class:`PhasePlan` s.

A plan is plain data with a JSON round-trip (the parent writes it, the engine child reads it), and
imports no Locust. Phases run in order in one process so connections stay warm: a warm-up
(excluded from verdicts), the steady window at the tier's nominal arrival rate, then stress steps
that end early once a stop condition holds (error rate, p99, or achieved/offered throughput).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from harness.errors import ConfigError
from harness.records import PhaseKind, Popularity

PERSONA_WEIGHTS_ENV = "SCALEREADY_PERSONA_WEIGHTS"  # "Name=w,..." the pack's weights override the classes'

Arrivals = Literal["constant", "poisson"]

__all__ = ["Arrivals", "LoadPlan", "PhasePlan", "RemoteWorkers", "tier_plan"]


@dataclass(frozen=True)
class PhasePlan:
    """One phase: an offered arrival rate (iterations per second) held for ``duration_s``."""

    kind: PhaseKind
    label: str
    rate: float
    duration_s: float

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ConfigError(f"phase {self.label!r}: rate = {self.rate}: must be > 0 iterations/s")
        if self.duration_s <= 0:
            raise ConfigError(f"phase {self.label!r}: duration_s = {self.duration_s}: must be > 0")


@dataclass(frozen=True)
class RemoteWorkers:
    """Load workers that other hosts start with ``scaleready worker --master BIND:PORT``.

    ``bind`` is where each tier's Locust master listens (an address the workers reach); it has
    nothing to do with the target, whose host the pack must still allow.
    """

    count: int
    bind: str
    port: int
    join_timeout_s: float

    def plan_fields(self) -> dict[str, Any]:
        """The :class:`LoadPlan` fields these set."""
        return {"remote_workers": self.count, "master_bind": self.bind, "master_port": self.port,
                "worker_connect_timeout_s": self.join_timeout_s}  # fmt: skip


@dataclass(frozen=True)
class LoadPlan:
    """Everything the engine child needs; see the field comments for units and defaults."""

    locustfile: str
    host: str
    output_dir: str
    phases: tuple[PhasePlan, ...]
    customers_file: str | None = None  # JSON lines, exported as SCALEREADY_CUSTOMERS
    user_classes: tuple[str, ...] = ()  # restrict to these class names (default: all non-abstract)
    arrivals: Arrivals = "constant"
    seed: int | None = None
    # which customer each action acts for (the data-volume probe always picks uniformly)
    popularity: Popularity = field(default_factory=Popularity)
    window_s: float = 5.0  # time-window histograms
    # the virtual-user pool (Little's law: users = rate x expected latency x safety)
    expected_latency_s: float = 0.05
    pool_safety: float = 2.0
    min_users: int = 4
    max_users: int = 1000
    max_start_delay_s: float = 1.0  # a token waiting longer than this for a free user is dropped
    # requests
    request_timeout_s: float = 10.0
    max_response_bytes: int = 5_000_000  # larger bodies are counted as "oversized" errors
    # the pack's target.max_rps: requests/s the engine never passes, whatever the arrivals plan
    # (shared out between workers); a request held back to keep it is counted (generator health)
    max_rps: float | None = None
    # stress stop conditions (checked at every window of a stress step)
    stress_stop_error_rate: float | None = 0.05
    stress_stop_p99_ms: float | None = None
    stress_stop_throughput_ratio: float | None = 0.85
    # distributed mode: 0 = one process; N = Locust master + N local worker processes
    workers: int = 0
    # workers that other machines start with `scaleready worker --master HOST:PORT` (they need
    # master_bind on an address they reach and a fixed master_port)
    remote_workers: int = 0
    master_bind: str = "127.0.0.1"  # where the master listens; not the target (allowed_hosts)
    master_port: int = 0  # 0 = pick a free port (local workers only)
    worker_connect_timeout_s: float = 30.0  # for every worker to join and load the locustfile
    # the folder every host holds the same copy of (its version is checked at join); the
    # locustfile is inside it. "" = the locustfile's folder
    pack_dir: str = ""
    # the generator's saturation thresholds (see harness.validity for why)
    saturation_cpu_pct: float = 90.0
    saturation_loop_lag_p99_ms: float = 20.0
    saturation_dropped_ratio: float = 0.01
    saturation_steal_pct: float = 10.0
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the locustfile

    def __post_init__(self) -> None:
        if not self.phases:
            raise ConfigError("load plan has no phases: give at least one PhasePlan")
        if self.max_users < 1 or self.min_users < 1:
            raise ConfigError(
                f"min_users = {self.min_users}, max_users = {self.max_users}: both must be >= 1"
            )
        if self.workers < 0 or self.remote_workers < 0:
            raise ConfigError(
                f"workers = {self.workers}, remote_workers = {self.remote_workers}: must be 0 or more"
            )
        if self.remote_workers and not self.master_port:
            raise ConfigError(
                f"remote_workers = {self.remote_workers} needs a fixed master_port: workers on other "
                "hosts connect to HOST:PORT (scaleready audit --bind HOST:PORT)"
            )
        if self.max_rps is not None and not self.max_rps > 0:
            raise ConfigError(f"max_rps = {self.max_rps}: must be a positive number of requests per second")
        if self.arrivals not in ("constant", "poisson"):
            raise ConfigError(f"arrivals = {self.arrivals!r}: use 'constant' or 'poisson'")

    @property
    def generators(self) -> int:
        """Worker processes sharing the load (local and remote); 0 = this process alone."""
        return self.workers + self.remote_workers

    @property
    def pack_folder(self) -> Path:
        return Path(self.pack_dir) if self.pack_dir else Path(self.locustfile).resolve().parent

    @property
    def total_duration_s(self) -> float:
        return sum(p.duration_s for p in self.phases)

    def with_phases(self, phases: tuple[PhasePlan, ...]) -> LoadPlan:
        return replace(self, phases=phases)

    # --- JSON round-trip -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["phases"] = [asdict(p) for p in self.phases]
        data["user_classes"] = list(self.user_classes)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadPlan:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"load plan: unknown fields {unknown}; known fields are {sorted(known)}")
        values = dict(data)
        values["phases"] = tuple(PhasePlan(**p) for p in data["phases"])
        values["user_classes"] = tuple(data.get("user_classes", ()))
        if "popularity" in data:
            values["popularity"] = Popularity(**data["popularity"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> LoadPlan:
        return cls.from_dict(json.loads(text))

    def write(self, path: Path) -> Path:
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> LoadPlan:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def tier_plan(
    *,
    locustfile: str,
    host: str,
    output_dir: str,
    rate: float,
    warmup_s: float = 10.0,
    steady_s: float = 30.0,
    stress_factors: tuple[float, ...] = (1.5, 2.0, 3.0, 4.0),
    stress_s: float = 10.0,
    **options: Any,
) -> LoadPlan:
    """The usual tier: warm-up at the nominal rate, a steady window, then stress steps."""
    phases: list[PhasePlan] = []
    if warmup_s > 0:
        phases.append(PhasePlan("warmup", "warmup", rate, warmup_s))
    phases.append(PhasePlan("steady", "steady", rate, steady_s))
    for factor in stress_factors:
        phases.append(PhasePlan("stress", f"stress x{factor:g}", rate * factor, stress_s))
    return LoadPlan(
        locustfile=locustfile, host=host, output_dir=output_dir, phases=tuple(phases), **options
    )
