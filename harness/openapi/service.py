"""A service as its OpenAPI document describes it: what a generated pack calls at run time.

``openapi_service(PACK/openapi.json)`` loads the pack's copy of the document once per process
and answers the generated files' questions: how a customer authenticates, how one is created
(:meth:`OpenApiService.provision`), what request an operation's task sends and what its answer
teaches (:mod:`harness.openapi.values`), which resource an operation writes, and the smoke,
re-create and no-server-error checks of the generated ``tests/`` and ``properties/``.

A customer record (what ``provision.py`` returns) holds ``credential`` (the sign-up's token or
key), ``known`` (the values it has seen, by field name), ``created`` (ids by resource kind)
and ``not_created`` (creates the service refused, with their status, for the person to read).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from harness.integrity.markers import marker_prefix
from harness.openapi.resources import (
    ApiResource,
    discover_resources,
    id_value_names,
    operation_resource,
)
from harness.openapi.spec import ApiSpec, SpecOperation, load_spec
from harness.openapi.values import (
    KnownValues,
    PreparedRequest,
    fill_request,
    fill_value,
    is_free_text,
    is_text_filter,
    json_schema,
    learn_response,
    mark_taken,
)

__all__ = ["OpenApiService", "Role", "openapi_service"]

# Answers that mean the load itself is wrong or the service is refusing it: counted as
# failures. Other 4xx are the service answering a request it may rightly refuse (a conflict,
# 409; a generated value it does not accept, 422).
FAILING_CLIENT_STATUSES = (401, 403, 407, 429)
PRODUCER_ROUNDS = 3


@dataclass(frozen=True)
class Role:
    """What an operation does to its resource: create, read, list, update, delete or action."""

    name: str
    resource: ApiResource | None


# A request to send; the answer's status and JSON (None when not JSON) come back.
Steps = Generator[PreparedRequest, tuple[int, Any], dict[str, Any]]


@functools.lru_cache(maxsize=8)
def openapi_service(path: str | Path) -> OpenApiService:
    """The service described by the pack's copy of its document (loaded once per process)."""
    return OpenApiService(load_spec(Path(path)))


