"""`scaleready check PACK`: is the pack itself right, in under a minute, before an audit?

It runs every part of the pack once, through the audit's own stages: the configuration
(`harness.pack`), the provisioning hook, the invariants' declarations, the target's start
(`harness.audit.running_target`), the regression tests and the properties (`harness.audit.run_suites`,
one Hypothesis example each), two customers (`harness.provisioning`), each persona's tasks once
(`harness.load.tryout_stage`) and the invariants on what those tasks wrote
(`harness.integrity.check`). Nothing is measured and nothing is judged: every fault found is a
:class:`Problem` (the file, what is wrong, what to do), and everything that held is said in
``verified``. With ``keep_target`` the provisioned service is left running for a person to
look at (:class:`KeptTarget` says where and how to stop it).
"""

from __future__ import annotations

import contextlib
import inspect
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from harness.audit import (
    AuditObserver,
    Collected,
    PackHooks,
    RunningTarget,
    SilentObserver,
    pack_hooks,
    run_suites,
    running_target,
)
from harness.audit_plan import AuditOptions, AuditPlan, resolve_plan
from harness.errors import ConfigError
from harness.integrity.check import check_tier
from harness.integrity.declare import load_invariants
from harness.integrity.ledger import LEDGER_DIR_ENV
from harness.load.plan import PERSONA_WEIGHTS_ENV, LoadPlan, PhasePlan
from harness.load.tryout_stage import Tryout, run_tryout
from harness.pack import Pack
from harness.provisioning import CustomerStore, provision
from harness.records import TestCaseResult

CUSTOMERS = 2  # two, so that each one's reads can be checked for the other's marker
TRYOUT_TIMEOUT_S = 120.0
INTEGRITY_SAMPLE = 20

