"""Schemathesis's checks in the properties stage, against a small loopback service and its spec.

The service answers two operations honestly and lies about one (its document promises an item
with an integer id and a name; it answers a string id and no name). Every test runs the real
stage: a child pytest running Schemathesis against the service over HTTP.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from json_http import send_json

from harness.audit import PackHooks, openapi_credential
from harness.openapi.spec import load_spec
from harness.provisioning import CustomerStore
from harness.records import PropertiesResult
from harness.suites import OPENAPI_CHECKS, OpenApiRun, run_openapi_checks
from harness.verdict.policy import ReproduceContext
from harness.verdict.rules.suites import properties_findings

KEY = "k-7f3a9c1e5b"  # the one credential the secured service accepts
ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}


def _json(schema: dict[str, Any], description: str = "ok") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def document(*, secured: bool) -> dict[str, Any]:
    item = {"type": "object", "required": ["id", "name"],
            "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}  # fmt: skip
    note = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string", "maxLength": 50}}}
    invalid = {"422": _json(ERROR, "invalid input")}
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "Items", "version": "1"},
        "paths": {
            "/ping": {"get": {"responses": {"200": _json({"type": "object", "required": ["ok"],
                                                           "properties": {"ok": {"type": "boolean"}}})}}},  # fmt: skip
            "/notes": {"post": {
                "requestBody": {"required": True, "content": {"application/json": {"schema": note}}},
                "responses": {"201": _json(note, "created"), **invalid},
            }},  # fmt: skip
            "/items/{item_id}": {"get": {
                "parameters": [{"name": "item_id", "in": "path", "required": True,
                                "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
                "responses": {"200": _json(item), **invalid},
            }},  # fmt: skip
        },
    }
    if secured:
        for item_ops in doc["paths"].values():
            for op in item_ops.values():
                op["responses"]["401"] = _json(ERROR, "no or a wrong X-API-Key")
        doc["components"] = {"securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}}
        doc["security"] = [{"key": []}]
    return doc


class Service(ThreadingHTTPServer):
    """Answers as described above; ``secured`` refuses a request without KEY with a 401 (which
    its document then lists). Keeps every request it was sent, in order."""

    def __init__(self, secured: bool) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.secured = secured
        self.requests: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Service
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def _answer(self, status: int, body: object) -> None:
        send_json(self, status, body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        with self.server.lock:
            self.server.requests.append((self.command, self.path, body))
        if self.server.secured and self.headers.get("X-API-Key") != KEY:
            return self._answer(401, {"detail": "no key"})
        path = self.path.split("?")[0]
        if self.command == "GET" and path == "/ping":
            return self._answer(200, {"ok": True})
        if self.command == "POST" and path == "/notes":
            try:
                note = json.loads(body)
                text = note["text"]
                assert isinstance(note, dict) and isinstance(text, str) and len(text) <= 50
            except (ValueError, KeyError, TypeError, AssertionError):
                return self._answer(422, {"detail": "give {text: a string of at most 50 characters}"})
            return self._answer(201, {"text": text})
        if self.command == "GET" and path.startswith("/items/"):
            raw = path.removeprefix("/items/")
            if not raw.isdigit() or not 1 <= int(raw) <= 1000:
                return self._answer(422, {"detail": "item_id is a number from 1 to 1000"})
            return self._answer(200, {"id": raw})  # the lie: a string id, and no name
        return self._answer(422, {"detail": "unknown"})

    do_GET = do_POST = _handle


@pytest.fixture
def service(request: pytest.FixtureRequest) -> Iterator[Service]:
    server = Service(secured=getattr(request, "param", False))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_checks(service: Service, tmp_path: Path, *, seed: int = 7, headers: dict[str, str] | None = None,
               examples: int = 4) -> Any:  # fmt: skip
    doc = tmp_path / "openapi.json"
    doc.write_text(json.dumps(document(secured=service.secured)), encoding="utf-8")
    run_dir = tmp_path / f"run-{seed}-{len(list(tmp_path.glob('run-*')))}"
    run_dir.mkdir()
    spec = OpenApiRun(document=doc, source="/openapi.json", examples=examples, seed=seed, timeout_s=120.0,
                      headers=headers or {})  # fmt: skip
    return run_openapi_checks(spec, run_dir=run_dir, env={"SCALEREADY_TARGET_URL": service.url})


def test_a_response_the_spec_lies_about_is_a_property_finding_with_curl(service: Service, tmp_path: Path) -> None:
    checks = run_checks(service, tmp_path)
    assert checks.status == "failed", checks.note
    assert (checks.operations, checks.passed) == (3, 2)
    assert checks.checks == OPENAPI_CHECKS
    [failure] = checks.failures
    assert failure.operation == "GET /items/{item_id}"
    assert failure.checks == ("response_schema_conformance",)
    assert failure.curl.startswith("curl -X GET ") and f"{service.url}/items/" in failure.curl

    ctx = ReproduceContext(pack="items", profile="quick", target_url=None, started_by_harness=True,
                           extra_args="--seed 7")  # fmt: skip
    props = PropertiesResult(status="skipped", passed=0, failed=0, duration_s=0.0, examples_per_property=0,
                             junit="", openapi=checks)  # fmt: skip
    outcome = properties_findings(props, ctx)
    [finding] = outcome.findings
    assert finding.category == "property"
    assert "GET /items/{item_id}" in finding.title and "response_schema_conformance" in finding.title
    assert finding.evidence["curl"] == failure.curl and failure.curl in finding.detail
    assert finding.reproduce == "scaleready audit items --profile quick --only properties --seed 7"
    assert outcome.failures  # a failed check fails the verdict


@pytest.mark.slow  # three runs of the stage
def test_the_same_seed_sends_the_same_requests_and_another_seed_does_not(service: Service, tmp_path: Path) -> None:
    first = run_checks(service, tmp_path, seed=11)
    sent_first = list(service.requests)
    service.requests.clear()
    again = run_checks(service, tmp_path, seed=11)
    assert service.requests == sent_first
    assert again.failures == first.failures and first.seed == again.seed == 11
    service.requests.clear()
    run_checks(service, tmp_path, seed=12)
    assert service.requests != sent_first


@pytest.mark.parametrize("service", [True], indirect=True)
def test_a_secured_spec_gets_the_provisioned_customers_credential(service: Service, tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, document(secured=True)))
    assert spec.auth is not None  # what the audit asks before it provisions a customer
    created: list[int] = []

    async def create_customer(client: Any, index: int, rng: Any, marker: str) -> dict[str, Any]:
        created.append(index)
        return {"api_key": KEY}

    hooks = PackHooks(create_customer=create_customer, auth_headers=lambda c: {"X-API-Key": c["api_key"]})
    store = CustomerStore(tmp_path / "customers.jsonl")
    headers, note = openapi_credential(hooks, store, secured=True, base_url=service.url, seed=7,
                                       request_timeout_s=5.0, max_rps=None, cancel=threading.Event())  # fmt: skip
    assert (headers, note, created) == ({"X-API-Key": KEY}, "", [0])
    checks = run_checks(service, tmp_path, headers=headers)
    assert checks.authenticated
    # The lie is found, so the requests got past the 401 (a documented answer: no failure of its own).
    assert [f.operation for f in checks.failures] == ["GET /items/{item_id}"]
    assert "[Filtered]" in checks.failures[0].curl and KEY not in checks.failures[0].curl


@pytest.mark.slow
@pytest.mark.parametrize("service", [True], indirect=True)
def test_without_the_credential_a_secured_service_hides_the_lie(service: Service, tmp_path: Path) -> None:
    without = run_checks(service, tmp_path)
    assert without.status == "passed" and not without.failures  # every answer a documented 401
    assert not without.authenticated


def test_a_spec_without_security_provisions_no_customer(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, document(secured=False)))
    assert spec.auth is None and not any(op.secured for op in spec.operations)

    async def create_customer(client: Any, index: int, rng: Any, marker: str) -> dict[str, Any]:
        raise AssertionError("no customer is needed")

    hooks = PackHooks(create_customer=create_customer, auth_headers=lambda c: {})
    store = CustomerStore(tmp_path / "customers.jsonl")
    assert openapi_credential(hooks, store, secured=False, base_url="http://127.0.0.1:9", seed=7,
                              request_timeout_s=5.0, max_rps=None, cancel=threading.Event()) == ({}, "")  # fmt: skip
    assert len(store) == 0


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path
