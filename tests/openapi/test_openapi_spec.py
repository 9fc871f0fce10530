"""Loading an OpenAPI document: what init reads, and one sentence for every way it can be wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.openapi.spec import load_spec, parse_spec

PETS = {
    "openapi": "3.0.3",
    "info": {"title": "Pets"},
    "components": {
        "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-Key"}},
        "schemas": {
            "Pet": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
            "PetAlias": {"$ref": "#/components/schemas/Pet"},
            "Node": {"type": "object", "properties": {"child": {"$ref": "#/components/schemas/Node"}}},
        },
    },
    "security": [{"key": []}],
    "paths": {
        "/pets": {
            "post": {
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PetAlias"}}}},
                "responses": {"201": {"description": "made", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}}},
            },
            "get": {"responses": {"200": {"description": "ok"}}},
        },
        "/pets/{pet_id}": {
            "parameters": [{"name": "pet_id", "in": "path", "schema": {"type": "integer"}}],
            "get": {"security": [], "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}}},
        },
    },
}


def write(tmp_path: Path, doc: object, name: str = "openapi.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def test_operations_come_with_their_schemas_inlined_and_security_resolved(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, PETS))
    assert [op.label for op in spec.operations] == ["GET /pets", "POST /pets", "GET /pets/{pet_id}"]
    create = spec.operation("POST /pets")
    assert create.body_schema == PETS["components"]["schemas"]["Pet"]  # through the alias
    assert create.success_status == "201" and create.secured
    read = spec.operation("GET /pets/{pet_id}")
    assert not read.secured  # security: [] overrides the document's
    assert [(p.name, p.location, p.required) for p in read.parameters] == [("pet_id", "path", True)]
    assert spec.auth is not None and (spec.auth.location, spec.auth.name) == ("header", "X-Key")


def test_a_recursive_schema_is_cut_not_refused(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, PETS))
    node = spec.operation("GET /pets/{pet_id}").success_schema
    assert node == {"type": "object", "properties": {"child": {}}}
    assert spec.recursive == ("#/components/schemas/Node",)


def test_yaml_is_read_and_bearer_maps_to_the_authorization_header(tmp_path: Path) -> None:
    text = """
openapi: 3.1.0
info: {title: T}
components: {securitySchemes: {jwt: {type: http, scheme: bearer}}}
paths:
  /things:
    get:
      responses:
        200: {description: ok}
"""
    spec = load_spec(write(tmp_path, text, "openapi.yaml"))
    assert spec.operations[0].responses == {"200": None}
    assert spec.auth is not None and (spec.auth.name, spec.auth.prefix) == ("Authorization", "Bearer ")


def test_a_credential_header_parameter_is_taken_as_the_auth_scheme() -> None:
    doc = {"openapi": "3.1.0", "paths": {"/me": {"get": {
        "parameters": [{"name": "x-api-key", "in": "header", "schema": {"type": "string"}}],
        "responses": {"200": {"description": "ok"}}}}}}  # fmt: skip
    spec = parse_spec(json.dumps(doc), "doc")
    assert spec.auth is not None and spec.auth.name == "x-api-key"
    assert spec.operations[0].secured


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("openapi: [3.0", "not valid YAML or JSON at line 1"),
        ("- a list", "not an OpenAPI document"),
        (json.dumps({"swagger": "2.0", "paths": {}}), "Swagger 2.0 is not supported; convert it"),
        (json.dumps({"openapi": "4.0", "paths": {}}), "give an OpenAPI 3.0 or 3.1 document"),
        (json.dumps({"openapi": "3.0.0", "paths": {}}), "has no operations under 'paths'"),
        (json.dumps({"openapi": "3.0.0", "paths": {"/a": {"get": {"responses": {"200": {"$ref": "#/nowhere"}}}}}}),
         "$ref '#/nowhere' points at nothing"),
        (json.dumps({"openapi": "3.0.0", "components": {"schemas": {"A": {"$ref": "#/components/schemas/B"},
                                                                    "B": {"$ref": "#/components/schemas/A"}}},
                     "paths": {"/a": {"get": {"responses": {"200": {"description": "x", "content": {
                         "application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}}}}}}),
         "$ref cycle #/components/schemas/A -> #/components/schemas/B -> #/components/schemas/A"),
        (json.dumps({"openapi": "3.0.0", "paths": {"/a": {"$ref": "other.yaml#/a"}}}), "points outside the document"),
    ],
)
def test_a_bad_document_is_one_sentence_naming_it(tmp_path: Path, text: str, says: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and says in message
    assert "\n" not in message


def test_a_missing_file_says_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.json: no such file; give the path"):
        load_spec(tmp_path / "nope.json")


def test_a_url_off_loopback_is_refused_before_any_request() -> None:
    with pytest.raises(ConfigError, match=r"host 'api\.example\.com' is not on loopback"):
        load_spec("https://api.example.com/openapi.json")


def test_an_allowed_host_is_tried_and_unreachable_says_start_the_service() -> None:
    # Port 9 on loopback (discard) is closed here: the connection is refused at once.
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1:9/openapi\.json: cannot be reached .*start the service"):
        load_spec("http://127.0.0.1:9/openapi.json")
