"""Resources found in an OpenAPI document: which operation creates, reads, lists, updates and
deletes each one, and which operation signs a new customer up.

Read from the paths alone, the way REST APIs are usually laid out: a *collection* path ends in a
literal segment (``/patients``), its *item* path adds one parameter (``/patients/{patient_id}``).
A POST on a collection creates; a GET on the item reads; a GET on the collection lists; a
DELETE on the item deletes, and so does a POST on an item sub-path named like a deletion
(``/bookings/{id}/cancel``: a *soft* delete, whose read-back still answers). Everything else is
an *action* (``POST /patients/import``) that the load runs but the integrity checks leave alone.

What the operation ledger and the read-back / deleted checks need (``harness.integrity``) is
here: the resource's kind, its create and read operations, the id field of the created
representation, the fields a create writes that a read returns unchanged. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.openapi.spec import ApiSpec, SpecOperation

__all__ = [
    "CREDENTIAL_FIELDS",
    "DELETE_VERBS",
    "ApiResource",
    "discover_resources",
    "find_signup",
    "id_value_names",
    "operation_resource",
    "singular",
]

# Sub-paths of an item that end it, in the words services use for it.
DELETE_VERBS = ("cancel", "delete", "remove", "archive", "close", "deactivate", "revoke", "void")
# Fields of a sign-up response that carry the new customer's credential, most specific first.
CREDENTIAL_FIELDS = ("api_key", "apikey", "apiKey", "access_token", "accessToken", "token", "key", "secret")
ID_FIELDS = ("id", "uuid", "pk", "key")


@dataclass(frozen=True)
class ApiResource:
    """One kind of thing the service stores, and the operations on it."""

    kind: str  # "patient": the collection's last segment, made singular
    collection: str  # "/patients"
    create: SpecOperation | None
    read: SpecOperation | None
    listing: SpecOperation | None
    update: SpecOperation | None
    delete: SpecOperation | None
    id_field: str  # the created representation's identifier field ("id")
    id_param: str  # the item path's parameter ("patient_id"), "" without an item path
    stable_fields: tuple[str, ...]  # what a create writes and a read returns unchanged

    @property
    def soft_delete(self) -> bool:
        """Deleted by an action (``POST .../cancel``): the read-back still answers afterwards."""
        return self.delete is not None and self.delete.method != "DELETE"

    @property
    def top_level(self) -> bool:
        """A collection right under the root (``/patients``), not nested in another resource."""
        return "{" not in self.collection


def singular(word: str) -> str:
    """"patients" -> "patient", "categories" -> "category", "boxes" -> "box" (English plurals)."""
    w = word.strip("/").replace("-", "_")
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "xes", "ches", "shes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        return w[:-1]
    return w


def id_value_names(kind: str, id_param: str = "") -> tuple[str, ...]:
    """The field and parameter names that refer to a resource of this kind by its id."""
    names = [f"{kind}_id", f"{kind}Id", f"{kind}id"]
    if id_param:
        names.insert(0, id_param)
    return tuple(dict.fromkeys(names))


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def operation_resource(op: SpecOperation, routes: frozenset[tuple[str, str]]) -> str:
    """The collection an operation is about: ``/patients`` for ``GET /patients/{id}``,
    ``/bookings`` for ``POST /bookings/{id}/cancel``, ``/patients`` for ``POST /patients/import``.

    ``routes`` is every (method, path) of the document: whether ``/x/{id}/y`` is a nested
    collection or an action on ``/x/{id}`` depends on what else is there."""
    paths = {path for _, path in routes}
    segments = _segments(op.path)
    if not segments:
        return "/"
    if _is_param(segments[-1]):
        return "/" + "/".join(segments[:-1]) if len(segments) > 1 else "/"
    if len(segments) == 1 or any(p.startswith(op.path + "/{") for p in paths):
        return op.path
    if _is_param(segments[-2]):
        is_action = segments[-1].lower().replace("-", "_") in DELETE_VERBS or (
            op.method == "POST" and ("GET", op.path) not in routes
        )
        return ("/" + "/".join(segments[:-2]) or "/") if is_action else op.path
    parent = "/" + "/".join(segments[:-1])
    return parent if parent in paths else op.path


def _schema_props(schema: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not isinstance(schema, Mapping):
        return {}
    props = schema.get("properties")
    if isinstance(props, Mapping):
        return props
    for branch in (*(schema.get("allOf") or ()), *(schema.get("anyOf") or ()), *(schema.get("oneOf") or ())):
        found = _schema_props(branch)
        if found:
            return found
    return {}


def _scalar(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    kind = schema.get("type")
    if isinstance(kind, list):
        return all(k in ("string", "integer", "number", "boolean", "null") for k in kind)
    if kind in ("string", "integer", "number", "boolean"):
        return True
    branches = schema.get("anyOf") or schema.get("oneOf") or []
    return bool(branches) and all(_scalar(b) for b in branches)


def _stable_fields(create: SpecOperation | None, read: SpecOperation | None) -> tuple[str, ...]:
    """Required scalar fields of the create body that the read representation also has."""
    if create is None or read is None or create.body_schema is None:
        return ()
    body = _schema_props(create.body_schema)
    shown = _schema_props(read.success_schema)
    required = [str(r) for r in create.body_schema.get("required") or ()]
    fields = [f for f in required if f in shown and _scalar(body.get(f))]
    return tuple(fields)


def _id_field(op: SpecOperation | None) -> str:
    props = _schema_props(op.success_schema) if op is not None else {}
    return next((f for f in ID_FIELDS if f in props), "id")


def discover_resources(spec: ApiSpec) -> tuple[ApiResource, ...]:
    """Every collection with the operations on it, in the document's order."""
    routes = frozenset((op.method, op.path) for op in spec.operations)
    collections: dict[str, list[SpecOperation]] = {}
    for op in spec.operations:
        collections.setdefault(operation_resource(op, routes), []).append(op)
    found = []
    for collection, ops in collections.items():
        if collection == "/":
            continue
        item_ops = [o for o in ops if _is_item(o.path, collection)]
        create = next((o for o in ops if o.method == "POST" and o.path == collection), None)
        read = next((o for o in item_ops if o.method == "GET"), None)
        listing = next((o for o in ops if o.method == "GET" and o.path == collection), None)
        update = next((o for o in item_ops if o.method in ("PUT", "PATCH")), None)
        delete = next((o for o in item_ops if o.method == "DELETE"), None) or next(
            (o for o in ops if o.method == "POST" and _is_item_action(o.path, collection)), None
        )
        id_param = _item_param(read or update or delete, collection)
        found.append(
            ApiResource(
                kind=singular(_segments(collection)[-1]) if _segments(collection) else "root",
                collection=collection,
                create=create,
                read=read,
                listing=listing,
                update=update,
                delete=delete,
                id_field=_id_field(create or read),
                id_param=id_param,
                stable_fields=_stable_fields(create, read),
            )
        )
    return tuple(found)


