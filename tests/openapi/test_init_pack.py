"""`scaleready init`: a pack written from an OpenAPI document, and nothing written from a bad one.

Fast: the booking demo's document comes from its FastAPI app in process; the one end-to-end test
runs `scaleready check` on a generated pack against the demo started for real.
"""

from __future__ import annotations

import ast
import http.server
import json
import random
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.openapi.resources import discover_resources, find_signup
from harness.openapi.service import OpenApiService
from harness.openapi.spec import parse_spec
from harness.openapi.values import KnownValues
from harness.pack import load_pack

REPO = Path(__file__).resolve().parents[2]
PACK_DIR = REPO / "scenarios" / "booking"
if str(PACK_DIR) not in sys.path:
    sys.path.insert(0, str(PACK_DIR))  # booking_service, for its document built in process


@pytest.fixture(scope="module")
def booking_document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from booking_service.app import create_app
    from booking_service.settings import Settings

    db_path = tmp_path_factory.mktemp("booking") / "demo.sqlite3"
    return create_app(Settings(db_path=db_path)).openapi()  # type: ignore[no-any-return]


@pytest.fixture
def booking_spec_file(tmp_path: Path, booking_document: dict[str, Any]) -> Path:
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(booking_document), encoding="utf-8")
    return path


def run_init(*args: str) -> Any:
    return CliRunner().invoke(main, ["init", *args], catch_exceptions=False)


# --- bad documents: one sentence, exit 2, nothing written ---------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BAD_DOCUMENTS = {
    "invalid YAML": ("openapi: 3.0.0\npaths: [unclosed\n", "not valid YAML or JSON"),
    "no operations": (json.dumps({"openapi": "3.1.0", "info": {"title": "x"}, "paths": {}}), "no operations"),
    "a $ref cycle": (
        json.dumps({
            "openapi": "3.1.0", "info": {"title": "x"},
            "components": {"schemas": {"A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}}},
            "paths": {"/a": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}},
                                      "responses": {"200": {"description": "ok"}}}}},
        }),  # fmt: skip
        "$ref cycle",
    ),
    "Swagger 2.0": (json.dumps({"swagger": "2.0", "paths": {}}), "Swagger 2.0 is not supported"),
}


@pytest.mark.parametrize("case", sorted(BAD_DOCUMENTS))
def test_a_bad_document_is_one_sentence_exit_2_and_no_pack(tmp_path: Path, case: str) -> None:
    text, expected = BAD_DOCUMENTS[case]
    doc = tmp_path / "spec.yaml"
    doc.write_text(text, encoding="utf-8")
    result = run_init(str(tmp_path / "pack"), "--openapi", str(doc))
    assert result.exit_code == 2
    message = " ".join(result.output.split())  # the console wraps long lines
    assert message.startswith(f"scaleready: {doc}: ") and expected in message
    assert message.count("scaleready:") == 1 and "Traceback" not in message
    assert not (tmp_path / "pack").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # no staging folder left


def test_a_missing_file_an_unreachable_and_a_foreign_url_are_refused(tmp_path: Path) -> None:
    for source, expected in [
        (str(tmp_path / "nowhere.json"), "no such file"),
        (f"http://127.0.0.1:{_closed_port()}/openapi.json", "cannot be reached"),
        ("http://example.com/openapi.json", "not on loopback"),
    ]:
        result = run_init(str(tmp_path / "pack"), "--openapi", source)
        message = " ".join(result.output.split())
        assert result.exit_code == 2, message
        assert message.startswith(f"scaleready: {source}: ") and expected in message
        assert not (tmp_path / "pack").exists()


def test_an_existing_pack_is_kept_unless_force(tmp_path: Path, booking_spec_file: Path) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "mine.txt").write_text("hand-written", encoding="utf-8")
    refused = run_init(str(pack), "--openapi", str(booking_spec_file))
    assert refused.exit_code == 2 and "--force" in " ".join(refused.output.split())
    assert (pack / "mine.txt").read_text(encoding="utf-8") == "hand-written"
    replaced = run_init(str(pack), "--openapi", str(booking_spec_file), "--force")
    assert replaced.exit_code == 0, replaced.output
    assert not (pack / "mine.txt").exists() and (pack / "scenario.toml").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["openapi.json", "pack"]


