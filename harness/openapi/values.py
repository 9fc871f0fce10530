"""Filling an operation's parameters and body: from what the customer already has, else from
the schema.

A request the load sends should be one the service accepts, and about the customer's own data:
a GET after a POST reads what was written. So a value comes, in this order, from

1. the customer's **known values** (:class:`KnownValues`): every field of every answer it had,
   by name (``start`` from a free-slots answer), and the id of every resource it created under
   the names that refer to it (``patient_id`` and the item path's parameter), newest first,
   the way RESTler infers producer-consumer dependencies from names;
2. the schema's own ``example``, ``default``, ``const`` or first ``enum`` value;
3. its ``format`` (date, date-time, email, uuid, uri) or, for a plain string, what its name or
   description says (``date``, ``YYYY-MM-DD``, ``email``);
4. for a ``pattern``, a string Hypothesis draws from the regular expression; else a plain
   value of the type: text carries the customer's
   marker when there is room, so the isolation checks can tell whose data a response holds.

Optional body fields are left out unless a known value fits them: the service's defaults are
the values most likely to be valid. Pure apart from the random number generator passed in.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import string
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.openapi.spec import SpecOperation

__all__ = [
    "KnownValues", "PreparedRequest", "fill_request", "fill_value", "is_free_text", "is_text_filter",
    "json_schema", "learn_response", "mark_taken",
]

KEEP_PER_NAME = 40  # known values remembered per field name; newest first
DATE_HORIZON_DAYS = 14  # generated dates fall in the next two weeks, weekdays only
TEXT_WORDS = (
    "amber", "birch", "cedar", "delta", "ember", "fable", "grove", "harbor", "iris", "juniper",
    "kestrel", "linden", "maple", "nova", "orchid", "pine", "quartz", "river", "sage", "tulip",
)  # fmt: skip
# Fields whose value is the writer's own text: a create makes it up (with the marker) rather
# than copying one seen in an answer (a clinic's name is no patient's name).
FREE_TEXT_NAMES = frozenset({
    "name", "title", "description", "note", "notes", "comment", "comments", "label", "text",
    "body", "content", "summary", "message", "marker", "email", "phone", "address", "first_name",
    "last_name", "firstname", "lastname", "username", "display_name", "slug", "tag", "tags",
})  # fmt: skip
_DATE_HINT = re.compile(r"yyyy-mm-dd(?!t)|\bdate\b|(^|_)(date|day)$", re.IGNORECASE)
_DATETIME_HINT = re.compile(r"yyyy-mm-ddthh|date-?time|(^|_)(at|time|timestamp)$", re.IGNORECASE)


@dataclass
class KnownValues:
    """What one customer has seen, by field name, newest first; JSON-serialisable as a dict."""

    by_name: dict[str, list[Any]] = field(default_factory=dict)
    used: dict[str, list[Any]] = field(default_factory=dict)  # values a create already took

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> KnownValues:
        record = record or {}
        return cls({k: list(v) for k, v in (record.get("by_name") or {}).items()},
                   {k: list(v) for k, v in (record.get("used") or {}).items()})  # fmt: skip

    def to_record(self) -> dict[str, Any]:
        return {"by_name": {k: list(v) for k, v in self.by_name.items()},
                "used": {k: list(v) for k, v in self.used.items()}}  # fmt: skip

    def add(self, name: str, value: Any) -> None:
        if value is None or isinstance(value, (dict, list)):
            return
        values = self.by_name.setdefault(name, [])
        if value in values:
            values.remove(value)
        values.insert(0, value)
        del values[KEEP_PER_NAME:]

    def has(self, name: str) -> bool:
        return bool(self.by_name.get(name))

    def pick(self, name: str, rng: random.Random, *, fresh: bool = False) -> Any:
        """The newest value half the time (a read after a write), else any; ``fresh``: one no
        create has taken yet, when there is one (a slot start, a unique name)."""
        values = self.by_name.get(name) or []
        if fresh:
            taken = self.used.get(name) or []
            untaken = [v for v in values if v not in taken]
            values = untaken or values
        if not values:
            return None
        return values[0] if rng.random() < 0.5 else rng.choice(values)

    def take(self, name: str, value: Any) -> None:
        taken = self.used.setdefault(name, [])
        if value not in taken:
            taken.insert(0, value)
            del taken[KEEP_PER_NAME * 2:]


@dataclass(frozen=True)
class PreparedRequest:
    """One request, filled in: what a Locust task, a test or provisioning sends."""

    label: str  # "GET /patients/{patient_id}": the endpoint's name in every report
    method: str
    path: str  # with path parameters filled
    params: dict[str, Any]
    headers: dict[str, str]
    json: Any = None
    has_body: bool = False
    path_values: dict[str, Any] = field(default_factory=dict)  # what filled each path parameter
    grounded: bool = True  # every path parameter came from the customer's own known values


def json_schema(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """An OpenAPI schema as JSON Schema: 3.0's ``nullable`` becomes a null type; OpenAPI-only
    keywords that JSON Schema validators reject or misread are dropped."""
    if not isinstance(schema, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("nullable", "example", "discriminator", "xml", "externalDocs", "readOnly", "writeOnly"):
            continue
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {k: json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, Mapping):
            out[key] = json_schema(value)
        elif key in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
            out[key] = [json_schema(v) for v in value]
        else:
            out[key] = value
    if schema.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _non_null(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The first branch of an anyOf/oneOf that is not null; allOf branches merged."""
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            for b in branches:
                if isinstance(b, Mapping) and b.get("type") != "null":
                    merged = {k: v for k, v in schema.items() if k != key}
                    return _non_null({**merged, **b})
    if isinstance(schema.get("allOf"), list):
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for b in schema["allOf"]:
            if isinstance(b, Mapping):
                merged = {**merged, **_non_null(b)}
        return merged
    kind = schema.get("type")
    if isinstance(kind, list):
        types = [t for t in kind if t != "null"]
        return {**schema, "type": types[0] if types else "null"}
    return schema