class OpenApiService:
    def __init__(self, spec: ApiSpec) -> None:
        self.spec = spec
        # Without authentication every customer shares one data set: there is no tenant to
        # keep apart, so no marker is written and there are no isolation reads.
        self.tenanted = spec.auth is not None
        self.resources = discover_resources(spec)
        routes = frozenset((op.method, op.path) for op in spec.operations)
        by_collection = {r.collection: r for r in self.resources}
        self._roles: dict[str, Role] = {}
        for op in spec.operations:
            res = by_collection.get(operation_resource(op, routes))
            self._roles[op.label] = Role(_role_name(op, res), res)

    # --- what an operation is -------------------------------------------------------------------

    def operation(self, label: str) -> SpecOperation:
        return self.spec.operation(label)

    def role(self, label: str) -> Role:
        return self._roles[label]

    def resource(self, kind: str) -> ApiResource:
        return next(r for r in self.resources if r.kind == kind and r.create is not None)

    # --- authentication -------------------------------------------------------------------------

    def auth_headers(self, customer: Mapping[str, Any]) -> dict[str, str]:
        """The customer's credential where the spec's scheme puts it (a header); none without."""
        auth, credential = self.spec.auth, customer.get("credential")
        if auth is None or credential is None or auth.location != "header":
            return {}
        return {auth.name: f"{auth.prefix}{credential}"}

    def auth_params(self, customer: Mapping[str, Any]) -> dict[str, str]:
        auth, credential = self.spec.auth, customer.get("credential")
        if auth is None or credential is None or auth.location != "query":
            return {}
        return {auth.name: str(credential)}

    # --- one request ----------------------------------------------------------------------------

    def prepare(
        self, label: str, known: KnownValues, rng: random.Random, *, marker: str = "",
        customer: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None,
    ) -> PreparedRequest:  # fmt: skip
        """The request ``label`` sends, filled from ``known`` and the schema, with the
        customer's credential (when given) where the auth scheme puts it."""
        op = self.operation(label)
        auth = self.spec.auth.name if self.spec.auth is not None else ""
        marker = marker if self.tenanted else ""
        request = fill_request(op, known, rng, marker=marker, auth_header=auth,
                               creating=self.role(label).name == "create", overrides=overrides)  # fmt: skip
        if customer is None:
            return request
        return replace(request, headers={**request.headers, **self.auth_headers(customer)},
                       params={**request.params, **self.auth_params(customer)})  # fmt: skip

    def learn(self, label: str, known: KnownValues, request: PreparedRequest, status: int, payload: Any) -> Any:
        """What a 2xx answer teaches: the created resource's id under the names that refer to
        it; for read-only resources (free slots, reports) every field. Returns the id written."""
        role = self.role(label)
        if not 200 <= status < 300:
            return None
        res = role.resource
        if role.name == "delete" and res is not None:
            for name in id_value_names(res.kind, res.id_param):
                _forget(known, name, request.path_values.get(res.id_param))
            return request.path_values.get(res.id_param)
        if role.name == "create":
            mark_taken(known, request.json)
        names = id_value_names(res.kind, res.id_param) if res is not None else ()
        read_only = res is None or res.create is None
        ident = learn_response(known, payload, id_names=names, id_field=res.id_field if res else "id",
                               fields=read_only)  # fmt: skip
        return ident if role.name == "create" else None

    def ledger_entry(self, label: str, request: PreparedRequest) -> tuple[str, str, Any, dict[str, Any] | None] | None:
        """(kind, op, ident, content) for the operation ledger, or None when not recorded: a
        create or hard delete of a resource the checks can read back; an update that carries
        every stable field. Soft deletes are left out: what "inactive" looks like after
        ``POST .../cancel`` is not in the schema (declare ``is_active`` and record it by hand)."""
        role = self.role(label)
        res = role.resource
        if res is None or res.read is None or not res.stable_fields:
            return None
        body = request.json if isinstance(request.json, Mapping) else {}
        if role.name == "create":
            return res.kind, "create", None, {f: body.get(f) for f in res.stable_fields}
        if role.name == "delete" and not res.soft_delete:
            return res.kind, "delete", request.path_values.get(res.id_param), None
        if role.name == "update" and all(f in body for f in res.stable_fields):
            content = {f: body[f] for f in res.stable_fields}
            return res.kind, "update", request.path_values.get(res.id_param), content
        return None

    @staticmethod
    def counts_as_failure(status: int) -> bool:
        return status == 0 or status >= 500 or status in FAILING_CLIENT_STATUSES

    @staticmethod
    def url(request: PreparedRequest) -> str:
        """Path and query string (FastHttpUser takes no ``params``)."""
        return request.path + (f"?{urlencode(request.params, doseq=True)}" if request.params else "")

    # --- provisioning ---------------------------------------------------------------------------

    def customer_steps(
        self, rng: random.Random, marker: str, *, signup: str | None, credential_field: str,
        creates: Sequence[str], per_resource: int,
    ) -> Steps:  # fmt: skip
        """Create one customer: sign up, then each create ``per_resource`` times, in an order
        where a create runs once the ids and values it needs are known, calling the read-only
        operations that offer missing values (free slots) in between."""
        known = KnownValues()
        customer: dict[str, Any] = {"marker": marker, "credential": None, "created": {}, "not_created": []}
        if signup:
            request = self.prepare(signup, known, rng, marker=marker, customer=customer)
            status, payload = yield request
            if not 200 <= status < 300 or not isinstance(payload, Mapping) or credential_field not in payload:
                raise RuntimeError(f"{signup} answered {status} without '{credential_field}': {str(payload)[:300]}")
            customer["credential"] = payload[credential_field]
            self.learn(signup, known, request, status, payload)
        pending = [label for label in creates for _ in range(per_resource)]
        for _ in range(PRODUCER_ROUNDS):
            ready = [label for label in pending if not self._missing(label, known)]
            for label in ready:
                yield from self._create(label, known, rng, marker, customer)
                pending.remove(label)
            if not pending:
                break
            for producer in self._producers(pending, known):
                request = self.prepare(producer, known, rng, customer=customer)
                status, payload = yield request
                self.learn(producer, known, request, status, payload)
        for label in pending:  # what no producer offered: try with values from the schema
            yield from self._create(label, known, rng, marker, customer)
        customer["known"] = known.to_record()
        return customer

    def _create(self, label: str, known: KnownValues, rng: random.Random, marker: str,
                customer: dict[str, Any]) -> Generator[PreparedRequest, tuple[int, Any], None]:  # fmt: skip
        request = self.prepare(label, known, rng, marker=marker, customer=customer)
        status, payload = yield request
        ident = self.learn(label, known, request, status, payload)
        res = self.role(label).resource
        if 200 <= status < 300 and res is not None:
            customer["created"].setdefault(res.kind, []).append(ident)
        else:
            customer["not_created"].append({"operation": label, "status": status})

    def _needs(self, label: str) -> set[str]:
        """Required body fields a create cannot make up: references by id, or values a
        read-only operation offers."""
        op = self.operation(label)
        body = json_schema(op.body_schema) if op.body_schema else {}
        offered = self._offered_fields()
        needs = set()
        for name in body.get("required") or ():
            if str(name).lower().endswith("id") or (name in offered and not is_free_text(str(name))):
                needs.add(str(name))
        return needs

    def _missing(self, label: str, known: KnownValues) -> set[str]:
        return {n for n in self._needs(label) if not known.has(n)}

    @functools.cached_property
    def _offered_by(self) -> dict[str, set[str]]:
        """Field names each read-only GET operation's answer offers."""
        offered: dict[str, set[str]] = {}
        for label, role in self._roles.items():
            op = self.operation(label)
            if op.method == "GET" and role.resource is not None and role.resource.create is None:
                offered[label] = _field_names(op.success_schema)
        return offered

    def _offered_fields(self) -> set[str]:
        return set().union(*self._offered_by.values()) if self._offered_by else set()

    def _producers(self, pending: Sequence[str], known: KnownValues) -> list[str]:
        missing = set().union(*(self._missing(p, known) for p in pending))
        found = []
        for label, fields in self._offered_by.items():
            op = self.operation(label)
            required_ids = [p.name for p in op.parameters if p.required and p.location in ("path", "query")
                            and p.name.lower().endswith("id")]  # fmt: skip
            if fields & missing and all(known.has(n) for n in required_ids):
                found.append(label)
        return found

    async def provision(self, client: Any, rng: random.Random, marker: str, **how: Any) -> dict[str, Any]:
        """``customer_steps`` over an ``httpx.AsyncClient`` (what provision.py's hook gets)."""
        steps = self.customer_steps(rng, marker, **how)
        try:
            request = next(steps)
            while True:
                response = await client.request(request.method, self.url(request), headers=request.headers,
                                                json=request.json if request.has_body else None)  # fmt: skip
                request = steps.send((response.status_code, _json(response)))
        except StopIteration as done:
            return dict(done.value)

    def provision_sync(self, client: Any, rng: random.Random, marker: str, **how: Any) -> dict[str, Any]:
        """The same over an ``httpx.Client`` (the tests' fresh customers)."""
        steps = self.customer_steps(rng, marker, **how)
        try:
            request = next(steps)
            while True:
                response = self.send(client, request)
                request = steps.send((response.status_code, _json(response)))
        except StopIteration as done:
            return dict(done.value)

    # --- the generated checks -------------------------------------------------------------------

    def send(self, client: Any, request: PreparedRequest) -> Any:
        return client.request(request.method, self.url(request), headers=request.headers,
                              json=request.json if request.has_body else None)  # fmt: skip

    def smoke(self, client: Any, customer: Mapping[str, Any], label: str, rng: random.Random | None = None) -> None:
        """Send the operation as the load would; a request built on the customer's own values
        must answer 2xx with a body that matches the documented schema, any request below 500."""
        rng = rng or random.Random(0)
        known = KnownValues.from_record(customer.get("known"))
        request = self.prepare(label, known, rng, marker=str(customer.get("marker", "")), customer=customer)
        response = self.send(client, request)
        status = response.status_code
        what = f"{label} ({request.method} {request.path})"
        assert status < 500, f"{what} answered {status}: {response.text[:300]}"
        if not request.grounded:
            return
        assert 200 <= status < 300, (
            f"{what} answered {status} to a request built from the customer's own data: "
            f"{response.text[:300]} (if the generated values are wrong, edit this test)"
        )
        self.assert_documented_body(label, status, _json(response))

    def assert_documented_body(self, label: str, status: int, payload: Any) -> None:
        schema = self.operation(label).responses.get(str(status))
        if not schema:
            return
        from jsonschema import Draft202012Validator

        errors = sorted(Draft202012Validator(json_schema(schema)).iter_errors(payload), key=str)
        assert not errors, (
            f"{label}: the {status} answer does not match its documented schema: "
            f"{errors[0].message} at {'/'.join(map(str, errors[0].absolute_path)) or 'the top'}"
        )

    def recreate_after_delete(self, client: Any, customer: Mapping[str, Any], kind: str) -> None:
        """Create, delete, create the same again: a deleted resource frees what it held (a
        slot, a unique name), so the second create must answer as the first did."""
        res = self.resource(kind)
        assert res.create is not None and res.delete is not None
        known = KnownValues.from_record(customer.get("known"))
        rng = random.Random(1)
        first = self.prepare(res.create.label, known, rng, marker=str(customer.get("marker", "")), customer=customer)
        created = self.send(client, first)
        assert 200 <= created.status_code < 300, f"{first.label} answered {created.status_code}: {created.text[:300]}"
        self.learn(first.label, known, first, created.status_code, _json(created))
        ident = _json(created).get(res.id_field) if isinstance(_json(created), Mapping) else None
        delete = self.prepare(res.delete.label, known, rng, customer=customer)
        if res.id_param:
            delete = _with_path_value(delete, res.id_param, ident)
        deleted = self.send(client, delete)
        assert 200 <= deleted.status_code < 300, f"{delete.label} answered {deleted.status_code}: {deleted.text[:300]}"
        again = self.send(client, first)
        assert again.status_code == created.status_code, (
            f"{first.label} of the same content after {delete.label} answered {again.status_code}, "
            f"the first create {created.status_code}: deleting did not free it ({again.text[:300]})"
        )

    def request_strategy(self, label: str) -> Any:
        """A Hypothesis strategy of requests valid by the schema, drawn by Schemathesis's own
        generation (``APIOperation.as_strategy()``): text of any script and length, numbers at
        their bounds, optional fields present or not."""
        op = self.operation(label)
        return self._schemathesis_schema[op.path][op.method].as_strategy()

    @functools.cached_property
    def _schemathesis_schema(self) -> Any:
        import schemathesis

        return schemathesis.openapi.from_dict(dict(self.spec.document))

    def assert_no_server_error(self, client: Any, customer: Mapping[str, Any], label: str, case: Any) -> None:
        """Valid input by the schema is never a server error (a 4xx refusal is fine). The drawn
        case's path parameters are replaced by the customer's own ids where it has them, and
        its credential by the customer's."""
        known = KnownValues.from_record(customer.get("known"))
        own = self.prepare(label, known, random.Random(2), customer=customer)
        path = self.operation(label).path
        for name, value in (case.path_parameters or {}).items():
            mine = own.path_values.get(name) if known.has(name) else value
            path = path.replace("{" + name + "}", str(mine))
        auth = (self.spec.auth.name if self.spec.auth else "").lower()
        headers = {k: str(v) for k, v in (case.headers or {}).items() if k.lower() != auth}
        body = case.body if own.has_body else None
        request = replace(own, path=path, params={**dict(case.query or {}), **self.auth_params(customer)},
                          headers={**headers, **own.headers}, json=body)  # fmt: skip
        response = self.send(client, request)
        assert response.status_code < 500, (
            f"{label} answered {response.status_code} to input the schema allows: "
            f"path={request.path!r} params={dict(case.query or {})!r} body={body!r}: {response.text[:300]}"
        )

    # --- integrity --------------------------------------------------------------------------------

    def read_back(self, client: Any, customer: Mapping[str, Any], kind: str, ident: Any) -> dict[str, Any] | None:
        res = self.resource(kind)
        assert res.read is not None
        path = res.read.path.replace("{" + res.id_param + "}", str(ident))
        response = client.get(path, params=self.auth_params(customer) or None, headers=self.auth_headers(customer))
        if response.status_code in (403, 404, 410):
            return None
        response.raise_for_status()
        payload = response.json()
        return payload if isinstance(payload, dict) else None

    def isolation_paths(self, customer: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
        """(path, params, name) of every secured GET without path parameters, its required
        query parameters filled and its optional ones left out: the broadest reads, where a
        missing tenant filter shows other customers' data.

        An operation with a text filter (a search) is read a second time with the filter set to
        the run's marker prefix, text every customer of this run wrote into its data: a service
        that keeps tenants apart answers with the customer's own, a leaky one with everyone's.
        The broad read alone can miss it: its first page may hold only data without a marker
        (a fuzzer's, or whatever the service held before the audit)."""
        known = KnownValues.from_record(customer.get("known"))
        rng = random.Random(3)
        prefix = _run_marker(customer)
        reads: list[tuple[str, dict[str, Any], str]] = []
        for op in self.spec.operations:
            if not self.tenanted or op.method != "GET" or op.params("path") or not op.secured:
                continue
            required = {p.name: fill_value(p.name, p.schema, known, rng, in_query=True)
                        for p in op.params("query") if p.required}  # fmt: skip
            auth = self.auth_params(customer)
            reads.append((op.path, {**required, **auth}, op.label))
            search = next((p.name for p in op.params("query")
                           if prefix and is_text_filter(p.name, p.schema, len(prefix))), None)  # fmt: skip
            if search is not None:
                reads.append((op.path, {**required, search: prefix, **auth}, f"{op.label}?{search}="))
        return reads


def _run_marker(customer: Mapping[str, Any]) -> str:
    """The part of the customer's marker every customer of the run shares ("srmab12c"), or ""."""
    marker = str(customer.get("marker") or "")
    try:
        return marker_prefix(marker) + "c" if marker else ""
    except ValueError:
        return ""


def _role_name(op: SpecOperation, res: ApiResource | None) -> str:
    if res is None:
        return "action"
    for name, candidate in (("create", res.create), ("read", res.read), ("list", res.listing),
                            ("update", res.update), ("delete", res.delete)):  # fmt: skip
        if candidate is not None and candidate.label == op.label:
            return name
    return "action"


def _field_names(schema: Any, depth: int = 0) -> set[str]:
    if not isinstance(schema, Mapping) or depth > 5:
        return set()
    names: set[str] = set()
    for key, sub in (schema.get("properties") or {}).items():
        names.add(str(key))
        names |= _field_names(sub, depth + 1)
    for key in ("items", "additionalProperties"):
        names |= _field_names(schema.get(key), depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key) or ():
            names |= _field_names(branch, depth + 1)
    return names


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _forget(known: KnownValues, name: str, value: Any) -> None:
    values = known.by_name.get(name)
    if values and value in values:
        values.remove(value)
    if values is not None:
        for candidate in list(values):
            if str(candidate) == str(value):
                values.remove(candidate)


def _with_path_value(request: PreparedRequest, name: str, value: Any) -> PreparedRequest:
    old = request.path_values.get(name)
    path = request.path.replace(str(old), str(value), 1) if old is not None else request.path
    return replace(request, path=path, path_values={**request.path_values, name: value})