# --- what is generated --------------------------------------------------------------------------


def test_the_generated_pack_loads_and_covers_every_operation(tmp_path: Path, booking_spec_file: Path,
                                                             booking_document: dict[str, Any]) -> None:  # fmt: skip
    pack = tmp_path / "generated"
    result = run_init(str(pack), "--openapi", str(booking_spec_file), "--start", "{python} -m svc --port {port}")
    assert result.exit_code == 0, result.output
    loaded = load_pack(pack)  # scenario.toml validates, every file it names exists
    labels = [f"{m.upper()} {p}" for p, item in booking_document["paths"].items() for m in item]
    assert sorted(loaded.config.slo.endpoints) == sorted(labels)
    assert loaded.config.target.start == "{python} -m svc --port {port}"
    locustfile = (pack / "locustfile.py").read_text(encoding="utf-8")
    calls = [n.args[0].value for n in ast.walk(ast.parse(locustfile))
             if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "call"]  # fmt: skip
    assert sorted(calls) == sorted(labels)  # a task per operation
    assert "@task(3)\n    def get_patients" in locustfile and "@task(1)\n    def post_patients" in locustfile
    tests = (pack / "tests" / "test_operations.py").read_text(encoding="utf-8")
    assert tests.count("SERVICE.smoke(") == len(labels)
    for name in ("provision.py", "invariants.py", "conftest.py", "tests/test_operations.py",
                 "properties/test_schema_inputs.py", "locustfile.py"):  # fmt: skip
        compile((pack / name).read_text(encoding="utf-8"), name, "exec")
    toml = tomllib.loads((pack / "scenario.toml").read_text(encoding="utf-8"))
    assert set(toml["customers"]["personas"]) == {"Health", "Stats", "Clinics", "Clinic", "Practitioners",
                                                 "Patients", "Slots", "Bookings", "Reports"}  # fmt: skip
    assert "SIGNUP: str | None = 'POST /clinics'" in (pack / "provision.py").read_text(encoding="utf-8")


def test_a_url_on_loopback_becomes_the_base_url(tmp_path: Path, booking_document: dict[str, Any]) -> None:
    body = json.dumps(booking_document).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/openapi.json"
        assert run_init(str(tmp_path / "p"), "--openapi", url).exit_code == 0
    finally:
        server.shutdown()
        thread.join(timeout=5)
    config = load_pack(tmp_path / "p").config
    assert config.target.base_url == f"http://127.0.0.1:{server.server_address[1]}"
    assert config.target.start is None and config.target.health_path == "/health"


# --- resources and values -----------------------------------------------------------------------

TAGGED = {
    "openapi": "3.0.3",
    "info": {"title": "Notes"},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                   "schemas": {"Note": {"type": "object", "required": ["title"],
                                        "properties": {"id": {"type": "string"}, "title": {"type": "string"},
                                                       "done": {"type": "boolean", "nullable": True}}}}},  # fmt: skip
    "security": [{"bearer": []}],
    "paths": {
        "/notes": {
            "post": {"tags": ["writing"], "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Note"}}}},
                     "responses": {"201": {"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Note"}}}}}},
            "get": {"tags": ["reading"], "responses": {"200": {"description": ""}}},
        },
        "/notes/{note_id}": {
            "parameters": [{"name": "note_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {"tags": ["reading"], "responses": {"200": {"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Note"}}}}}},
            "delete": {"tags": ["writing"], "responses": {"204": {"description": ""}}},
        },
    },
}  # fmt: skip


def test_resources_are_found_from_the_paths_alone(booking_document: dict[str, Any]) -> None:
    spec = parse_spec(json.dumps(booking_document), "booking")
    found = {r.kind: r for r in discover_resources(spec)}
    booking = found["booking"]
    assert booking.create and booking.create.label == "POST /bookings"
    assert booking.read and booking.read.label == "GET /bookings/{booking_id}"
    assert booking.delete and booking.delete.label == "POST /bookings/{booking_id}/cancel" and booking.soft_delete
    assert booking.stable_fields == ("practitioner_id", "patient_id", "start")
    assert found["patient"].id_param == "patient_id" and found["patient"].stable_fields == ("name",)
    signup, field = find_signup(spec)
    assert signup is not None and signup.label == "POST /clinics" and field == "api_key"

    notes = parse_spec(json.dumps(TAGGED), "notes")
    (note,) = discover_resources(notes)
    assert note.delete is not None and note.delete.label == "DELETE /notes/{note_id}" and not note.soft_delete
    assert notes.auth is not None and notes.auth.prefix == "Bearer "