def _is_item(path: str, collection: str) -> bool:
    rest = _segments(path[len(collection):]) if path.startswith(collection + "/") else []
    return len(rest) == 1 and _is_param(rest[0])


def _is_item_action(path: str, collection: str) -> bool:
    rest = _segments(path[len(collection):]) if path.startswith(collection + "/") else []
    return len(rest) == 2 and _is_param(rest[0]) and rest[1].lower().replace("-", "_") in DELETE_VERBS


def _item_param(op: SpecOperation | None, collection: str) -> str:
    if op is None:
        return ""
    rest = _segments(op.path[len(collection):])
    return rest[0][1:-1] if rest and _is_param(rest[0]) else ""


def find_signup(spec: ApiSpec) -> tuple[SpecOperation | None, str]:
    """The operation that creates a customer and hands out its credential, and that field.

    An unsecured POST whose success response has a credential-like field (``api_key``,
    ``access_token``, ...). Without an auth scheme there is nothing to hand out: (None, "").
    """
    if spec.auth is None:
        return None, ""
    for op in spec.operations:
        if op.method != "POST" or op.secured:
            continue
        props = _schema_props(op.success_schema)
        for name in CREDENTIAL_FIELDS:
            if name in props:
                return op, name
    return None, ""


def top_level_creates(resources: Sequence[ApiResource], signup: SpecOperation | None) -> tuple[SpecOperation, ...]:
    """The creates of collections under the root, in document order, the sign-up left out."""
    return tuple(
        r.create for r in resources
        if r.create is not None and r.top_level and (signup is None or r.create.label != signup.label)
    )  # fmt: skip