__all__ = ["CheckOutcome", "KeptTarget", "Problem", "run_check"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the pack: the file (relative to the pack), what, what to do."""

    file: str
    what: str
    fix: str


@dataclass(frozen=True)
class KeptTarget:
    """The provisioned service left running (``--keep-target``)."""

    base_url: str
    pid: int  # its process group
    customers: tuple[str, ...]  # each customer's index and id, no credentials
    customers_file: Path  # their records, credentials included, removed by ``stop_command``
    stop_command: str


@dataclass(frozen=True)
class CheckOutcome:
    problems: tuple[Problem, ...]
    verified: tuple[str, ...]  # what held, one line each
    duration_s: float
    kept: KeptTarget | None = None
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems and not self.interrupted


@dataclass
class _Found:
    problems: list[Problem] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)

    def problem(self, file: str, what: str, fix: str) -> None:
        self.problems.append(Problem(file, what, fix))


def run_check(
    pack: Pack,
    *,
    target_url: str | None = None,
    keep_target: bool = False,
    observer: AuditObserver | None = None,
    cancel: threading.Event | None = None,
    seed: int | None = None,
) -> CheckOutcome:
    """Check ``pack`` (see the module docstring); raises ConfigError or TargetError only before
    anything ran (an unusable option, a target that does not start)."""
    obs = observer or SilentObserver()
    cancel = cancel or threading.Event()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="scaleready-check-"))
    plan = _plan(pack, target_url, seed, work)
    found = _Found(verified=[f"{_rel(pack, pack.scenario_file)}: valid ({_summary(pack)})"])
    hooks = _provision_hooks(pack, found)
    _invariants_declared(pack, found)
    kept: KeptTarget | None = None
    try:
        with running_target(plan, work, obs, cancel) as target:
            _suites(plan, target, work, found, obs, cancel)
            store = CustomerStore(work / "customers.jsonl", run_token=f"{plan.seed % 0xFFFF:04x}")
            if hooks is not None and not cancel.is_set():
                _customers(plan, target, hooks, store, found, obs, cancel)
            if not cancel.is_set():
                tryout = _personas(plan, target, store, work, found, obs, cancel)
                if tryout is not None and not cancel.is_set():
                    _invariants(plan, target, store, work, found, obs)
            if keep_target and target.managed is not None and not cancel.is_set():
                kept = _keep(target, store)
    finally:
        if kept is None:
            shutil.rmtree(work, ignore_errors=True)
    return CheckOutcome(problems=tuple(found.problems), verified=tuple(found.verified),
                        duration_s=time.monotonic() - started, kept=kept, interrupted=cancel.is_set())  # fmt: skip


def _plan(pack: Pack, target_url: str | None, seed: int | None, work: Path) -> AuditPlan:
    """The audit's plan with the quick profile, one Hypothesis example per property."""
    plan = resolve_plan(AuditOptions(pack=pack, profile_name="quick", reports_dir=work, target_url=target_url,
                                     seed=seed, only=("gate", "properties")))  # fmt: skip
    return replace(plan, profile=plan.profile.model_copy(update={"hypothesis_examples": 1}))


def _summary(pack: Pack) -> str:
    config = pack.config
    return (f"tiers {', '.join(map(str, config.tiers))}, goal {config.customers.goal} customers, "
            f"p95 {config.slo.p95_ms:g} ms")  # fmt: skip


def _rel(pack: Pack, path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(pack.root))
    return str(path)


def _sentence(exc: Exception, pack: Pack) -> str:
    """A ConfigError's sentence without the pack's absolute folder (the item names the file)."""
    return str(exc).replace(str(pack.root) + "/", "")


def _provision_hooks(pack: Pack, found: _Found) -> PackHooks | None:
    where = _rel(pack, pack.provision_file)
    try:
        hooks = pack_hooks(pack)
    except ConfigError as exc:
        found.problem(where, _sentence(exc, pack), "fix it; no customer can be created until it imports")
        return None
    if not inspect.iscoroutinefunction(hooks.create_customer):
        found.problem(where, "create_customer is not an async function",
                      "write it `async def create_customer(client, index, rng, marker)` and await the client")  # fmt: skip
        return None
    if hooks.auth_headers is None:
        found.verified.append(f"{where}: imports; no auth_headers (server errors are replayed without credentials)")
    else:
        found.verified.append(f"{where}: imports, defines create_customer and auth_headers")
    return hooks


def _invariants_declared(pack: Pack, found: _Found) -> None:
    path = pack.invariants_file
    configured = pack.config.suite.invariants
    if path is None:
        if configured and configured != "invariants.py":  # the default may be absent; a named file may not
            found.problem(configured, "suite.invariants names a file that does not exist",
                          "create it, or set suite.invariants = \"\" in scenario.toml")  # fmt: skip
        return
    try:
        declared = load_invariants(path)
    except ConfigError as exc:
        found.problem(_rel(pack, path), _sentence(exc, pack), "fix the declaration (see docs/PACKS.md, invariants.py)")
        return
    kinds = ", ".join(sorted(declared.resources)) or "no resources"
    found.verified.append(f"{_rel(pack, path)}: imports; declares {kinds}, {len(declared.custom)} custom invariant(s)")


def _suites(plan: AuditPlan, target: RunningTarget, work: Path, found: _Found, obs: AuditObserver,
            cancel: threading.Event) -> None:  # fmt: skip
    collected = Collected()
    # Each benchmark's function once, as every other test: its timings are the audit's business.
    run_suites(plan, target, work, collected, obs, cancel, gate_args=("--benchmark-disable",))
    pack = plan.pack
    gate, props = collected.gate, collected.properties
    if gate is not None:
        folder = pack.config.suite.regression or "tests"
        bad = [c for c in gate.cases if c.outcome in ("failed", "error")]
        for case in bad[:8]:
            found.problem(_case_file(pack, folder, case), f"{case.name.split('::')[-1]} {_failed(case)}: {case.headline}",
                          "fix the test, or the service if the test is right")  # fmt: skip
        if len(bad) > 8:
            found.problem(folder, f"{len(bad) - 8} more tests failed", "see them with pytest -p harness.pytest_plugin")
        if gate.status == "error" and not bad:
            found.problem(folder, f"the suite did not run: {_last_line(gate.output_tail)}",
                          "run pytest on it by hand to see why")  # fmt: skip
        if gate.status == "passed":
            found.verified.append(f"{folder}/: {gate.passed} tests passed ({gate.skipped} skipped) in {gate.duration_s:.1f} s")
    if props is not None:
        folder = pack.config.suite.properties or "properties"
        for falsified in props.falsified[:8]:
            found.problem(_case_file(pack, folder, None, falsified.name), f"{falsified.name.split('::')[-1]} was "
                          f"falsified: {falsified.error} (example: {falsified.example or 'not shown'})",
                          f"fix the property or the service; reproduce: {falsified.reproduce}")  # fmt: skip
        if props.status == "error":
            found.problem(folder, f"the properties did not run: {_last_line(props.output_tail)}",
                          "run pytest on them by hand to see why")  # fmt: skip
        if props.status == "passed":
            found.verified.append(f"{folder}/: {props.passed} properties held (1 example each) in {props.duration_s:.1f} s")


def _failed(case: TestCaseResult) -> str:
    return "failed" if case.outcome == "failed" else "could not run"


def _case_file(pack: Pack, folder: str, case: TestCaseResult | None, name: str = "") -> str:
    """The file of a pytest case ("tests.test_a::test_x" or "tests.test_a.TestB::test_y")."""
    dotted = (case.name if case is not None else name).split("::")[0]
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = "/".join(parts[:end]) + ".py"
        if (pack.root / candidate).is_file():
            return candidate
    return folder


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _customers(plan: AuditPlan, target: RunningTarget, hooks: PackHooks, store: CustomerStore, found: _Found,
               obs: AuditObserver, cancel: threading.Event) -> None:  # fmt: skip
    pack = plan.pack
    where = _rel(pack, pack.provision_file)
    obs.stage("provision", f"{CUSTOMERS} customers")
    try:
        result = provision(hooks.create_customer, store, base_url=target.base_url, upto=CUSTOMERS,
                           concurrency=1, seed=plan.seed, timeout_s=pack.config.target.request_timeout_s,
                           cancel=cancel)  # fmt: skip
    except (TypeError, ValueError) as exc:  # the record could not be stored
        found.problem(where, f"create_customer returned a record that is not JSON: {exc}",
                      "return a dict of plain values (strings, numbers, lists, dicts)")  # fmt: skip
        return
    for error in result.errors[:3]:
        found.problem(where, f"create_customer failed: {error}", "fix the hook (or the sign-up it calls)")
    if result.customers == CUSTOMERS:
        found.verified.append(f"{where}: created {CUSTOMERS} customers in {result.duration_s:.1f} s")
    if hooks.auth_headers is not None:
        for customer in store.all():
            try:
                headers = hooks.auth_headers(customer)
                dict(headers)
            except Exception as exc:  # noqa: BLE001 - the pack's code
                found.problem(where, f"auth_headers(customer) raised {type(exc).__name__}: {exc}",
                              "make it read the record create_customer returns")  # fmt: skip
                break
    if hooks.refresh_credentials is not None and len(store):
        _refresh_once(hooks, store.all()[0], target.base_url, pack.config.target.request_timeout_s, where, found)


def _refresh_once(hooks: PackHooks, customer: dict[str, Any], base_url: str, timeout_s: float, where: str,
                  found: _Found) -> None:  # fmt: skip
    """Call refresh_credentials once on a customer create_customer has just made."""
    assert hooks.refresh_credentials is not None
    try:
        with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
            fields = hooks.refresh_credentials(client, dict(customer))
        if not isinstance(fields, Mapping):
            raise TypeError(f"it returned {type(fields).__name__}, not a dict")
    except Exception as exc:  # noqa: BLE001 - the pack's code
        found.problem(where, f"refresh_credentials(client, customer) raised {type(exc).__name__}: {exc}"[:300],
                      "make it return a dict of the record's fields to replace (e.g. a new token)")  # fmt: skip
        return
    changed = sorted(k for k, v in fields.items() if customer.get(k) != v)
    found.verified.append(f"{where}: refresh_credentials renewed a customer's credentials "
                          f"({', '.join(changed) or 'nothing changed'})")


def _personas(plan: AuditPlan, target: RunningTarget, store: CustomerStore, work: Path, found: _Found,
              obs: AuditObserver, cancel: threading.Event) -> Tryout | None:  # fmt: skip
    """Each persona's tasks once; None when they could not run at all."""
    pack = plan.pack
    where = _rel(pack, pack.locustfile)
    config = pack.config
    load_plan = LoadPlan(
        locustfile=str(pack.locustfile), host=target.base_url, output_dir=str(work / "tryout"),
        phases=(PhasePlan("probe", "check", 1.0, 1.0),), customers_file=str(store.path), seed=plan.seed,
        request_timeout_s=config.target.request_timeout_s,
        env={LEDGER_DIR_ENV: str(_ledger(work)),
             PERSONA_WEIGHTS_ENV: ",".join(f"{k}={v:g}" for k, v in config.customers.personas.items())},
    )  # fmt: skip
    # Without customers the tasks cannot run, but the locustfile can still be imported.
    obs.stage("personas", "each task once" if len(store) else "importing the locustfile")
    tryout = run_tryout(load_plan, listing=not len(store), timeout_s=TRYOUT_TIMEOUT_S, cancel=cancel)
    if tryout.import_error:
        found.problem(where, _sentence(ConfigError(tryout.import_error), pack),
                      "fix the locustfile (run it with python to see the full traceback)")  # fmt: skip
        return None
    if tryout.failure:
        if not cancel.is_set():
            found.problem(where, f"the personas could not be tried: {tryout.failure}", "run it with locust -f to see why")
        return None
    if not len(store):
        found.problem(where, f"imports, but its {sum(len(t) for _, t in tryout.personas)} tasks were not run: "
                      "there are no customers to act for", "fix provision.py first")  # fmt: skip
        return None
    clean = requests = 0
    public = _declared_public(pack)
    for tried in tryout.tasks:
        label = f"{tried.persona}.{tried.task}"
        requests += len(tried.requests)
        faults = _task_faults(tried.requests, public)
        if tried.skipped:
            found.verified.append(f"{where}: {label} not tried ({tried.skipped})")
            continue
        if tried.error:
            hook = "on_start" if tried.on_start else "the task"
            found.problem(where, f"{label}: {hook} raised {tried.error}", "fix the task")
        for fault in faults:
            found.problem(where, f"{label}: {fault}", _fault_fix(fault))
        if not tried.requests and not tried.error:
            found.problem(where, f"{label} made no request", "a task that sends nothing measures nothing: "
                          "check its conditions, or remove it")  # fmt: skip
        if not tried.error and not faults and tried.requests:
            clean += 1
    personas = sorted({t.persona for t in tryout.tasks})
    if clean == len(tryout.tasks) and clean:
        found.verified.append(f"{where}: {len(personas)} personas, {clean} tasks each ran once "
                              f"({requests} requests, every one answered as expected)")  # fmt: skip
    return tryout


def _declared_public(pack: Pack) -> Callable[[str | None, str], bool]:
    """Whether a request (method, Locust name) is one invariants.py declares public."""
    try:
        declared = load_invariants(pack.invariants_file) if pack.invariants_file is not None else None
    except ConfigError:  # reported by _invariants_declared
        declared = None
    if declared is None or not declared.public.patterns:
        return lambda method, name: False
    return lambda method, name: declared.public_pattern(method, None, name) is not None


def _task_faults(requests: Sequence[object], public: Callable[[str | None, str], bool]) -> list[str]:
    faults = []
    for r in requests:
        name = getattr(r, "name", "?")
        status, reason, foreign = getattr(r, "status", 0), getattr(r, "reason", None), getattr(r, "foreign", ())
        if reason is not None:
            answer = f"answered {status}" if status else f"got no answer ({getattr(r, 'error', '') or reason})"
            faults.append(f"{name} {answer} (counted as the error '{reason}' under load)")
        elif foreign and not public(getattr(r, "method", None), name):
            faults.append(f"{name} returned another customer's marker (customer {', '.join(foreign)})")
    return faults


def _fault_fix(fault: str) -> str:
    if "marker" in fault:
        return ("a leak in the service; or a request sent with another customer's credentials, to be credited "
                "to that customer with `with self.as_customer(c):`; or public data, to be declared with "
                "public(...) in invariants.py (see docs/PACKS.md)")  # fmt: skip
    if " answered 5" in fault or "no answer" in fault:
        return "the service failed on this request: look at the request the task builds and at the service's log"
    return ("check the path, headers and body the task sends; an answer that is expected (a 409 for something "
            "already taken) must be marked with catch_response=True and resp.success()")  # fmt: skip


def _ledger(work: Path) -> Path:
    return work / "tryout" / "ledger"


def _invariants(plan: AuditPlan, target: RunningTarget, store: CustomerStore, work: Path, found: _Found,
                obs: AuditObserver) -> None:  # fmt: skip
    pack = plan.pack
    path = pack.invariants_file
    if path is None:
        return
    obs.stage("invariants", "on what the personas wrote")
    result = check_tier(path, base_url=target.base_url, customers=store.all(), ledger_dir=_ledger(work),
                        sample=INTEGRITY_SAMPLE, request_timeout_s=pack.config.target.request_timeout_s,
                        seed=plan.seed, time_budget_s=30.0)  # fmt: skip
    where = _rel(pack, path)
    if result.status == "error":
        found.problem(where, f"the checks could not run: {_sentence(ConfigError(result.note), pack)}",
                      "fix the read-backs (a readback must return a dict, or None when absent)")  # fmt: skip
        return
    for violation in result.violations[:8]:
        found.problem(where, f"{violation.check or violation.kind} on customer {violation.customer}: {violation.detail}",
                      "after single requests this is most likely the read-back or the invariant: check it "
                      "against what the service returns, or the service if they are right")  # fmt: skip
    if result.status in ("passed", "skipped"):
        checks = ", ".join(f"{k} {v}" for k, v in sorted(result.checks.items()) if v) or "nothing to check"
        found.verified.append(f"{where}: held on what the personas wrote ({checks})")


def _keep(target: RunningTarget, store: CustomerStore) -> KeptTarget:
    assert target.managed is not None
    managed = target.managed
    state_dir, work = managed.state_dir, store.path.parent
    pid = managed.detach()
    customers = tuple(
        f"customer {c['index']}" + (f" (id {c['id']})" if "id" in c else "") for c in store.all()
    )
    stop = f"kill -TERM -- -{pid}; rm -rf {shlex.quote(str(state_dir))} {shlex.quote(str(work))}"
    return KeptTarget(base_url=target.base_url, pid=pid, customers=customers, customers_file=store.path,
                      stop_command=stop)  # fmt: skip
