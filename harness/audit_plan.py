"""One audit's options, resolved once: the profile, the tiers, the stages, the target, the seed.

The command line (or the selftest) says what it wants in :class:`AuditOptions`; `resolve_plan`
checks every option against the pack, once, and returns the :class:`AuditPlan` the audit and
its stages read. Every wrong option is a ``ConfigError`` naming the option and the fix, raised
before anything is started or sent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from harness.config import Profile, suggest
from harness.errors import ConfigError
from harness.load.joining import check_remote_target
from harness.load.plan import RemoteWorkers
from harness.pack import Pack
from harness.target import check_target_allowed
from harness.verdict import EndpointSlo, ReproduceContext, VerdictPolicy

__all__ = ["STAGES", "AuditOptions", "AuditPlan", "remote_workers", "resolve_plan"]

STAGES = ("gate", "properties", "noise-floor", "tiers")


@dataclass(frozen=True)
class AuditOptions:
    """What the caller asked for, as given (see ``scaleready audit --help``)."""

    pack: Pack
    profile_name: str = "standard"
    reports_dir: Path = Path("reports")
    target_url: str | None = None
    workers: int = 0
    # --bind HOST:PORT: where each tier's Locust master listens (None: loopback, a free port)
    bind: tuple[str, int] | None = None
    expect_workers: int = 0  # --expect-workers: workers other hosts start (scaleready worker)
    join_timeout_s: float = 120.0  # how long each tier's master waits for them
    flaw: str | None = None
    seed: int | None = None
    only: tuple[str, ...] = ()  # "gate", "properties", "tiers", "tier:5000"; empty = everything
    tiers: tuple[int, ...] | None = None  # overrides the profile's and the pack's tiers
    strict: bool = False
    # Stop where the audit is after this many seconds and write what was measured (a nightly
    # job's time limit, kept by the audit itself rather than by a kill); None: no deadline.
    deadline_s: float | None = None
    # What the history database says about the target's code: a name the team gives the run, and
    # the commit and branch (the CLI fills them from GitHub Actions' environment when not given).
    label: str | None = None
    commit: str | None = None
    branch: str | None = None


@dataclass(frozen=True)
class AuditPlan:
    """The resolved audit: every stage and report reads its options from here."""

    options: AuditOptions
    profile: Profile
    tiers: tuple[int, ...]  # the tiers to run, in order (a tier:N selection already applied)
    stages: frozenset[str]  # of STAGES
    seed: int
    # An already-running target (--target or the pack's base_url), checked against the allowed
    # hosts; None when the harness starts the target itself.
    target_url: str | None
    policy: VerdictPolicy

    @property
    def pack(self) -> Pack:
        return self.options.pack

    @property
    def starts_target(self) -> bool:
        return self.target_url is None

    @property
    def every_stage(self) -> bool:
        """No --only: a missing tier is a partial audit, not a choice."""
        return not self.options.only

    def runs(self, stage: str) -> bool:
        return stage in self.stages

    def reproduce(self, target_url: str | None) -> ReproduceContext:
        """What a finding's command needs to rerun a stage; ``target_url`` is where it ran."""
        parts = [f"--seed {self.seed}"]
        if self.options.flaw:
            parts.append(f"--flaw {self.options.flaw}")
        if self.options.workers:
            parts.append(f"--workers {self.options.workers}")
        if self.options.bind is not None:
            parts.append(f"--bind {self.options.bind[0]}:{self.options.bind[1]}")
        if self.options.expect_workers:
            parts.append(f"--expect-workers {self.options.expect_workers}")
        return ReproduceContext(
            pack=_pack_arg(self.pack),
            profile=self.options.profile_name,
            target_url=None if self.starts_target else target_url,
            started_by_harness=self.starts_target,
            extra_args=" ".join(parts),
        )


