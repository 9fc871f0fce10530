"""The pack's `scenario.toml`: its schema, its validation and the profiles.

Validation is pydantic's; this module turns its errors into one sentence per problem that names
the file, the key (and line when it can be found), what was expected, and a "did you mean" for
misspelt keys. The result is frozen: nothing downstream mutates configuration.

Profiles inherit (`quick` and `nightly` start from `standard`), like Hypothesis settings profiles:
a pack may override any field of any profile under `[profiles.NAME]`, or add its own profiles
with `parent = "..."`.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.addresses import is_loopback
from harness.errors import ConfigError

PositiveFloat = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackSection(_Strict):
    name: str = Field(min_length=1)
    description: str = ""


class TargetSection(_Strict):
    start: str | None = Field(
        default=None,
        description="command that starts the service; placeholders {port} {python} {state_dir} {flaw}",
    )
    cwd: str = "."
    health_path: str = "/health"
    ready_timeout_s: PositiveFloat = 30.0
    request_timeout_s: PositiveFloat = 10.0
    base_url: str | None = None
    allowed_hosts: list[str] = []
    max_rps: float | None = Field(default=None, gt=0)
    env: dict[str, str] = {}
    flaws: list[str] = []
    flaw_env: str | None = None
    # Where the resources of a target the harness did not start are read (harness/target_resources.py):
    # a Prometheus text endpoint (a path on the target, or a URL), a local PID, a cgroup v2 folder.
    stats_path: str | None = None
    stats_pid: int | None = Field(default=None, gt=0)
    stats_cgroup: str | None = None
    # Options of `start` and names in `env` (or the harness's environment) whose values are
    # credentials, beyond those whose names already say so (--api-key, DB_PASSWORD, ...).
    secrets: list[str] = []

    @field_validator("health_path")
    @classmethod
    def _absolute_path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"must start with '/', for example \"/{v}\"")
        return v

    @field_validator("stats_path")
    @classmethod
    def _path_or_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("/", "http://", "https://")):
            raise ValueError(f"must be a path on the target or a URL, for example \"/{v}\"")
        return v

    @model_validator(mode="after")
    def _start_or_url(self) -> TargetSection:
        if self.start is not None and "{port}" not in self.start:
            raise ValueError(
                "start must contain the {port} placeholder so the harness can pick a free port"
            )
        return self


class CustomersSection(_Strict):
    peak_rps_per_customer: PositiveFloat
    goal: int = Field(default=5000, gt=0)
    provision: str = "provision.py"
    # Customers created at once. Small on purpose: httpx's async pool costs CPU per open
    # connection, and on 2 cores 4 at once created 62 clinics/s where 32 managed 26/s.
    provision_concurrency: int = Field(default=4, ge=1, le=512)
    locustfile: str = "locustfile.py"
    personas: dict[str, PositiveFloat] = {}


class SloTarget(_Strict):
    p95_ms: PositiveFloat
    p99_ms: PositiveFloat

    @model_validator(mode="after")
    def _ordered(self) -> SloTarget:
        if self.p99_ms < self.p95_ms:
            raise ValueError(f"p99_ms ({self.p99_ms}) must be at least p95_ms ({self.p95_ms})")
        return self


class SloSection(_Strict):
    p95_ms: PositiveFloat = 200.0
    p99_ms: PositiveFloat = 500.0
    error_rate: float = Field(default=0.01, ge=0, le=1)
    ready_headroom: float = Field(default=1.5, ge=1.0)
    endpoints: dict[str, SloTarget] = {}


class SuiteSection(_Strict):
    regression: str | None = "tests"
    properties: str | None = "properties"
    invariants: str | None = "invariants.py"
    # The service's OpenAPI document, for Schemathesis's checks in the properties stage: a path
    # on the started target ("/openapi.json"), a file in the pack, or an http(s) URL (on loopback
    # unless target.allowed_hosts names its host). None: no schema-driven checks.
    openapi: str | None = None

    @field_validator("openapi")
    @classmethod
    def _document(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip()
        if not v:
            raise ValueError(
                'give a path on the target ("/openapi.json"), a file in the pack or a URL; '
                "leave the key out for no OpenAPI checks"
            )
        scheme = urlsplit(v).scheme
        if scheme and len(scheme) > 1 and scheme not in ("http", "https"):
            raise ValueError('only http(s) URLs, paths on the target and files are read, e.g. "/openapi.json"')
        return v


class Profile(_Strict):
    """How long and how hard an audit measures. Every field has a default (the standard profile)."""

    parent: str | None = None
    description: str = ""
    tiers: list[int] | None = None
    # The data-volume probe before each tier's load: this many iterations at probe_rate (a few a
    # second, so requests hardly overlap); 0 leaves it out.
    probe_iterations: int = Field(default=60, ge=0)
    probe_rate: PositiveFloat = 4.0
    warmup_s: PositiveFloat = 10.0
    steady_s: PositiveFloat = 40.0
    stress_factors: list[PositiveFloat] = [1.5, 2.0, 3.0, 4.0, 6.0, 8.0]
    stress_step_s: PositiveFloat = 8.0
    # At the goal's tier, more windows at the READY threshold when the verdict would rest on one
    # there (held and failed loads close to it); 0 never measures again.
    margin_repeats: int = Field(default=2, ge=0)
    window_s: PositiveFloat = 5.0
    hypothesis_examples: int = Field(default=50, ge=1)
    # With suite.openapi: Schemathesis's generated requests per operation, and the longest its
    # checks may take (then stopped, keeping what they found).
    schemathesis_examples: int = Field(default=20, ge=1)
    schemathesis_time_s: PositiveFloat = 180.0
    max_users: int = Field(default=2000, ge=1)
    noise_floor_s: float = Field(default=5.0, ge=0)
    integrity_sample: int = Field(default=200, ge=0)
    # The overlap probe after each tier's load: the pack's @concurrent_write sent this many at
    # once for one customer, this many rounds (each on another of the busiest customers), before
    # the integrity checks; 0 rounds leaves it out.
    overlap_rounds: int = Field(default=4, ge=0, le=50)
    # 16 at once: on the booking demo 8 overlapped too little to show a lost update most rounds
    # (the service's window between its read and its write is a millisecond or two).
    overlap_concurrency: int = Field(default=16, ge=2, le=64)
    arrivals: Literal["constant", "poisson"] = "constant"
    # Which customer each action acts for: "uniform", or "zipf" (customer k of N gets
    # 1/k**zipf_exponent of the weight), where a few large customers carry much of the traffic
    # and writes on one customer overlap more often. Uniform by default until Zipf is shown to
    # leave the demo's verdicts as they are (the measurements are in the README, "Races").
    # Races are found by the overlap probe whatever the popularity (docs/PACKS.md).
    popularity: Literal["uniform", "zipf"] = "uniform"
    zipf_exponent: PositiveFloat = 1.0
    stage_timeout_s: PositiveFloat = 600.0
    # The shape of the service the harness starts: "pack" runs target.start as written (the
    # booking demo: one process on SQLite); "postgresql" also starts a throwaway PostgreSQL
    # server and gives the target DATABASE_URL and {database_url} (harness/database.py).
    database: Literal["pack", "postgresql"] = "pack"
    # Extra environment for the started target in this profile, e.g. {WEB_CONCURRENCY = "4"}.
    target_env: dict[str, str] = {}

    @field_validator("stress_factors")
    @classmethod
    def _factors_above_one(cls, v: list[float]) -> list[float]:
        if any(f <= 1.0 for f in v) or v != sorted(v):
            raise ValueError(f"{v}: stress factors must be above 1 and increasing, e.g. [1.5, 2, 3]")
        return v


_PROFILE_FIELDS = set(Profile.model_fields)

# Built-in profiles; a pack's [profiles.NAME] tables override these field by field.
BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    "standard": {"description": "the default audit (about 7 minutes for the bundled demo pack)"},
    "quick": {
        "parent": "standard",
        "description": "same kind of report in about 3 minutes: short windows, few examples",
        "warmup_s": 2.0,
        "steady_s": 8.0,
        # 1.5x: READY needs 1.5x headroom, so the quick profile measures right there; 3x to see
        # past the knee when there is one.
        "stress_factors": [1.5, 3.0],
        "stress_step_s": 4.0,
        "hypothesis_examples": 15,
        "schemathesis_examples": 5,
        "schemathesis_time_s": 60.0,
        "probe_iterations": 40,
        "noise_floor_s": 3.0,
        "integrity_sample": 60,
    },
    "nightly": {
        "parent": "standard",
        "description": "long windows and many examples, for the nightly job",
        "warmup_s": 20.0,
        "steady_s": 120.0,
        "stress_step_s": 20.0,
        "hypothesis_examples": 200,
        "schemathesis_examples": 100,
        "schemathesis_time_s": 600.0,
        "integrity_sample": 1000,
    },
    "audit": {
        "parent": "nightly",
        "description": "a pre-launch audit report for a client",
    },
}


class ScenarioConfig(_Strict):
    pack: PackSection
    target: TargetSection
    customers: CustomersSection
    tiers: list[int] = [50, 500, 5000]
    slo: SloSection = SloSection()
    suite: SuiteSection = SuiteSection()
    profiles: dict[str, dict[str, Any]] = {}

    @field_validator("tiers")
    @classmethod
    def _tiers_increase(cls, v: list[int]) -> list[int]:
        return check_tiers(v)

    @field_validator("profiles")
    @classmethod
    def _profile_keys(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, table in v.items():
            for key in table:
                if key not in _PROFILE_FIELDS:
                    raise ValueError(
                        f"profiles.{name}: unknown key '{key}'{suggest(key, _PROFILE_FIELDS)}"
                    )
        return v

    @model_validator(mode="after")
    def _openapi_host(self) -> ScenarioConfig:
        url = self.suite.openapi
        if url is not None and urlsplit(url).scheme in ("http", "https"):
            host = urlsplit(url).hostname or ""
            if not (is_loopback(host) or host in self.target.allowed_hosts):
                raise ValueError(
                    f"suite.openapi = {url!r}: host '{host}' is not on loopback; give a path on the "
                    f'target ("/openapi.json"), a file in the pack, or add "{host}" to target.allowed_hosts'
                )
        return self

    def profile(self, name: str) -> Profile:
        """The named profile with inheritance resolved (built-ins overridden by the pack)."""
        return resolve_profile(name, self.profiles)

    @property
    def profile_names(self) -> list[str]:
        return sorted(set(BUILTIN_PROFILES) | set(self.profiles))


def check_tiers(v: list[int]) -> list[int]:
    if not v:
        raise ValueError("at least one tier is needed, e.g. [50, 500, 5000]")
    if any(t <= 0 for t in v):
        raise ValueError(f"{v}: every tier must be a positive number of customers")
    if any(b <= a for a, b in zip(v, v[1:], strict=False)):
        raise ValueError(f"{v}: tiers must increase; write {sorted(set(v))}")
    return v


def resolve_profile(name: str, pack_profiles: Mapping[str, Mapping[str, Any]]) -> Profile:
    tables: dict[str, dict[str, Any]] = {k: dict(v) for k, v in BUILTIN_PROFILES.items()}
    for k, v in pack_profiles.items():
        tables[k] = {**tables.get(k, {}), **v}
    if name not in tables:
        raise ConfigError(
            f"profile '{name}' does not exist{suggest(name, tables)}; "
            f"choose one of {', '.join(sorted(tables))}"
        )
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    current: str | None = name
    while current is not None:
        if current in seen:
            raise ConfigError(f"profile '{name}': parent chain loops back to '{current}'")
        if current not in tables:
            raise ConfigError(f"profile parent '{current}' does not exist{suggest(current, tables)}")
        seen.add(current)
        chain.append(tables[current])
        current = tables[current].get("parent")
    merged: dict[str, Any] = {}
    for table in reversed(chain):
        merged.update(table)
    merged["parent"] = chain[0].get("parent")
    try:
        return Profile.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(f"profile '{name}': {_first_message(exc)}") from None


def load_scenario(path: Path) -> ScenarioConfig:
    """Read and validate a `scenario.toml`; every problem becomes a ConfigError naming file and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found; a pack is a folder with a scenario.toml (see docs/PACKS.md)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}; fix the line it names") from None
    try:
        return ScenarioConfig.model_validate(raw)
    except ValidationError as exc:
        messages = [_describe(err, text) for err in exc.errors()]
        raise ConfigError(f"{path}: " + "; ".join(messages)) from None