def fill_value(
    name: str, schema: Mapping[str, Any] | None, known: KnownValues, rng: random.Random, *,
    marker: str = "", creating: bool = False, in_query: bool = False,
) -> Any:  # fmt: skip
    """A value for one field or parameter (see the module's docstring for the order)."""
    raw = schema if isinstance(schema, Mapping) else {}
    if known.has(name) and not (creating and is_free_text(name)):
        return known.pick(name, rng, fresh=creating and not _refers_by_id(name))
    s = _non_null(raw)
    for key in ("const", "example", "default"):
        if key in s and s[key] is not None:
            return s[key]
    examples = s.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    if isinstance(s.get("enum"), list) and s["enum"]:
        return rng.choice([v for v in s["enum"] if v is not None] or [None])
    kind = s.get("type") or ("object" if "properties" in s else "string")
    if kind == "object":
        return _fill_object(s, known, rng, marker=marker, creating=creating)
    if kind == "array":
        item = s.get("items") if isinstance(s.get("items"), Mapping) else {}
        count = max(1, int(s.get("minItems") or 1))
        return [fill_value(name, item, known, rng, marker=marker, creating=creating) for _ in range(count)]
    if kind == "boolean":
        return rng.random() < 0.5
    if kind in ("integer", "number"):
        return _number(s, rng, integer=kind == "integer")
    return _string(name, s, rng, marker="" if in_query else marker, in_query=in_query)


def is_free_text(name: str) -> bool:
    return name.lower() in FREE_TEXT_NAMES


