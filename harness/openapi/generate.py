"""``scaleready init``: write a pack from a service's OpenAPI document.

The pack runs as written and is meant to be edited: every generated choice has a comment that
says why it was made and what to change. Its files call :mod:`harness.openapi.service` through
``harness.pack_api`` (``openapi_service``, ``OpenApiUser``), which reads the pack's own copy of
the document (``openapi.json``) at run time, so regenerating after the API changes is one
command, and a hand edit is plain Python.

Written into a temporary folder beside PACKDIR and renamed into place at the end: a bad spec or
any failure leaves nothing half-written. An existing PACKDIR is refused unless ``force``.
"""

from __future__ import annotations

import dataclasses
import json
import keyword
import math
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from harness.config import BUILTIN_PROFILES
from harness.errors import ConfigError
from harness.openapi.resources import (
    ApiResource,
    discover_resources,
    find_signup,
    top_level_creates,
)
from harness.openapi.spec import ApiSpec, SpecOperation, dump_json
from harness.verdict.policy import VerdictPolicy

__all__ = ["InitOptions", "InitResult", "write_pack"]

READ_WEIGHT = 3  # a read task runs three times as often as a write: most traffic reads
WRITE_WEIGHT = 1
PER_RESOURCE = 2  # resources of each top-level kind created per customer
DEFAULT_P95_MS = 200
DEFAULT_P99_MS = 500
DEFAULT_PEAK_RPS_PER_CUSTOMER = 0.045
GOAL_CUSTOMERS = 5000
# What a p95 needs at the goal's tier, else the tier is invalid (the verdict policy's default).
P95_MIN_REQUESTS: int = next(f.default for f in dataclasses.fields(VerdictPolicy) if f.name == "min_requests_for_p95")  # type: ignore[assignment]
STEADY_MARGIN = 1.25  # requests beyond the minimum a p95 needs: arrivals are not exact


@dataclass(frozen=True)
class InitOptions:
    source: str  # the --openapi URL or file, as given
    start: str | None = None  # --start: the command that starts the service
    cwd: str | None = None  # --cwd: where to run it (written relative to the pack)
    health_path: str | None = None
    flaws: tuple[str, ...] = ()
    flaw_env: str | None = None
    force: bool = False


@dataclass(frozen=True)
class InitResult:
    pack_dir: Path
    files: tuple[str, ...]
    operations: int
    personas: tuple[str, ...]
    resources: tuple[str, ...]  # kinds with a read-back for the integrity checks
    signup: str | None