def resolve_plan(options: AuditOptions) -> AuditPlan:
    """Check the options against the pack and resolve them (a ConfigError names what is wrong)."""
    pack = options.pack
    profile = pack.config.profile(options.profile_name)
    stages = _stages(options.only)
    _check_flaw(options)
    url = options.target_url or pack.config.target.base_url
    if url is not None:  # refused before anything is created or sent
        check_target_allowed(url, pack.config.target.allowed_hosts, str(pack.scenario_file))
    elif pack.config.target.start is None:
        raise ConfigError(
            f"{pack.scenario_file}: target.start is not set and no --target URL was given; set one of them"
        )
    _check_remote_workers(options, url)
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(1, 2**31)
    return AuditPlan(
        options=options,
        profile=profile,
        tiers=_tiers(options, profile),
        stages=stages,
        seed=seed,
        target_url=url.rstrip("/") if url is not None else None,
        policy=verdict_policy(pack),
    )


def _check_remote_workers(options: AuditOptions, url: str | None) -> None:
    if not options.expect_workers:
        return
    if options.bind is None:
        raise ConfigError(
            f"--expect-workers {options.expect_workers} needs --bind HOST:PORT: the address and port "
            "of this machine that the workers on other hosts connect to"
        )
    if url is None:
        raise ConfigError(
            f"--expect-workers {options.expect_workers}: the target the harness starts listens on "
            "loopback, which other hosts cannot reach; serve it on an address they reach and give "
            "it with --target URL (its host listed in the pack's target.allowed_hosts)"
        )
    check_remote_target(url, options.expect_workers)


def remote_workers(options: AuditOptions) -> RemoteWorkers | None:
    """The load plan's remote workers (and master address), from --bind and --expect-workers."""
    if options.bind is None:
        return None
    return RemoteWorkers(options.expect_workers, options.bind[0], options.bind[1], options.join_timeout_s)


def verdict_policy(pack: Pack) -> VerdictPolicy:
    """What counts as passing, from the pack's ``[slo]`` table and goal."""
    slo = pack.config.slo
    return VerdictPolicy(
        default_slo=EndpointSlo(p95_ms=slo.p95_ms, p99_ms=slo.p99_ms),
        endpoint_slos={k: EndpointSlo(p95_ms=v.p95_ms, p99_ms=v.p99_ms) for k, v in slo.endpoints.items()},
        max_error_rate=slo.error_rate,
        goal_customers=pack.config.customers.goal,
        ready_headroom=slo.ready_headroom,
    )


def _stages(only: tuple[str, ...]) -> frozenset[str]:
    if not only:
        return frozenset(STAGES)
    for stage in only:
        if stage not in ("gate", "properties", "tiers") and not stage.startswith("tier:"):
            raise ConfigError(f"--only {stage}: use gate, properties, tiers or tier:N")
    wanted = {s for s in only if s in ("gate", "properties")}
    if any(s == "tiers" or s.startswith("tier:") for s in only):
        wanted |= {"noise-floor", "tiers"}
    return frozenset(wanted)


def _tiers(options: AuditOptions, profile: Profile) -> tuple[int, ...]:
    tiers = options.tiers or tuple(profile.tiers or options.pack.config.tiers)
    wanted = []
    for stage in options.only:
        if stage.startswith("tier:"):
            text = stage.split(":", 1)[1]
            if not text.isdigit():
                raise ConfigError(f"--only {stage}: write tier:N with N one of the tiers ({_list(tiers)})")
            wanted.append(int(text))
    if not wanted:
        return tiers
    unknown = [t for t in wanted if t not in tiers]
    if unknown:
        raise ConfigError(f"--only tier:{unknown[0]}: no such tier; the tiers are {_list(tiers)}")
    # A tier's data includes the smaller tiers' customers, so provisioning still grows to N.
    return tuple(t for t in tiers if t in wanted)


def _check_flaw(options: AuditOptions) -> None:
    flaws = options.pack.config.target.flaws
    if options.flaw is None:
        return
    if options.target_url is not None:
        raise ConfigError(f"--flaw {options.flaw}: flaws apply to a target the harness starts; drop --target")
    if options.flaw not in flaws:
        raise ConfigError(
            f"--flaw {options.flaw}: the pack '{options.pack.name}' has no such flaw"
            f"{suggest(options.flaw, flaws)}; known flaws: {', '.join(flaws) or 'none'}"
        )


def _list(tiers: tuple[int, ...]) -> str:
    return ", ".join(map(str, tiers))


def _pack_arg(pack: Pack) -> str:
    try:
        return str(pack.root.relative_to(Path.cwd()))
    except ValueError:
        return str(pack.root)