def is_text_filter(name: str, schema: Mapping[str, Any] | None, min_length: int) -> bool:
    """Whether a query parameter takes any text (a search, a name filter), so a value of
    ``min_length`` characters may be sent: a plain string, no enum, format or pattern, no date
    or time by its name, not an id."""
    s = _non_null(schema if isinstance(schema, Mapping) else {})
    if (s.get("type") or "string") != "string" or any(k in s for k in ("enum", "const", "format", "pattern")):
        return False
    hints = f"{name} {s.get('description') or ''} {s.get('title') or ''}"
    if _DATE_HINT.search(hints) or _DATETIME_HINT.search(hints) or _refers_by_id(name):
        return False
    return int(s.get("maxLength") or min_length) >= min_length >= int(s.get("minLength") or 0)


def _refers_by_id(name: str) -> bool:
    return name.lower().endswith(("id", "_id", "ids")) or name.lower() in ("key", "uuid", "pk")


def _fill_object(
    s: Mapping[str, Any], known: KnownValues, rng: random.Random, *, marker: str, creating: bool
) -> dict[str, Any]:
    raw_props = s.get("properties")
    props: Mapping[str, Any] = raw_props if isinstance(raw_props, Mapping) else {}
    required = {str(r) for r in s.get("required") or ()}
    out: dict[str, Any] = {}
    for prop, sub in props.items():
        sub = sub if isinstance(sub, Mapping) else {}
        if sub.get("readOnly"):
            continue
        carries_marker = "marker" in prop.lower() and bool(marker)
        if prop in required or (known.has(prop) and not is_free_text(prop)) or carries_marker:
            out[prop] = marker if carries_marker and not known.has(prop) else fill_value(
                prop, sub, known, rng, marker=marker, creating=creating
            )
    return out


def _number(s: Mapping[str, Any], rng: random.Random, *, integer: bool) -> int | float:
    low = s.get("minimum", s.get("exclusiveMinimum"))
    high = s.get("maximum", s.get("exclusiveMaximum"))
    lo = float(low) if isinstance(low, (int, float)) and not isinstance(low, bool) else 1.0
    hi = float(high) if isinstance(high, (int, float)) and not isinstance(high, bool) else lo + 9
    lo, hi = lo + (1 if "exclusiveMinimum" in s and integer else 0), min(hi, lo + 9)
    if integer:
        return int(rng.randint(int(lo), max(int(lo), int(hi))))
    return round(rng.uniform(lo, max(lo, hi)), 2)


def _next_weekday(rng: random.Random) -> dt.date:
    today = dt.date.today()
    for _ in range(50):
        day = today + dt.timedelta(days=rng.randint(1, DATE_HORIZON_DAYS))
        if day.weekday() < 5:
            return day
    return today + dt.timedelta(days=1)


def _string(name: str, s: Mapping[str, Any], rng: random.Random, *, marker: str, in_query: bool) -> str:
    fmt = str(s.get("format") or "")
    hints = f"{name} {s.get('description') or ''} {s.get('title') or ''}"
    max_len = int(s.get("maxLength") or 200)
    min_len = int(s.get("minLength") or 0)
    if fmt == "date" or (not fmt and _DATE_HINT.search(hints) and not _DATETIME_HINT.search(hints)):
        return _next_weekday(rng).isoformat()
    if fmt == "date-time" or (not fmt and _DATETIME_HINT.search(hints)):
        moment = dt.datetime.combine(_next_weekday(rng), dt.time(10, 0), tzinfo=dt.UTC)
        return moment.isoformat()[:max_len] if fmt != "date-time" else moment.isoformat()
    if fmt == "email" or "email" in name.lower():
        return f"{marker or 'user'}.{uuid.uuid4().hex[:8]}@example.test"[:max_len]
    if fmt == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128)))
    if fmt in ("uri", "url") or name.lower() in ("url", "uri", "website"):
        return f"https://example.test/{uuid.uuid4().hex[:8]}"
    if "pattern" in s:
        return str(_draw(s, rng))
    if in_query:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(max(min_len, min(2, max_len))))
    words = " ".join(rng.choice(TEXT_WORDS).capitalize() for _ in range(2))
    text = f"{marker} {words}" if marker and len(marker) + len(words) + 1 <= max_len else words
    if len(text) > max_len:
        text = "".join(rng.choice(string.ascii_lowercase) for _ in range(max(min_len, min(max_len, 8))))
    return text.ljust(min_len, "x")


