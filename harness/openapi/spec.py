"""An OpenAPI document, loaded from a file or a loopback URL, with its operations made plain.

``load_spec`` reads JSON or YAML (PyYAML reads both), checks it is OpenAPI 3.0 or 3.1, resolves
the document's own ``$ref`` pointers (``referencing``, jsonschema's resolver, finds the target)
and returns every operation with its parameters, body and response schemas inlined. What
``init`` and the generated pack's runtime need, nothing more: the full validation of requests
and responses is Schemathesis's, which reads the same document itself.

Every problem is one :class:`ConfigError` sentence naming the file or URL and what to do
(exit 2): a missing file, invalid YAML or JSON, a URL that does not answer or is not on loopback,
Swagger 2.0, a document without operations, a ``$ref`` that points nowhere or only at itself.

A schema that contains itself through a property (a tree of comments) is legitimate OpenAPI;
inlined, its recursion is cut at the second visit to an empty schema (anything), noted in the
returned :attr:`ApiSpec.recursive` so a generated pack can say so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from harness.addresses import is_loopback
from harness.errors import ConfigError

__all__ = ["HTTP_METHODS", "ApiSpec", "AuthScheme", "Parameter", "SpecOperation", "load_spec", "parse_spec"]

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
FETCH_TIMEOUT_S = 10.0
# A credential a customer presents, when the spec has no securitySchemes and takes it as an
# ordinary header parameter instead (FastAPI's `x_api_key: str = Header()` does that).
CREDENTIAL_HEADERS = ("authorization", "x-api-key", "api-key", "x-auth-token", "x-access-token", "x-token")


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # "path" | "query" | "header" | "cookie"
    required: bool
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class SpecOperation:
    """One operation (method and path) with its schemas inlined."""

    method: str  # upper case
    path: str
    operation_id: str
    tags: tuple[str, ...]
    summary: str
    parameters: tuple[Parameter, ...]
    body_schema: Mapping[str, Any] | None
    body_required: bool
    responses: Mapping[str, Mapping[str, Any] | None]  # status ("200", "4XX", "default") -> schema
    secured: bool  # needs the auth scheme (security requirement or a credential header)

    @property
    def label(self) -> str:
        """How the harness names it: "GET /bookings/{booking_id}"."""
        return f"{self.method} {self.path}"

    def params(self, location: str) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if p.location == location)

    @property
    def success_status(self) -> str | None:
        """The first documented 2xx status, e.g. "201"."""
        for status in sorted(self.responses):
            if status.startswith("2"):
                return status
        return None

    @property
    def success_schema(self) -> Mapping[str, Any] | None:
        status = self.success_status
        return self.responses.get(status) if status else None


@dataclass(frozen=True)
class AuthScheme:
    """How a customer's credential travels: a header (or query) name and an optional prefix."""

    location: str  # "header" | "query" | "cookie"
    name: str  # "X-API-Key", "Authorization"
    prefix: str = ""  # "Bearer " for bearer tokens
    origin: str = ""  # where in the spec this was found, for the generated comment


@dataclass(frozen=True)
class ApiSpec:
    source: str  # the file path or URL, as given
    version: str  # "3.0.3", "3.1.0"
    title: str
    document: Mapping[str, Any] = field(repr=False)
    operations: tuple[SpecOperation, ...]
    auth: AuthScheme | None
    servers: tuple[str, ...] = ()
    recursive: tuple[str, ...] = ()  # $refs whose recursion was cut when inlined

    def operation(self, label: str) -> SpecOperation:
        for op in self.operations:
            if op.label == label:
                return op
        raise KeyError(label)


def load_spec(source: str | Path, *, allowed_hosts: Sequence[str] = ()) -> ApiSpec:
    """Read an OpenAPI document from a file or an http(s) URL (loopback unless allowed)."""
    text, where = _read(str(source), allowed_hosts)
    return parse_spec(text, where)