def _describe(err: Mapping[str, Any], text: str) -> str:
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc)
    line = _line_of(loc, text)
    where = f"line {line}: " if line else ""
    kind = err["type"]
    if kind == "extra_forbidden":
        parent_fields = _fields_at(loc[:-1])
        return f"{where}unknown key '{key}'{suggest(loc[-1], parent_fields)}"
    if kind == "missing":
        return f"missing required key '{key}'"
    msg = str(err["msg"]).removeprefix("Value error, ")
    given = err.get("input")
    shown = f" (got {given!r})" if given is not None and not isinstance(given, dict) else ""
    return f"{where}{key}: {msg}{shown}" if key else f"{msg}{shown}"  # a whole-file check names its keys


def _fields_at(loc: list[str]) -> set[str]:
    model: type[BaseModel] = ScenarioConfig
    for part in loc:
        field = model.model_fields.get(part)
        if field is None:
            return set()
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return set()
    return set(model.model_fields)


def _line_of(loc: list[str], text: str) -> int | None:
    """Best effort: the line where the last key of `loc` is written (TOML keeps no positions)."""
    if not loc:
        return None
    leaf = re.escape(loc[-1])
    pattern = re.compile(rf'^\s*("?{leaf}"?\s*=|\[.*\b{leaf}\b.*\])')
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.search(line):
            return number
    return None


def suggest(word: str, candidates: Any) -> str:
    """A ' (did you mean "x"?)' suffix for an error message, or an empty string."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _first_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown key '{loc}'{suggest(str(err['loc'][-1]), _PROFILE_FIELDS)}"
    return f"{loc}: {str(err['msg']).removeprefix('Value error, ')}"