def _draw(schema: Mapping[str, Any], rng: random.Random) -> Any:
    """A string matching the schema's ``pattern``, drawn by Hypothesis (``from_regex``)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    drawn: list[Any] = []

    @settings(max_examples=1, database=None, suppress_health_check=list(HealthCheck))
    @given(st.from_regex(str(schema["pattern"]), fullmatch=True))
    def draw(value: Any) -> None:
        drawn.append(value)

    draw()
    return drawn[0] if drawn else ""


def fill_request(
    op: SpecOperation, known: KnownValues, rng: random.Random, *, marker: str = "",
    auth_header: str = "", creating: bool = False, overrides: Mapping[str, Any] | None = None,
) -> PreparedRequest:  # fmt: skip
    """The request for ``op``: path and required query parameters filled, optional query
    parameters half the time, the body from its schema. ``overrides``: ``{"json": {...},
    "params": {...}}`` merged over what was filled."""
    path = op.path
    path_values: dict[str, Any] = {}
    grounded = True
    for p in op.params("path"):
        grounded = grounded and known.has(p.name)
        value = path_values[p.name] = fill_value(p.name, p.schema, known, rng, in_query=True)
        path = path.replace("{" + p.name + "}", str(value))
    params: dict[str, Any] = {}
    for p in op.params("query"):
        if p.required or known.has(p.name) or rng.random() < 0.5:
            params[p.name] = fill_value(p.name, p.schema, known, rng, in_query=True)
    headers = {
        p.name: str(fill_value(p.name, p.schema, known, rng, in_query=True))
        for p in op.params("header") if p.required and p.name.lower() != auth_header.lower()
    }  # fmt: skip
    body: Any = None
    if op.body_schema is not None:
        body = fill_value("body", op.body_schema, known, rng, marker=marker, creating=creating)
    overrides = overrides or {}
    if isinstance(overrides.get("params"), Mapping):
        params.update(overrides["params"])
    if "json" in overrides:
        given_body = overrides["json"]
        body = {**body, **given_body} if isinstance(body, dict) and isinstance(given_body, Mapping) else given_body
    return PreparedRequest(op.label, op.method, path, params, headers, body, op.body_schema is not None,
                           path_values, grounded)  # fmt: skip


def learn_response(
    known: KnownValues, payload: Any, *, id_names: Sequence[str] = (), id_field: str = "id",
    fields: bool = False,
) -> Any:  # fmt: skip
    """Remember what an answer offers: the id of the resource it is (or of each item of a
    list) under ``id_names``; with ``fields``, every scalar field by name too (the answers of
    read-only resources, such as free slots, offer the values other requests take). Returns
    the top-level id (None when absent)."""
    ident = payload.get(id_field) if isinstance(payload, Mapping) else None
    items = payload if isinstance(payload, list) else [payload]
    for item in items[:KEEP_PER_NAME]:
        if isinstance(item, Mapping) and item.get(id_field) is not None:
            for name in id_names:
                known.add(name, item[id_field])
    if fields:
        _walk(known, payload, depth=0)
    return ident


def _walk(known: KnownValues, node: Any, depth: int) -> None:
    if depth > 4:
        return
    if isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(value, (Mapping, list)):
                _walk(known, value, depth + 1)
            elif key != "id":  # a bare "id" means nothing without its resource
                known.add(str(key), value)
    elif isinstance(node, list):
        for item in node[:KEEP_PER_NAME]:
            _walk(known, item, depth + 1)


def mark_taken(known: KnownValues, body: Any) -> None:
    """A create took these values (a slot's start): prefer others for the next create."""
    if isinstance(body, Mapping):
        for key, value in body.items():
            if not isinstance(value, (Mapping, list)) and not _refers_by_id(str(key)):
                known.take(str(key), value)