def parse_spec(text: str, where: str) -> ApiSpec:
    """Parse and resolve a document's text; `where` names it in error messages."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{where}: not valid YAML or JSON{line} ({getattr(exc, 'problem', None) or exc}); "
            "fix the document or export it again from the service"
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(
            f"{where}: not an OpenAPI document (its top level is not a mapping); "
            "give the service's openapi.json or openapi.yaml"
        )
    document = _stringify_keys(document)
    if "swagger" in document:
        raise ConfigError(
            f"{where}: Swagger {document['swagger']} is not supported; convert it to OpenAPI 3 "
            "(e.g. with swagger2openapi) or give the service's OpenAPI 3 document"
        )
    version = str(document.get("openapi", ""))
    if not version.startswith(("3.0", "3.1")):
        raise ConfigError(
            f"{where}: no 'openapi: 3.0.x' or '3.1.x' field (got {version or 'none'!r}); "
            "give an OpenAPI 3.0 or 3.1 document"
        )
    paths = document.get("paths")
    if not isinstance(paths, dict):
        paths = {}
    resolver = _Resolver(document, where)
    operations = _operations(paths, document, resolver, where)
    if not operations:
        raise ConfigError(
            f"{where}: the document has no operations under 'paths'; "
            "give the service's full OpenAPI document (is this a components-only file?)"
        )
    info: Mapping[str, Any] = document.get("info") if isinstance(document.get("info"), dict) else {}
    servers = tuple(
        str(s["url"]) for s in document.get("servers") or () if isinstance(s, dict) and "url" in s
    )
    return ApiSpec(
        source=where,
        version=version,
        title=str(info.get("title") or "API"),
        document=document,
        operations=operations,
        auth=_auth_scheme(document, operations, resolver),
        servers=servers,
        recursive=tuple(sorted(resolver.recursive)),
    )


# --- reading ------------------------------------------------------------------------------------


def _read(source: str, allowed_hosts: Sequence[str]) -> tuple[str, str]:
    parts = urlsplit(source)
    if parts.scheme in ("http", "https"):
        return _fetch(source, parts.hostname or "", allowed_hosts), source
    if parts.scheme and len(parts.scheme) > 1:
        raise ConfigError(
            f"{source}: only http(s) URLs and files are read; save the document to a file and give its path"
        )
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file; give the path of the service's OpenAPI document, or its URL "
            "(e.g. http://127.0.0.1:8000/openapi.json)"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; give the OpenAPI document file inside it") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; give the JSON or YAML OpenAPI document") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from None


def _fetch(url: str, host: str, allowed_hosts: Sequence[str]) -> str:
    if not (is_loopback(host) or host in allowed_hosts):
        raise ConfigError(
            f"{url}: host '{host}' is not on loopback; run the service locally and give its "
            "loopback URL, save the document to a file, or allow the host with --allow-host"
        )
    try:
        response = httpx.get(url, timeout=FETCH_TIMEOUT_S, follow_redirects=True)
    except httpx.TransportError as exc:
        raise ConfigError(
            f"{url}: cannot be reached ({type(exc).__name__}); start the service first, "
            "or give the document as a file"
        ) from None
    if response.status_code != 200:
        raise ConfigError(
            f"{url}: answered {response.status_code}, not the document; check the path "
            "(FastAPI serves /openapi.json) or give the document as a file"
        )
    return response.text


def _stringify_keys(node: Any) -> Any:
    """YAML reads `200:` as an int; OpenAPI keys are strings."""
    if isinstance(node, dict):
        return {str(k): _stringify_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_stringify_keys(v) for v in node]
    return node


# --- resolving $ref -----------------------------------------------------------------------------


class _Resolver:
    """Inlines the document's own ``$ref``s; the pointer lookup is ``referencing``'s."""

    def __init__(self, document: Mapping[str, Any], where: str) -> None:
        self.where = where
        self.recursive: set[str] = set()
        uri = "urn:scaleready:spec"
        resource = DRAFT202012.create_resource(dict(document))
        self._resolver = Registry().with_resource(uri, resource).resolver(base_uri=uri)

    def lookup(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise ConfigError(
                f"{self.where}: $ref '{ref}' points outside the document; bundle it into one file "
                "(e.g. `redocly bundle`) and give that"
            )
        try:
            return self._resolver.lookup(ref).contents
        except Unresolvable:
            raise ConfigError(
                f"{self.where}: $ref '{ref}' points at nothing in the document; fix the reference"
            ) from None

    def inline(self, node: Any, stack: tuple[str, ...] = ()) -> Any:
        if isinstance(node, list):
            return [self.inline(v, stack) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in stack:
                self.recursive.add(ref)
                return {}
            target = self._follow(ref)
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            inlined = self.inline(target, (*stack, ref))
            return {**inlined, **self.inline(siblings, stack)} if isinstance(inlined, dict) else inlined
        return {k: self.inline(v, stack) for k, v in node.items()}

    def _follow(self, ref: str) -> Any:
        """The first node along a chain of bare references that is not itself one."""
        seen = [ref]
        target = self.lookup(ref)
        while isinstance(target, dict) and set(target) == {"$ref"}:
            nxt = str(target["$ref"])
            if nxt in seen:
                chain = " -> ".join([*seen, nxt])
                raise ConfigError(
                    f"{self.where}: $ref cycle {chain}: the schema is only a reference to itself; "
                    "give one of them a real schema"
                )
            seen.append(nxt)
            target = self.lookup(nxt)
        return target


# --- operations ---------------------------------------------------------------------------------


def _operations(
    paths: Mapping[str, Any], document: Mapping[str, Any], resolver: _Resolver, where: str
) -> tuple[SpecOperation, ...]:
    global_security = bool(document.get("security"))
    found = []
    for path, item in paths.items():
        item = resolver.inline(item)
        if not isinstance(item, dict):
            continue
        shared = [p for p in item.get("parameters") or () if isinstance(p, dict)]
        for method in HTTP_METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            params = _parameters([*shared, *(p for p in op.get("parameters") or () if isinstance(p, dict))])
            body, body_required = _body(op)
            security = op.get("security")
            secured = bool(security) if security is not None else global_security
            if any(p.location == "header" and p.name.lower() in CREDENTIAL_HEADERS for p in params):
                secured = True
            found.append(
                SpecOperation(
                    method=method.upper(),
                    path=str(path),
                    operation_id=str(op.get("operationId") or f"{method}_{path}"),
                    tags=tuple(str(t) for t in op.get("tags") or ()),
                    summary=str(op.get("summary") or ""),
                    parameters=params,
                    body_schema=body,
                    body_required=body_required,
                    responses=_responses(op),
                    secured=secured,
                )
            )
    return tuple(found)


def _parameters(raw: list[dict[str, Any]]) -> tuple[Parameter, ...]:
    by_key: dict[tuple[str, str], Parameter] = {}
    for p in raw:  # an operation's parameter overrides the path's of the same name and place
        name, location = str(p.get("name", "")), str(p.get("in", ""))
        if not name or not location:
            continue
        raw_schema = p.get("schema")
        schema: Mapping[str, Any] = raw_schema if isinstance(raw_schema, dict) else {}
        by_key[(name, location)] = Parameter(
            name=name, location=location, required=bool(p.get("required")) or location == "path",
            schema=schema,
        )  # fmt: skip
    return tuple(by_key.values())


def _json_schema(content: Any) -> Mapping[str, Any] | None:
    if not isinstance(content, dict):
        return None
    for media, entry in content.items():
        if "json" in media and isinstance(entry, dict):
            schema = entry.get("schema")
            return schema if isinstance(schema, dict) else {}
    return None


def _body(op: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, bool]:
    body = op.get("requestBody")
    if not isinstance(body, dict):
        return None, False
    return _json_schema(body.get("content")), bool(body.get("required"))


def _responses(op: Mapping[str, Any]) -> dict[str, Mapping[str, Any] | None]:
    raw = op.get("responses")
    if not isinstance(raw, dict):
        return {}
    return {str(status): _json_schema(r.get("content")) if isinstance(r, dict) else None
            for status, r in raw.items()}  # fmt: skip


def _auth_scheme(
    document: Mapping[str, Any], operations: Sequence[SpecOperation], resolver: _Resolver
) -> AuthScheme | None:
    """The scheme most operations use: a declared securityScheme, else a credential header."""
    components: Mapping[str, Any] = document.get("components") or {}
    schemes = resolver.inline(components.get("securitySchemes") or {})
    for name, scheme in (schemes.items() if isinstance(schemes, dict) else ()):
        if not isinstance(scheme, dict):
            continue
        kind = scheme.get("type")
        origin = f"components.securitySchemes.{name}"
        if kind == "apiKey" and scheme.get("in") in ("header", "query", "cookie"):
            return AuthScheme(str(scheme["in"]), str(scheme.get("name", "")), "", origin)
        if kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
            return AuthScheme("header", "Authorization", "Bearer ", origin)
        if kind in ("oauth2", "openIdConnect"):
            return AuthScheme("header", "Authorization", "Bearer ", origin)
    counts: dict[str, int] = {}
    for op in operations:
        for p in op.params("header"):
            if p.name.lower() in CREDENTIAL_HEADERS:
                counts[p.name] = counts.get(p.name, 0) + 1
    if not counts:
        return None
    name = max(counts, key=lambda n: counts[n])
    prefix = "Bearer " if name.lower() == "authorization" else ""
    return AuthScheme("header", name, prefix, f"header parameter '{name}' on {counts[name]} operations")


def dump_json(spec: ApiSpec) -> str:
    """The document as JSON text (a generated pack keeps its own copy)."""
    return json.dumps(spec.document, indent=1, ensure_ascii=False, default=str) + "\n"