def test_a_read_after_a_create_reads_what_was_created() -> None:
    service = OpenApiService(parse_spec(json.dumps(TAGGED), "notes"))
    known = KnownValues()
    rng = random.Random(7)
    customer = {"credential": "tok", "marker": "srm000000c000001"}
    create = service.prepare("POST /notes", known, rng, marker=customer["marker"], customer=customer)
    assert create.headers["Authorization"] == "Bearer tok"
    assert create.json["title"].startswith("srm000000c000001 ")  # the marker travels in text
    assert service.ledger_entry("POST /notes", create) == ("note", "create", None, {"title": create.json["title"]})
    ident = service.learn("POST /notes", known, create, 201, {"id": "n-42", "title": create.json["title"]})
    assert ident == "n-42"
    read = service.prepare("GET /notes/{note_id}", known, rng, customer=customer)
    assert read.path == "/notes/n-42" and read.grounded
    delete = service.prepare("DELETE /notes/{note_id}", known, rng, customer=customer)
    assert service.ledger_entry("DELETE /notes/{note_id}", delete) == ("note", "delete", "n-42", None)
    service.learn("DELETE /notes/{note_id}", known, delete, 204, None)
    assert not known.has("note_id")  # a deleted id is not read again


def test_tags_make_the_personas(tmp_path: Path) -> None:
    doc = tmp_path / "notes.yaml"
    doc.write_text(json.dumps(TAGGED), encoding="utf-8")
    assert run_init(str(tmp_path / "p"), "--openapi", str(doc)).exit_code == 0
    assert set(load_pack(tmp_path / "p").config.customers.personas) == {"Writing", "Reading"}


# --- end to end ---------------------------------------------------------------------------------


@pytest.fixture
def demo_url(tmp_path: Path) -> Iterator[str]:
    from harness.target import free_port, wait_healthy

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "booking_service", "--port", str(port), "--db",
                             str(tmp_path / "demo.sqlite3")], cwd=PACK_DIR, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, "/health", 30.0, alive=lambda: proc.poll() is None)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_pack_generated_from_the_demos_own_document_passes_check(tmp_path: Path, demo_url: str) -> None:
    pack = tmp_path / "booking-generated"
    init = subprocess.run([sys.executable, "-m", "harness.cli", "init", str(pack), "--openapi",
                           f"{demo_url}/openapi.json"], capture_output=True, text=True, cwd=REPO, timeout=60)  # fmt: skip
    assert init.returncode == 0, init.stderr
    check = subprocess.run([sys.executable, "-m", "harness.cli", "check", str(pack), "--target", demo_url],
                           capture_output=True, text=True, cwd=REPO, timeout=300)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Pack OK" in check.stdout


def test_a_search_is_read_once_more_for_the_runs_marker_which_every_customers_data_holds(
    booking_document: dict[str, Any],
) -> None:
    service = OpenApiService(parse_spec(json.dumps(booking_document), "booking"))
    reads = service.isolation_paths({"credential": "k", "marker": "srmab12c000003"})
    searches = [(path, params) for path, params, name in reads if name.endswith("=")]
    # GET /patients?q is a text filter; dates, ids and a bounded integer (limit) are not.
    assert searches == [("/patients", {"q": "srmab12c"})]
    assert ("/patients", {}, "GET /patients") in reads  # the broad read stays


def test_without_authentication_customers_share_data_and_carry_no_marker() -> None:
    anonymous = {k: v for k, v in TAGGED.items() if k != "security"}
    anonymous["components"] = {"schemas": TAGGED["components"]["schemas"]}
    service = OpenApiService(parse_spec(json.dumps(anonymous), "notes"))
    customer = {"credential": None, "marker": "srm000000c000001"}
    create = service.prepare("POST /notes", KnownValues(), random.Random(1), marker=customer["marker"], customer=customer)
    assert "srm000000c000001" not in json.dumps(create.json)
    assert service.isolation_paths(customer) == []