def write_pack(spec: ApiSpec, pack_dir: Path, options: InitOptions) -> InitResult:
    """Generate the pack for ``spec`` into ``pack_dir`` (atomically)."""
    pack_dir = pack_dir.resolve()
    if pack_dir.exists() and not options.force:
        raise ConfigError(
            f"{pack_dir}: already exists; choose another folder, or pass --force to replace it"
        )
    plan = _Plan.of(spec, pack_dir, options)
    pack_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{pack_dir.name}.init-", dir=pack_dir.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp's folder is private; a pack is an ordinary folder
        files = {
            "openapi.json": dump_json(spec),
            "scenario.toml": plan.scenario_toml(),
            "provision.py": plan.provision_py(),
            "locustfile.py": plan.locustfile_py(),
            "invariants.py": plan.invariants_py(),
            "conftest.py": plan.conftest_py(),
            "pytest.ini": PYTEST_INI,
            "tests/test_operations.py": plan.tests_py(),
            "properties/test_schema_inputs.py": plan.properties_py(),
        }
        for name, text in files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if pack_dir.exists():  # --force: swap the old pack out only once the new one is complete
            old = Path(tempfile.mkdtemp(prefix=f".{pack_dir.name}.old-", dir=pack_dir.parent))
            os.replace(pack_dir, old / "pack")
            os.replace(staging, pack_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, pack_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return InitResult(
        pack_dir=pack_dir, files=tuple(files), operations=len(spec.operations),
        personas=tuple(plan.personas), resources=tuple(r.kind for r in plan.checked),
        signup=plan.signup.label if plan.signup else None,
    )  # fmt: skip


PYTEST_INI = """\
# Being here makes this folder pytest's rootdir when the pack runs (by the harness or by hand).
[pytest]
testpaths = tests properties
# harness.pytest_plugin: --target-url, the target_url/http fixtures, the Hypothesis profile.
addopts = -p harness.pytest_plugin -p no:cacheprovider
"""


def _identifier(text: str) -> str:
    name = re.sub(r"_+", "_", re.sub(r"\W+", "_", text)).strip("_").lower() or "op"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"op_{name}"
    return name


def _camel(text: str) -> str:
    words = re.split(r"[^0-9A-Za-z]+", text)
    name = "".join(w[:1].upper() + w[1:] for w in words if w) or "Api"
    return f"Api{name}" if name[0].isdigit() else name


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _is_read(op: SpecOperation) -> bool:
    return op.method in ("GET", "HEAD", "OPTIONS")


class _Plan:
    """The choices, made once: personas, sign-up, creates, checked resources."""

    def __init__(self, spec: ApiSpec, pack_dir: Path, options: InitOptions) -> None:
        self.spec = spec
        self.pack_dir = pack_dir
        self.options = options
        self.resources = discover_resources(spec)
        self.signup, self.credential_field = find_signup(spec)
        self.creates = top_level_creates(self.resources, self.signup)
        self.checked: tuple[ApiResource, ...] = tuple(
            r for r in self.resources if r.create is not None and r.read is not None and r.stable_fields
        )
        self.personas = self._group()

    @classmethod
    def of(cls, spec: ApiSpec, pack_dir: Path, options: InitOptions) -> _Plan:
        return cls(spec, pack_dir, options)

    def _group(self) -> dict[str, list[SpecOperation]]:
        """One persona per tag; untagged operations, one per resource (first path segment)."""
        groups: dict[str, list[SpecOperation]] = {}
        for op in self.spec.operations:
            key = op.tags[0] if op.tags else (next((s for s in op.path.split("/") if s and "{" not in s), "root"))
            groups.setdefault(_camel(key), []).append(op)
        return groups

    # --- scenario.toml ------------------------------------------------------------------------

    def _target_lines(self) -> list[str]:
        o, spec = self.options, self.spec
        health = o.health_path or next(
            (op.path for op in spec.operations if op.method == "GET" and "health" in op.path.lower()
             and not op.params("path")), None,
        )  # fmt: skip
        lines = ["[target]"]
        if o.start:
            lines += [
                "# How the harness starts the service ({port}: a free loopback port; {python}: the",
                "# harness's interpreter; {state_dir}: a temp folder removed after the run).",
                f"start = {_toml_string(o.start)}",
            ]
            if o.cwd:
                where = Path(o.cwd).resolve()
                shared = os.path.commonpath([where, self.pack_dir]) != "/"
                cwd = os.path.relpath(where, self.pack_dir) if shared else str(where)
                lines.append(f"cwd = {_toml_string(cwd)}")
        else:
            parts = urlsplit(spec.source)
            base = f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else None
            lines += [
                "# The command that starts your service on a free loopback port, e.g.",
                '# start = "{python} -m myservice --port {port}"   ({python}: the harness\'s interpreter)',
                "# With it the harness starts and stops the service itself; without it, it audits the",
                "# one already running at base_url (or --target URL).",
            ]
            if base:
                lines += [f"base_url = {_toml_string(base)}   # where the document was read from"]
            else:
                lines += ['# base_url = "http://127.0.0.1:8000"   # or pass --target URL']
        if health:
            lines += [f"health_path = {_toml_string(health)}   # polled until it answers 2xx"]
        else:
            lines += [
                '# No health operation in the spec: "/openapi.json" answers once the service is up;',
                "# point this at a real health check if the service has one.",
                'health_path = "/openapi.json"',
            ]
        lines += ["request_timeout_s = 10"]
        if o.flaws:
            lines += [f"flaws = [{', '.join(_toml_string(f) for f in o.flaws)}]"]
        if o.flaw_env:
            lines += [f"flaw_env = {_toml_string(o.flaw_env)}"]
        return lines

    def scenario_toml(self) -> str:
        spec = self.spec
        name = _identifier(self.pack_dir.name).replace("_", "-")
        out = [
            f"# Generated by `scaleready init` from {spec.source} ({spec.title}, OpenAPI {spec.version}).",
            "# Every key is documented in docs/PACKS.md. Check the choices marked below, then run",
            f"# `scaleready check {self.pack_dir.name}` and `scaleready audit {self.pack_dir.name} --profile quick`.",
            "",
            "# The customer counts on the growth path: each tier is N customers' data and traffic.",
            "tiers = [50, 500, 5000]",
            "",
            "[pack]",
            f"name = {_toml_string(name)}",
            f"description = {_toml_string(f'{spec.title}, generated from its OpenAPI document')}",
            "",
            *self._target_lines(),
            "",
            "[customers]",
            "# Actions (one Locust task = one request here) a customer starts per second at its",
            "# busiest hour. A guess: measure yours (requests per customer in your busiest hour / 3600).",
            f"peak_rps_per_customer = {DEFAULT_PEAK_RPS_PER_CUSTOMER}",
            "goal = 5000",
            'provision = "provision.py"',
            "provision_concurrency = 4",
            'locustfile = "locustfile.py"',
            "",
            "[customers.personas]",
            "# One persona per tag (or per resource when untagged), weighted by its tasks' weights",
            "# (so every read gets the same traffic wherever it is); set these to how yours splits.",
            *(f"{cls} = {self.persona_weight(ops)}" for cls, ops in self.personas.items()),
            "",
            "[slo]",
            "# Starting points, the same for every endpoint: tighten them endpoint by endpoint below.",
            f"p95_ms = {DEFAULT_P95_MS}",
            f"p99_ms = {DEFAULT_P99_MS}",
            "error_rate = 0.01",
            "ready_headroom = 1.5",
            "",
        ]
        for op in spec.operations:
            out += [
                f"[slo.endpoints.{_toml_string(op.label)}]" + (f"   # {op.summary}" if op.summary else ""),
                f"p95_ms = {DEFAULT_P95_MS}",
                f"p99_ms = {DEFAULT_P99_MS}",
                "",
            ]
        out += [
            "[suite]",
            'regression = "tests"',
            'properties = "properties"',
            'invariants = "invariants.py"',
            "# The document this pack was generated from (its own copy): the properties stage's",
            "# schema-driven checks read it. Point it at the live one (\"/openapi.json\") to follow changes.",
            'openapi = "openapi.json"',
            "",
            *self._quick_profile(),
        ]
        return "\n".join(out)

    @staticmethod
    def persona_weight(ops: Sequence[SpecOperation]) -> int:
        return sum(READ_WEIGHT if _is_read(op) else WRITE_WEIGHT for op in ops)

    def _quick_profile(self) -> list[str]:
        """A longer steady window for `--profile quick` when its own would give even the
        busiest endpoint too few requests at the goal for a p95 (the tier is then invalid)."""
        weights = [READ_WEIGHT if _is_read(op) else WRITE_WEIGHT for op in self.spec.operations]
        busiest_rps = DEFAULT_PEAK_RPS_PER_CUSTOMER * GOAL_CUSTOMERS * max(weights) / sum(weights)
        needed = P95_MIN_REQUESTS * STEADY_MARGIN
        steady_s = math.ceil(needed / busiest_rps)
        quick_s = float(BUILTIN_PROFILES["quick"]["steady_s"])
        if steady_s <= quick_s:
            return []
        return [
            "[profiles.quick]",
            f"# {len(self.spec.operations)} endpoints share the goal's traffic: in quick's {quick_s:g} s steady window the",
            f"# busiest would get fewer than the {P95_MIN_REQUESTS} requests a p95 needs, and the tier",
            "# would be invalid. Lower it if you drop endpoints or raise peak_rps_per_customer.",
            f"steady_s = {steady_s}",
            "",
        ]

    # --- provision.py --------------------------------------------------------------------------

    def provision_py(self) -> str:
        spec = self.spec
        auth = spec.auth
        if auth is None:
            auth_note = (
                "# The spec declares no authentication: every customer uses the service anonymously and\n"
                "# all share one data set, so no marker is written and there are no isolation checks.\n"
                "# If your service does keep customers apart, describe its auth scheme in the spec."
            )
        else:
            auth_note = (
                f"# Authentication: {auth.location} {auth.name!r}"
                f"{f' with prefix {auth.prefix!r}' if auth.prefix else ''} (from {auth.origin})."
            )
        if self.signup is not None:
            signup_note = [
                f"# The sign-up: {self.signup.label} is not secured and answers '{self.credential_field}',",
                "# so it is how a new customer gets its credential. If your service creates customers",
                "# another way (an admin API, a seed script), change SIGNUP and CREDENTIAL_FIELD.",
                f"SIGNUP: str | None = {self.signup.label!r}",
                f"CREDENTIAL_FIELD = {self.credential_field!r}",
            ]
        elif auth is not None:
            signup_note = [
                "# No unsecured operation hands out a credential. Fill in how a customer gets one",
                "# (e.g. a token from your identity provider in create_customer below).",
                "SIGNUP: str | None = None",
                'CREDENTIAL_FIELD = ""',
            ]
        else:
            signup_note = ["SIGNUP: str | None = None", 'CREDENTIAL_FIELD = ""']
        creates = ",\n".join(f"    {op.label!r}" for op in self.creates)
        return f'''"""How one customer of {spec.title} is created (generated by `scaleready init`).

The harness calls `create_customer` for every customer index it does not have yet, many at
once, with `rng` seeded per index. The customer's `marker` goes into every text field it
writes (a name, a note): the isolation checks look for other customers' markers in what each
customer reads. The record returned holds the credential, the ids created and the values
seen (`known`), which the load and the checks start from.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx

from harness.pack_api import openapi_service

SERVICE = openapi_service(Path(__file__).with_name("openapi.json"))

{auth_note}
{chr(10).join(signup_note)}

# The creates of the top-level resources (collections right under the root), in the spec's
# order; a create that needs an id or a value another operation offers (a free time on a calendar) runs once
# it is known. Chosen from the spec: check it is what a new customer of yours has, and remove
# what it should not (each is tried {PER_RESOURCE} times; a refused one is listed in
# the record's "not_created" rather than failing the customer).
TOP_LEVEL_CREATES: list[str] = [
{creates}
]
# Resources of each kind a customer starts with: raise it towards the data a real customer has
# (what grows with the data is what breaks first).
PER_RESOURCE = {PER_RESOURCE}
HOW: dict[str, Any] = dict(
    signup=SIGNUP, credential_field=CREDENTIAL_FIELD, creates=TOP_LEVEL_CREATES, per_resource=PER_RESOURCE
)


def auth_headers(customer: dict[str, Any]) -> dict[str, str]:
    """How a request is sent as this customer (the harness replays server errors with it)."""
    return SERVICE.auth_headers(customer)


async def create_customer(
    client: httpx.AsyncClient, index: int, rng: random.Random, marker: str
) -> dict[str, Any]:
    """Create customer number `index` through the API and return a JSON-serialisable record."""
    return await SERVICE.provision(client, rng, marker, **HOW)
'''

    # --- locustfile.py -------------------------------------------------------------------------

    def locustfile_py(self) -> str:
        blocks = []
        used: set[str] = set()
        for cls, ops in self.personas.items():
            tasks = []
            for op in ops:
                fn = _unique(_identifier(f"{op.method}_{op.path}"), used)
                weight = READ_WEIGHT if _is_read(op) else WRITE_WEIGHT
                doc = f"        \"\"\"{op.summary}\"\"\"\n" if op.summary else ""
                tasks.append(
                    f"    @task({weight})\n    def {fn}(self) -> None:\n{doc}"
                    f"        self.call({op.label!r})\n"
                )
            blocks.append(
                f"class {cls}(OpenApiUser):\n"
                f"    \"\"\"{'Operations tagged ' + repr(ops[0].tags[0]) if ops[0].tags else 'The ' + cls + ' operations'}.\"\"\"\n\n"
                f"    weight = {self.persona_weight(ops)}\n\n" + "\n".join(tasks)
            )
        return f'''"""What customers of {self.spec.title} do (generated by `scaleready init`).

One persona (a Locust user) per tag, or per resource when the spec has no tags; one task per
operation. Reads weigh {READ_WEIGHT}, writes {WRITE_WEIGHT}: most traffic reads. Change the weights to your
traffic, drop what your customers never call, or replace a task's body with plain Locust code.

`self.call(label)` sends the operation as a random provisioned customer, its path and query
parameters and body filled from what that customer already has (the ids it created, the
values the service offered it) or else from the schema; pass `json={{...}}` or `params={{...}}` to
fix values. Creates and deletes the checks can read back go into the operation ledger. A 4xx
other than 401/403/429 counts as the service answering (a conflict, a value refused); no
answer, 5xx, 401, 403 and 429 count as errors.
"""

from __future__ import annotations

from pathlib import Path

from harness.pack_api import OpenApiUser, openapi_service, task

OpenApiUser.service = openapi_service(Path(__file__).with_name("openapi.json"))


''' + "\n\n".join(blocks)

    # --- invariants.py -------------------------------------------------------------------------

    def invariants_py(self) -> str:
        decls = []
        for r in self.checked:
            assert r.read is not None and r.create is not None
            fn = _identifier(f"read_{r.kind}")
            soft = (
                f"\n# {r.delete.label} deletes it softly: its read-back still answers afterwards, and the\n"
                "# schema does not say what \"inactive\" looks like, so those deletes are not in the ledger.\n"
                "# To check them, add is_active=lambda r: r[\"status\"] != \"cancelled\" (your field) and\n"
                "# record the delete in the locustfile with self.write(...).\n"
                if r.soft_delete and r.delete is not None else ""
            )  # fmt: skip
            decls.append(
                f"# {r.create.label} creates it, {r.read.label} reads it back. Stable fields: the required\n"
                f"# fields of the create that the read returns; add the ones a customer relies on.{soft}\n"
                f"{_identifier(r.kind)} = resource({r.kind!r}, stable_fields={r.stable_fields!r}, id_field={r.id_field!r})\n\n\n"
                f"@readback({r.kind!r})\n"
                f"def {fn}(client: httpx.Client, customer: dict[str, Any], ident: str) -> dict[str, Any] | None:\n"
                f"    return SERVICE.read_back(client, customer, {r.kind!r}, ident)\n"
            )
        unchecked = [r.kind for r in self.resources if r.create is not None and r not in self.checked]
        note = (
            f"\nNot checked (no read operation, or no field both written and read): {', '.join(unchecked)}."
            if unchecked else ""
        )  # fmt: skip
        return f'''"""Integrity under load for {self.spec.title} (generated by `scaleready init`).

Resources found in the spec (harness.openapi.resources): a POST on a collection creates, a GET
on its item reads back, a DELETE on the item deletes. Every acknowledged create must read back
with the same stable fields; a deleted one must stay deleted; a customer's reads must never
hold another customer's marker.{note}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from harness.pack_api import Read, isolation_reads, openapi_service, readback, resource

SERVICE = openapi_service(Path(__file__).with_name("openapi.json"))


def auth_headers(customer: dict[str, Any]) -> dict[str, str]:
    return SERVICE.auth_headers(customer)


''' + "\n\n".join(decls) + '''

@isolation_reads
def reads(customer: dict[str, Any]) -> list[Read]:
    """Every secured GET without path parameters, optional filters left out: the broadest
    reads, where a missing tenant filter shows other customers' data; and each one with a text
    filter (a search) once more, searching for the run's marker, which every customer's data
    holds. Add the reads your service has that these do not cover."""
    return [Read(path, params or None, name=name) for path, params, name in SERVICE.isolation_paths(customer)]
'''

    # --- conftest, tests, properties --------------------------------------------------------

    def conftest_py(self) -> str:
        return '''"""Fixtures of the generated tests and properties (generated by `scaleready init`).

`customer` is a new customer per test, created as provision.py creates one, so tests neither
see nor disturb each other's data; `tenant` is one customer for a whole session (Hypothesis
properties run many examples against it). The target is --target-url or SCALEREADY_TARGET_URL
(the harness sets it): `pytest -p harness.pytest_plugin --target-url URL` runs them by hand.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx
import pytest
from provision import HOW, SERVICE

pytest_plugins = ["harness.pytest_plugin"]


def _marker() -> str:
    return f"srm{uuid.uuid4().hex[:6]}t{random.randrange(10**6):06d}"


@pytest.fixture
def customer(http: httpx.Client) -> dict[str, Any]:
    return SERVICE.provision_sync(http, random.Random(), _marker(), **HOW)


@pytest.fixture(scope="session")
def tenant(http: httpx.Client) -> dict[str, Any]:
    return SERVICE.provision_sync(http, random.Random(), _marker(), **HOW)
'''

    def tests_py(self) -> str:
        used: set[str] = set()
        tests = []
        for op in self.spec.operations:
            fn = _unique(f"test_{_identifier(f'{op.method}_{op.path}')}", used)
            tests.append(
                f"def {fn}(http: httpx.Client, customer: dict[str, Any]) -> None:\n"
                f'    """{op.label} answers 2xx with its documented schema."""\n'
                f"    SERVICE.smoke(http, customer, {op.label!r})\n"
            )
        for r in self.resources:
            if r.create is not None and r.delete is not None:
                fn = _unique(f"test_{_identifier(r.kind)}_can_be_created_again_after_it_is_deleted", used)
                tests.append(
                    f"def {fn}(http: httpx.Client, customer: dict[str, Any]) -> None:\n"
                    f'    """{r.create.label}, {r.delete.label}, then the same create again: it must answer as\n'
                    f'    the first did (deleting frees what the {r.kind} held: a reserved time, a unique name)."""\n'
                    f"    SERVICE.recreate_after_delete(http, customer, {r.kind!r})\n"
                )
        return '''"""One smoke test per operation (generated by `scaleready init`).

Each sends the operation as the load does, as a new customer: a request built from the
customer's own data (its ids) must answer 2xx with a body that matches the documented schema;
any request must answer below 500. Add the tests that say what your service must do.
"""

from __future__ import annotations

from typing import Any

import httpx
from provision import SERVICE


''' + "\n\n".join(tests)

    def properties_py(self) -> str:
        used: set[str] = set()
        props = []
        for op in self.spec.operations:
            if op.body_schema is None and not op.params("query"):
                continue
            fn = _unique(f"test_{_identifier(f'{op.method}_{op.path}')}_never_fails_on_valid_input", used)
            props.append(
                f"@given(case=SERVICE.request_strategy({op.label!r}))\n"
                f"def {fn}(http: httpx.Client, tenant: dict[str, Any], case: Any) -> None:\n"
                f"    SERVICE.assert_no_server_error(http, tenant, {op.label!r}, case)\n"
            )
        return '''"""Property: input the schema allows never makes the service answer 5xx (generated by
`scaleready init`).

Requests are drawn from the schema by Schemathesis's generation (``as_strategy()``): text of
any script and length, numbers at their bounds, optional fields present or not. A 4xx refusal
is fine; a 5xx is a bug a customer will hit. Path parameters are the tenant's own ids.
"""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import given
from provision import SERVICE


''' + "\n\n".join(props)


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 2
    while candidate in used:
        candidate, n = f"{name}_{n}", n + 1
    used.add(candidate)
    return candidate


def describe(result: InitResult) -> Sequence[str]:
    """The lines `scaleready init` prints."""
    return [
        f"Wrote {result.pack_dir}: {result.operations} operations, personas {', '.join(result.personas)}",
        f"  sign-up: {result.signup or 'none found (see provision.py)'}; "
        f"read-back checks: {', '.join(result.resources) or 'none (see invariants.py)'}",
        f"Next: scaleready check {result.pack_dir}   then   scaleready audit {result.pack_dir} --profile quick",
    ]
