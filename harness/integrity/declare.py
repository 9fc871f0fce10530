"""What a pack declares in its ``invariants.py`` for the integrity checks.

A pack names the resource kinds its load writes, how to read one back as its customer, and what
to read when looking for leaks; :func:`load_invariants` collects the declarations from the
module (nothing is registered globally)::

    from harness.integrity.declare import Read, isolation_reads, listing, readback, resource

    def auth_headers(customer):                       # found by name
        return {"X-API-Key": customer["api_key"]}

    booking = resource("booking", stable_fields=("practitioner_id", "patient_id", "start"),
                       unique_key=lambda b: (b["practitioner_id"], b["start"]),
                       is_active=lambda b: b["status"] == "active")

    @readback("booking")                              # one resource, None when absent/refused
    def read_booking(client, customer, ident): ...

    @listing("booking")                               # the customer's resources the ops touched
    def list_bookings(client, customer, operations): ...

    @isolation_reads                                  # what to read as each sampled customer
    def reads(customer): return [Read("/patients", {"q": "a"})]

    feed = public("GET /feed", "/posts/*")            # every customer may read these: not scanned

    @counter("booking", op="create")                  # a count each acknowledged write adds 1 to
    def bookings_made(client, customer): ...          # -> int, read before the load and after

    @concurrent_write("booking", op="create")         # what the overlap probe sends at once
    def book(client, customer, attempt): ...          # for one customer, then the checks run

    @invariant                                        # anything else: ops + Api -> violations
    def reports_add_up(operations, api): ...

Declaring imports no HTTP client: the checks that run the declarations live in
:mod:`harness.integrity.check`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.errors import ConfigError
from harness.integrity.ledger import OPS, content_digest
from harness.pack import import_module_file
from harness.records import IntegrityViolation

__all__ = [
    "Counter",
    "Invariants",
    "Public",
    "Read",
    "Resource",
    "WriteProbe",
    "concurrent_write",
    "counter",
    "invariant",
    "isolation_reads",
    "listing",
    "load_invariants",
    "public",
    "readback",
    "resource",
    "violation",
]

_TAG = "__scaleready_integrity__"


@dataclass(frozen=True)
class Resource:
    """A kind of resource the load writes, and what must stay true of it."""

    kind: str
    stable_fields: tuple[str, ...]  # compared between what was written and what is read
    unique_key: Callable[[Mapping[str, Any]], Hashable | None] | None = None  # on active ones
    is_active: Callable[[Mapping[str, Any]], bool] | None = None  # None: present = active
    id_field: str = "id"
    normalize: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None  # before compare
    public: bool = False  # every customer may read it: not scanned, others' reads not refused

    def stable_digest(self, content: Mapping[str, Any] | None) -> str | None:
        """Digest of the stable fields (after ``normalize``); None when content is unknown."""
        if content is None:
            return None
        if self.normalize is not None:
            content = self.normalize(content)
        return content_digest({f: content.get(f) for f in self.stable_fields})

    def stable_view(self, content: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if content is None:
            return None
        if self.normalize is not None:
            content = self.normalize(content)
        return {f: content.get(f) for f in self.stable_fields}

    def active(self, item: Mapping[str, Any]) -> bool:
        return True if self.is_active is None else bool(self.is_active(item))

    def key(self, item: Mapping[str, Any]) -> Hashable | None:
        """The unique key of an active resource (or of written content); None if none applies."""
        if self.unique_key is None or not self.active(item):
            return None
        return self.unique_key(item)

    def ident(self, item: Mapping[str, Any]) -> str | None:
        value = item.get(self.id_field)
        return None if value is None else str(value)


def resource(
    kind: str,
    *,
    stable_fields: Iterable[str],
    unique_key: Callable[[Mapping[str, Any]], Hashable | None] | None = None,
    is_active: Callable[[Mapping[str, Any]], bool] | None = None,
    id_field: str = "id",
    normalize: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    public: bool = False,
) -> Resource:
    """Declare a resource kind (assign it to a module-level name in the pack's invariants.py).

    ``unique_key`` receives both a read-back resource and the content a create wrote, so it
    should use fields present in both; ``is_active`` defaults to "present means active".
    ``public=True``: every customer may read this kind (a post on a public feed), so its
    read-backs are not scanned for other customers' markers and another customer reading one by
    its identifier is not expected to be refused. Its writes are still checked (set, unique).
    """
    fields_ = tuple(stable_fields)
    if not fields_:
        raise ConfigError(
            f"resource({kind!r}): stable_fields is empty; name the fields a write sets and a "
            "read-back returns unchanged, e.g. stable_fields=('practitioner_id', 'start')"
        )
    return Resource(kind, fields_, unique_key, is_active, id_field, normalize, public)


@dataclass(frozen=True)
class Public:
    """Requests every customer may make and whose answers hold other customers' data by design."""

    patterns: tuple[str, ...]  # "GET /feed", "/posts/*": an optional method, then a path glob

    def match(self, method: str | None, path: str) -> str | None:
        """The first pattern that covers a request (``path`` without its query), or None."""
        for pattern in self.patterns:
            wanted, _, glob = pattern.rpartition(" ")
            if wanted and method and wanted.upper() != method.upper():
                continue
            if fnmatch.fnmatchcase(path, glob):
                return pattern
        return None


def public(*patterns: str) -> Public:
    """Declare requests whose answers are public (assign it to a module-level name).

    ``feed = public("GET /feed", "/posts/*")``: each pattern is a path, optionally after a
    method; ``*`` matches any characters (``/`` too), ``?`` one. Their responses are left out of
    the marker scans, under load and after it, and the report says so. Requests are matched by
    the path they were sent to and by their Locust name (``name="GET /posts/{id}"`` matches
    ``/posts/*``).
    """
    for pattern in patterns:
        method, _, path = pattern.rpartition(" ") if isinstance(pattern, str) else ("", "", "")
        if not path.startswith("/") or (method and not method.isalpha()):
            raise ConfigError(
                f"public({pattern!r}): a pattern is a path, optionally after a method, e.g. "
                "public('/feed', 'GET /posts/*')"
            )
    if not patterns:
        raise ConfigError("public(): name at least one path, e.g. public('/feed', 'GET /posts/*')")
    return Public(tuple(patterns))


def _tag(role: str, key: str | None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        setattr(fn, _TAG, (role, key))
        return fn

    return mark


def readback(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@readback("booking") def read(client, customer, ident) -> dict | None``.

    ``client`` is an ``httpx.Client`` on the target (no credentials: add the customer's);
    return the resource, or None when it is absent or refused (404/403). Raise (e.g.
    ``response.raise_for_status()``) on anything else: that counts as a read error, not a verdict.
    """
    return _tag("readback", kind)


def listing(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@listing("booking") def list_(client, customer, operations) -> list[dict]``.

    The customer's resources of this kind that ``operations`` (the customer's ledger entries of
    this kind) touched, in as few requests as possible. Optional: without it each identifier is
    read back on its own. Resources it misses are read back individually before being called lost.
    """
    return _tag("listing", kind)


def isolation_reads(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``@isolation_reads def reads(customer) -> list[Read | str]``: what to read as that customer."""
    setattr(fn, _TAG, ("isolation_reads", None))
    return fn


@dataclass(frozen=True)
class Counter:
    """A number the service keeps per customer that each acknowledged ``op`` on ``kind`` adds one
    to (bookings made, orders placed, a balance's credits): read as each sampled customer before a
    tier's load and after it, it must have grown by at least the acknowledged writes the ledger
    holds. Less is a lost update (two read-modify-writes that overlapped)."""

    name: str
    kind: str
    op: str
    read: Callable[..., Any]  # (client, customer) -> int | None


def counter(kind: str, op: str = "create") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@counter("booking", op="create") def made(client, customer) -> int | None``.

    Returns the customer's count as the service keeps it (None when it cannot be read). Every
    acknowledged ``op`` of ``kind`` in the ledger must show in it: the count after the tier minus
    the count before must be at least their number. A count above is not judged (an unknown
    write may have happened, and the harness replays server errors once).
    """
    if op not in OPS:
        raise ConfigError(f"@counter({kind!r}, op={op!r}): op must be one of {sorted(OPS)}")
    return _tag("counter", f"{kind}\x00{op}")


@dataclass(frozen=True)
class WriteProbe:
    """A write the overlap probe sends several times at once for one customer (``@concurrent_write``)."""

    name: str
    kind: str
    op: str
    send: Callable[..., Any]  # (client, customer, attempt) -> None; records through attempt.write


def concurrent_write(kind: str, op: str = "create") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@concurrent_write("booking", op="create") def book(client, customer, attempt)``.

    After each tier's load the harness calls it ``concurrency`` times at once for one customer, a
    few rounds (each on another of the busiest customers), then runs the integrity checks: the
    writes that real traffic overlaps only now and then, overlapped on purpose. The function sends
    one write inside ``with attempt.write(content=...) as w:`` and calls ``w.done(status,
    ident=...)``; ``attempt.write`` records the intent in the ledger and waits until every
    attempt of the round is ready, so the requests leave together. ``attempt.round``,
    ``attempt.position`` and ``attempt.of`` say which attempt it is (two positions can take the
    same slot, the others different ones).
    """
    if op not in OPS:
        raise ConfigError(f"@concurrent_write({kind!r}, op={op!r}): op must be one of {sorted(OPS)}")
    return _tag("concurrent_write", f"{kind}\x00{op}")


def invariant(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """``@invariant def check(operations, api) -> Iterable[IntegrityViolation]``: a custom check.

    ``operations`` are all ledger operations; ``api`` (:class:`harness.integrity.session.Api`)
    reads the target as a customer within the checker's budget. Build violations with
    :func:`violation`.
    """

    def mark(f: Callable[..., Any]) -> Callable[..., Any]:
        setattr(f, _TAG, ("invariant", name or f.__name__))
        return f

    return mark(fn) if fn is not None else mark


@dataclass(frozen=True)
class Read:
    """One read to make as a customer for the isolation check."""

    path: str
    params: Mapping[str, Any] | None = None
    method: str = "GET"
    name: str | None = None  # how violations name it; default "GET /path"

    @property
    def label(self) -> str:
        return self.name or f"{self.method} {self.path}"


def violation(
    kind: str,
    customer: int | str,
    identifiers: Iterable[object],
    detail: str,
    first_seen: float | None = None,
    check: str = "",
) -> IntegrityViolation:
    """An :class:`IntegrityViolation` (for custom invariants)."""
    return IntegrityViolation(
        kind=kind,  # type: ignore[arg-type]
        customer=str(customer),
        identifiers=tuple(str(i) for i in identifiers),
        detail=detail,
        first_seen=first_seen,
        check=check,
    )


@dataclass(frozen=True)
class Invariants:
    """A pack's declarations, collected by :func:`load_invariants`."""

    resources: Mapping[str, Resource]
    readbacks: Mapping[str, Callable[..., Any]]
    listings: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    isolation_reads: Callable[..., Any] | None = None
    custom: tuple[tuple[str, Callable[..., Any]], ...] = ()
    counters: tuple[Counter, ...] = ()
    write_probes: tuple[WriteProbe, ...] = ()
    auth_headers: Callable[[Mapping[str, Any]], Mapping[str, str]] | None = None
    source: str = ""
    public: Public = field(default_factory=lambda: Public(()))  # every public(...) declaration

    def headers(self, customer: Mapping[str, Any]) -> dict[str, str]:
        return dict(self.auth_headers(customer)) if self.auth_headers is not None else {}

    def public_pattern(self, method: str | None, path: str | None, name: str = "") -> str | None:
        """The public(...) pattern covering a request, by the path it was sent to or its name."""
        if path:
            found = self.public.match(method, path.split("?", 1)[0])
            if found:
                return found
        named_method, _, named_path = name.partition(" ")
        if not named_path:
            named_method, named_path = "", named_method
        if named_path.startswith("/"):
            return self.public.match(method or named_method or None, named_path.split("?", 1)[0])
        return None


def load_invariants(source: str | Path | ModuleType | Invariants) -> Invariants:
    """Collect a pack's declarations from its invariants module (a path or an imported module).

    Raises ConfigError naming the file, what is wrong and how to fix it.
    """
    if isinstance(source, Invariants):
        return source
    module = source if isinstance(source, ModuleType) else _import_path(Path(source))
    where = getattr(module, "__file__", None) or module.__name__
    resources: dict[str, Resource] = {}
    readbacks: dict[str, Callable[..., Any]] = {}
    listings: dict[str, Callable[..., Any]] = {}
    reads: Callable[..., Any] | None = None
    custom: list[tuple[str, Callable[..., Any]]] = []
    public_patterns: list[str] = []
    counters: list[Counter] = []
    write_probes: list[WriteProbe] = []
    for attr, value in vars(module).items():
        if isinstance(value, Resource):
            resources[value.kind] = value
            continue
        if isinstance(value, Public):
            public_patterns.extend(p for p in value.patterns if p not in public_patterns)
            continue
        tag = getattr(value, _TAG, None) if callable(value) else None
        if not (isinstance(tag, tuple) and len(tag) == 2):
            continue
        role, key = tag
        if role == "readback":
            readbacks[key] = value
        elif role == "listing":
            listings[key] = value
        elif role == "isolation_reads":
            if reads is not None:
                raise ConfigError(
                    f"{where}: two @isolation_reads functions ({attr} and another); keep one"
                )
            reads = value
        elif role == "invariant":
            custom.append((key, value))
        elif role == "counter":
            kind, op = key.split("\x00")
            counters.append(Counter(attr, kind, op, value))
        elif role == "concurrent_write":
            kind, op = key.split("\x00")
            write_probes.append(WriteProbe(attr, kind, op, value))
    for kind in sorted(set(readbacks) | set(listings)):
        if kind not in resources:
            raise ConfigError(
                f"{where}: @readback/@listing for {kind!r} but no resource({kind!r}, stable_fields=...) "
                f"declaration; declared kinds: {sorted(resources) or 'none'}"
            )
    for kind in sorted(resources):
        if kind not in readbacks:
            raise ConfigError(
                f"{where}: resource {kind!r} has no @readback({kind!r}) function; add one "
                "(def read(client, customer, ident) -> dict | None)"
            )
    auth = getattr(module, "auth_headers", None)
    return Invariants(
        resources=resources,
        readbacks=readbacks,
        listings=listings,
        isolation_reads=reads,
        custom=tuple(sorted(custom, key=lambda c: c[0])),
        counters=tuple(sorted(counters, key=lambda c: c.name)),
        write_probes=tuple(sorted(write_probes, key=lambda w: w.name)),
        auth_headers=auth if callable(auth) else None,
        source=str(where),
        public=Public(tuple(public_patterns)),
    )


def _import_path(path: Path) -> ModuleType:
    if not path.is_file():
        raise ConfigError(
            f"invariants file {path}: no such file; create it or fix suite.invariants"
        )
    return import_module_file(path, f"scaleready_invariants_{path.parent.name}_{path.stem}", path.parent)
