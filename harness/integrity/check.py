"""Integrity under load: nothing acknowledged is lost or duplicated, no customer sees another's data.

Growth breaks data before latency: races that never happen with one user (double bookings,
lost updates) and caches or queries that mix customers' data. After each tier, at low load,
:func:`check_tier` compares what the load did (the operation ledger, :mod:`harness.integrity.ledger`)
with what the target now says, Jepsen-style, and reads as customers to look for leaks:

========================  ===============================================  ==================
check                     what must hold                                   violation kinds
========================  ===============================================  ==================
``set``                   every acknowledged write is readable with the     lost-write,
                          same stable content; a write of unknown outcome   half-written
                          is there or not, never half there
``unique``                a unique key (one active booking per slot) is     duplicate
                          held once: from read-backs, and from the ledger
                          (two acknowledged creates, neither deleted first)
``deleted``               an acknowledged delete does not come back         resurrected
``isolation``             reads with one customer's credentials carry no    isolation-leak
                          other customer's marker; another customer's
                          identifiers are refused (403/404)
``isolation-under-load``  markers the load engine found in responses        isolation-leak
========================  ===============================================  ==================

Packs declare what the checks need in their ``invariants.py`` with a few small declarations
(nothing is registered globally: :func:`load_invariants` collects them from the module)::

    from harness.integrity.check import Read, isolation_reads, listing, readback, resource

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

    @invariant                                        # anything else: ops + Api -> violations
    def reports_add_up(operations, api): ...

Every loop is bounded by count (``sample``) and time (``time_budget_s``); a target that cannot
be read gives status ``error`` with a note, never an exception.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from harness.errors import ConfigError
from harness.integrity.ledger import LeakObservation, Operation, content_digest, read_ledger_dir
from harness.integrity.markers import MarkerScanner
from harness.pacing import RequestPacer, request_hooks
from harness.pack import import_module_file
from harness.records import IntegrityResult, IntegrityViolation, ViolationKind

__all__ = [
    "Api",
    "Invariants",
    "Read",
    "Resource",
    "check_tier",
    "evaluate_resource",
    "final_state_duplicates",
    "invariant",
    "isolation_reads",
    "leaks_under_load",
    "ledger_duplicates",
    "listing",
    "load_invariants",
    "readback",
    "resource",
    "violation",
]

_TAG = "__scaleready_integrity__"
MAX_VIOLATIONS = 200  # kept in the result; the note says how many more there were
MAX_GROUP = 50  # creates compared per unique key in the ledger (pairs grow quadratically)
UNREACHABLE_AFTER = 8  # this many transport errors before any success: the target is down
INF = float("inf")

# --- the pack author's API ------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """A kind of resource the load writes, and what must stay true of it."""

    kind: str
    stable_fields: tuple[str, ...]  # compared between what was written and what is read
    unique_key: Callable[[Mapping[str, Any]], Hashable | None] | None = None  # on active ones
    is_active: Callable[[Mapping[str, Any]], bool] | None = None  # None: present = active
    id_field: str = "id"
    normalize: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None  # before compare

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
) -> Resource:
    """Declare a resource kind (assign it to a module-level name in the pack's invariants.py).

    ``unique_key`` receives both a read-back resource and the content a create wrote, so it
    should use fields present in both; ``is_active`` defaults to "present means active".
    """
    fields_ = tuple(stable_fields)
    if not fields_:
        raise ConfigError(
            f"resource({kind!r}): stable_fields is empty; name the fields a write sets and a "
            "read-back returns unchanged, e.g. stable_fields=('practitioner_id', 'start')"
        )
    return Resource(kind, fields_, unique_key, is_active, id_field, normalize)


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


def invariant(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """``@invariant def check(operations, api) -> Iterable[IntegrityViolation]``: a custom check.

    ``operations`` are all ledger operations; ``api`` (:class:`Api`) reads the target as a
    customer within the checker's budget. Build violations with :func:`violation`.
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
    auth_headers: Callable[[Mapping[str, Any]], Mapping[str, str]] | None = None
    source: str = ""

    def headers(self, customer: Mapping[str, Any]) -> dict[str, str]:
        return dict(self.auth_headers(customer)) if self.auth_headers is not None else {}


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
    for attr, value in vars(module).items():
        if isinstance(value, Resource):
            resources[value.kind] = value
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
        auth_headers=auth if callable(auth) else None,
        source=str(where),
    )


def _import_path(path: Path) -> ModuleType:
    if not path.is_file():
        raise ConfigError(
            f"invariants file {path}: no such file; create it or fix suite.invariants"
        )
    return import_module_file(path, f"scaleready_invariants_{path.parent.name}_{path.stem}", path.parent)


# --- pure checkers (no I/O) -------------------------------------------------------------------


def _writes(ops: Sequence[Operation]) -> list[Operation]:
    return [o for o in ops if o.op in ("create", "update") and o.outcome in ("ok", "unknown")]


def _end(op: Operation) -> float:
    # An unknown write may still be applied at any later time.
    return INF if op.outcome == "unknown" else op.ended


def evaluate_resource(
    res: Resource, ops: Sequence[Operation], observed: Mapping[str, Any] | None
) -> IntegrityViolation | None:
    """The set and deleted checks for one identifier: its ledger history against its read-back.

    ``ops`` are the operations on this one identifier; ``observed`` what the target returned
    (None: absent or refused). Returns the violation, or None when the state is explainable.
    """
    if not ops:
        return None
    ident = ops[0].ident or "?"
    customer = ops[0].customer

    def violation(kind: ViolationKind, detail: str, first_seen: float, check: str) -> IntegrityViolation:
        return IntegrityViolation(kind=kind, customer=str(customer), identifiers=(ident,), detail=detail,
                                  first_seen=first_seen, check=check)  # fmt: skip

    writes = _writes(ops)
    deletes = [o for o in ops if o.op == "delete" and o.outcome in ("ok", "unknown")]
    ok_deletes = [o for o in deletes if o.outcome == "ok"]
    # Definitely deleted: an acknowledged delete after which nothing could have rewritten it.
    for d in ok_deletes:
        if all(w.op == "create" or (w.outcome == "ok" and w.ended < d.started) for w in writes):
            if observed is not None and res.active(observed):
                return violation(
                    "resurrected",
                    detail=(
                        f"{res.kind} {ident}: deleted with an acknowledged {d.op} "
                        f"(HTTP {d.status}) at {_iso(d.ended)}, but the read-back shows it active again"
                    ),
                    first_seen=d.ended,
                    check="deleted",
                )
            return None
    if deletes or not writes:
        return None  # a delete of unknown outcome: present or absent are both explainable
    # Possible final values: writes not followed by an acknowledged write started after them.
    finals = [
        w for w in writes if not any(o.outcome == "ok" and o.started > _end(w) for o in writes)
    ]
    acknowledged = [w for w in writes if w.outcome == "ok"]
    if observed is None:
        if not acknowledged:
            return None  # only unknown writes: absent is fine
        first = acknowledged[0]
        return violation(
            "lost-write",
            detail=(
                f"{res.kind} {ident}: the {first.op} was acknowledged (HTTP {first.status}) at "
                f"{_iso(first.ended)} but the read-back does not find it"
            ),
            first_seen=first.ended,
            check="set",
        )
    wanted = {res.stable_digest(w.content) for w in finals if w.content is not None}
    if not wanted:
        return None  # contents were too large to keep: presence is all we can check
    got = res.stable_digest(observed)
    if got in wanted:
        return None
    expected = next(w for w in finals if w.content is not None)
    uncertain = any(w.outcome == "unknown" for w in finals)
    return violation(
        "half-written" if uncertain else "lost-write",
        detail=(
            f"{res.kind} {ident}: reads back as {_short(res.stable_view(observed))}, "
            f"but {'the writes of unknown outcome' if uncertain else 'the acknowledged write'} "
            f"set {_short(res.stable_view(expected.content))}"
        ),
        first_seen=expected.ended,
        check="set",
    )


def ledger_duplicates(
    operations: Sequence[Operation], resources: Mapping[str, Resource]
) -> list[IntegrityViolation]:
    """The unique check from the ledger alone.

    Two acknowledged creates with the same unique key and different identifiers, neither
    deleted (or with a delete of unknown outcome) before the other completed; and one identifier
    handed out by two acknowledged creates of different customers or different content.
    """
    found: list[IntegrityViolation] = []
    by_ident: dict[tuple[str, str], list[Operation]] = defaultdict(list)
    deletes: dict[tuple[str, str], list[Operation]] = defaultdict(list)
    groups: dict[tuple[str, Hashable], list[Operation]] = defaultdict(list)
    for o in operations:
        if o.ident is not None:
            if o.op == "delete" and o.outcome in ("ok", "unknown"):
                deletes[(o.kind, o.ident)].append(o)
            elif o.op == "create" and o.outcome == "ok":
                by_ident[(o.kind, o.ident)].append(o)
        res = resources.get(o.kind)
        if (
            res is None
            or o.op != "create"
            or o.outcome != "ok"
            or o.ident is None
            or o.content is None
        ):
            continue
        try:
            key = res.key(o.content)
        except (KeyError, TypeError, ValueError):
            continue
        if key is not None:
            groups[(o.kind, key)].append(o)
    for (kind, ident), creates in by_ident.items():
        if len({c.customer for c in creates}) > 1 or len({c.digest for c in creates}) > 1:
            found.append(
                IntegrityViolation(
                    kind="duplicate",
                    customer=",".join(str(c) for c in sorted({c.customer for c in creates})),
                    identifiers=(ident,),
                    detail=f"{kind} id {ident} was handed out by {len(creates)} acknowledged creates with different content or customers",
                    first_seen=creates[1].ended if len(creates) > 1 else None,
                    check="unique",
                )
            )
    for (kind, key), creates in groups.items():
        creates = sorted(creates, key=lambda c: c.started)[:MAX_GROUP]
        clash: set[str] = set()
        when: float | None = None
        for i, a in enumerate(creates):
            for b in creates[i + 1 :]:
                if a.ident == b.ident:
                    continue
                # either delete invoked before the other create completed explains the pair
                if any(d.started < b.ended for d in deletes.get((kind, a.ident or ""), ())):
                    continue
                if any(d.started < a.ended for d in deletes.get((kind, b.ident or ""), ())):
                    continue
                clash.update((a.ident or "?", b.ident or "?"))
                later = max(a.ended, b.ended)
                when = later if when is None else min(when, later)
        if clash:
            members = [c for c in creates if c.ident in clash]
            found.append(
                IntegrityViolation(
                    kind="duplicate",
                    customer=",".join(str(c) for c in sorted({c.customer for c in members})),
                    identifiers=tuple(sorted(clash, key=_natural)),
                    detail=(
                        f"{kind} {_short(key)}: {len(clash)} acknowledged creates for one unique key, "
                        "none deleted before the other was created (the ledger)"
                    ),
                    first_seen=when,
                    check="unique",
                )
            )
    return found


def final_state_duplicates(
    res: Resource,
    observed: Iterable[tuple[int, Mapping[str, Any]]],
    operations: Sequence[Operation] = (),
) -> list[IntegrityViolation]:
    """The unique check on read-backs: active resources sharing a unique key.

    ``observed`` is (customer index, resource) pairs; the same resource may appear more than
    once (listed and read back). ``operations`` date the violation (the later create's ack).
    """
    acked = {
        o.ident: o
        for o in operations
        if o.kind == res.kind and o.op == "create" and o.outcome == "ok"
    }
    holders: dict[Hashable, dict[str, int]] = defaultdict(dict)
    for customer, item in observed:
        ident = res.ident(item)
        if ident is None:
            continue
        try:
            key = res.key(item)
        except (KeyError, TypeError, ValueError):
            continue
        if key is not None:
            holders[key][ident] = customer
    found = []
    for key, ids in holders.items():
        if len(ids) < 2:
            continue
        idents = tuple(sorted(ids, key=_natural))
        times = sorted(acked[i].ended for i in idents if i in acked)
        found.append(
            IntegrityViolation(
                kind="duplicate",
                customer=",".join(str(c) for c in sorted(set(ids.values()))),
                identifiers=idents,
                detail=f"{res.kind} {_short(key)}: {len(ids)} active resources hold one unique key: ids {', '.join(idents)}",
                first_seen=times[1] if len(times) > 1 else (times[0] if times else None),
                check="unique",
            )
        )
    return found


def leaks_under_load(
    leaks: Sequence[LeakObservation], scanner: MarkerScanner | None = None
) -> list[IntegrityViolation]:
    """Foreign markers the load engine saw, one violation per (customer, request)."""
    grouped: dict[tuple[int, str], list[LeakObservation]] = defaultdict(list)
    for leak in leaks:
        grouped[(leak.customer, leak.request)].append(leak)
    found = []
    for (customer, request), items in sorted(grouped.items(), key=lambda kv: kv[1][0].at):
        foreign = sorted({i for leak in items for i in leak.foreign})
        names = [scanner.marker(i) if scanner else f"customer {i}" for i in foreign[:10]]
        found.append(
            IntegrityViolation(
                kind="isolation-leak",
                customer=str(customer),
                identifiers=tuple(names),
                detail=(
                    f"{request} returned data of {len(foreign)} other customer(s) "
                    f"({', '.join(str(i) for i in foreign[:10])}{' ...' if len(foreign) > 10 else ''}) "
                    f"to customer {customer}, {len(items)} time(s) during the load"
                ),
                first_seen=items[0].at,
                check="isolation-under-load",
            )
        )
    return found


# --- reading the target -----------------------------------------------------------------------


class _Stop(Exception):
    """The checker's time or request budget ran out (raised from inside pack functions)."""


class _Session:
    """The shared client with the checker's bounds: a deadline, a request cap, error counts."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float,
        concurrency: int,
        deadline: float,
        max_requests: int,
        transport: httpx.BaseTransport | None = None,
        pacer: RequestPacer | None = None,
    ) -> None:
        self.deadline = deadline
        self.max_requests = max_requests
        self.requests = 0
        self.successes = 0
        self.errors = 0
        self.transport_errors = 0
        self.pack_errors = 0
        self.first_error: str | None = None
        self.first_pack_error: str | None = None
        self.stopped: str | None = None
        self._lock = threading.Lock()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.client = httpx.Client(
            base_url=base_url,
            timeout=timeout_s,
            limits=limits,
            event_hooks={"request": [self._on_request, *request_hooks(pacer).get("request", [])]},
            transport=transport,
        )

    def _on_request(self, request: httpx.Request) -> None:
        with self._lock:
            if self.stopped is None and time.monotonic() > self.deadline:
                self.stopped = "the time budget ran out"
            if self.stopped is None and self.requests >= self.max_requests:
                self.stopped = f"the request cap ({self.max_requests}) was reached"
            if self.stopped is not None:
                raise _Stop(self.stopped)
            self.requests += 1

    def call(
        self, what: str, fn: Callable[..., Any], *args: Any, network: bool = True
    ) -> tuple[bool, Any]:
        """Run a pack function; (True, result) or (False, None) after counting the error.

        ``network=False`` for functions that only build data (they do not prove the target is up).
        """
        if self.stopped is not None:
            return False, None
        try:
            result = fn(*args)
        except _Stop:
            return False, None
        except httpx.TransportError as exc:
            with self._lock:
                self.errors += 1
                self.transport_errors += 1
                self.first_error = self.first_error or f"{what}: {type(exc).__name__}: {exc}"
                if self.successes == 0 and self.transport_errors >= UNREACHABLE_AFTER:
                    self.stopped = f"the target is unreachable ({self.first_error})"
            return False, None
        except httpx.HTTPError as exc:
            with self._lock:
                self.errors += 1
                self.first_error = self.first_error or f"{what}: {exc}"[:300]
            return False, None
        except Exception as exc:  # noqa: BLE001 - a broken pack function is reported, not raised
            with self._lock:
                self.pack_errors += 1
                self.first_pack_error = (
                    self.first_pack_error or f"{what}: {type(exc).__name__}: {exc}"[:300]
                )
            return False, None
        if network:
            with self._lock:
                self.successes += 1
        return True, result

    def close(self) -> None:
        self.client.close()


class Api:
    """What a custom :func:`invariant` reads the target with: as a customer, within the budget."""

    def __init__(
        self, session: _Session, customers: Mapping[int, Mapping[str, Any]], invariants: Invariants
    ) -> None:
        self._session = session
        self.customers = customers
        self._invariants = invariants

    @property
    def client(self) -> httpx.Client:
        return self._session.client

    def headers(self, customer: Mapping[str, Any]) -> dict[str, str]:
        return self._invariants.headers(customer)

    def request(
        self, customer: Mapping[str, Any], method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        headers = {**self.headers(customer), **kwargs.pop("headers", {})}
        return self._session.client.request(method, path, headers=headers, **kwargs)

    def get(self, customer: Mapping[str, Any], path: str, **kwargs: Any) -> httpx.Response:
        return self.request(customer, "GET", path, **kwargs)


@dataclass
class _Findings:
    violations: list[IntegrityViolation] = field(default_factory=list)
    checks: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    notes: list[str] = field(default_factory=list)

    def add(self, items: Iterable[IntegrityViolation]) -> None:
        self.violations.extend(items)


def check_tier(
    invariants: str | Path | ModuleType | Invariants,
    *,
    base_url: str,
    customers: Sequence[Mapping[str, Any]],
    ledger_dir: Path,
    sample: int,
    request_timeout_s: float,
    concurrency: int = 16,
    time_budget_s: float = 60.0,
    seed: int = 0,
    transport: httpx.BaseTransport | None = None,
    pacer: RequestPacer | None = None,
) -> IntegrityResult:
    """Check the target's data after a tier against the ledger, and read as customers for leaks.

    ``sample`` bounds the reads of each family (read-backs; isolation reads); ``time_budget_s``
    bounds the whole check. Never raises for the target's or the pack's errors. ``transport``
    replaces the network (tests pass an ``httpx.MockTransport``); ``pacer`` holds its requests
    to the pack's max_rps.
    """
    started = time.monotonic()
    findings = _Findings()
    try:
        inv = load_invariants(invariants)
    except ConfigError as exc:
        return IntegrityResult(status="error", checked=0, note=str(exc), duration_s=_since(started))
    if not customers:
        return IntegrityResult(status="skipped", checked=0, note="no customers were provisioned")
    by_index = {int(c["index"]): c for c in customers}
    contents = read_ledger_dir(ledger_dir)
    ops = [o for o in contents.operations if o.kind in inv.resources]
    if contents.bad_lines:
        findings.notes.append(f"{contents.bad_lines} unreadable ledger line(s) skipped")
    if contents.truncated:
        findings.notes.append(
            "the ledger was truncated at its line limit: later operations were not checked"
        )
    if not contents.operations and inv.resources:
        findings.notes.append(
            f"the ledger ({ledger_dir}) holds no operations: the load recorded no writes, so the "
            "set, unique and deleted checks had nothing to compare"
        )
    try:
        scanner: MarkerScanner | None = MarkerScanner.for_customers(customers)
    except (KeyError, ValueError) as exc:
        scanner = None
        findings.notes.append(f"isolation scanning disabled: {exc}")

    # 1. from the ledger alone: cheap, covers every operation
    findings.add(ledger_duplicates(ops, inv.resources))
    findings.checks["unique"] += len(ops)
    findings.add(leaks_under_load(contents.leaks, scanner))
    findings.checks["isolation-under-load"] += len(contents.leaks)

    session = _Session(
        base_url, request_timeout_s, max(1, concurrency), started + time_budget_s,
        max_requests=4 * max(sample, 1) + 100, transport=transport, pacer=pacer,
    )  # fmt: skip
    rng = random.Random(seed)
    try:
        with ThreadPoolExecutor(
            max_workers=max(1, concurrency), thread_name_prefix="integrity"
        ) as pool:
            # 2. read-backs against the ledger: set, deleted, unique (final state)
            _readback_checks(inv, ops, by_index, session, pool, sample, rng, findings, scanner)
            # 3. isolation: sampled reads and cross-customer reads, concurrently
            _isolation_checks(inv, ops, by_index, session, pool, sample, rng, findings, scanner)
            # 4. the pack's own invariants
            api = Api(session, by_index, inv)
            for name, fn in inv.custom:
                before = session.requests
                ok, result = session.call(f"@invariant {name}", fn, contents.operations, api)
                if ok:
                    try:
                        items = [_with_check(v, name) for v in (result or ())]
                    except TypeError as exc:
                        findings.notes.append(
                            f"@invariant {name} returned something that is not violations: {exc}"
                        )
                        items = []
                    findings.add(items)
                findings.checks[name] += max(1, session.requests - before)
    finally:
        session.close()
    return _result(findings, session, len(contents.operations), started)


def _with_check(v: IntegrityViolation, name: str) -> IntegrityViolation:
    if not isinstance(v, IntegrityViolation):
        raise TypeError(f"{v!r} is not an IntegrityViolation")
    if v.check:
        return v
    return IntegrityViolation(v.kind, v.customer, v.identifiers, v.detail, v.first_seen, name)


def _readback_checks(
    inv: Invariants,
    ops: Sequence[Operation],
    customers: Mapping[int, Mapping[str, Any]],
    session: _Session,
    pool: ThreadPoolExecutor,
    sample: int,
    rng: random.Random,
    findings: _Findings,
    scanner: MarkerScanner | None,
) -> None:
    histories: dict[tuple[str, str], list[Operation]] = defaultdict(list)
    per_customer: dict[tuple[int, str], list[Operation]] = defaultdict(list)
    for o in ops:
        if o.customer not in customers:
            continue
        per_customer[(o.customer, o.kind)].append(o)
        if o.ident is not None:
            histories[(o.kind, o.ident)].append(o)
    if not per_customer:
        return
    # Customers whose operations are most likely to show a race come first.
    suspects = {int(c) for v in findings.violations for c in v.customer.split(",") if c.isdigit()}

    def priority(key: tuple[int, str]) -> tuple[int, float]:
        entries = per_customer[key]
        risky = any(o.outcome == "unknown" or o.op == "delete" for o in entries)
        return (0 if key[0] in suspects else 1 if risky else 2, rng.random())

    plan: list[tuple[int, str, list[str]]] = []
    budget = max(1, sample)
    for key in sorted(per_customer, key=priority):
        if budget <= 0:
            break
        idents = sorted({o.ident for o in per_customer[key] if o.ident is not None}, key=_natural)
        if len(idents) > budget:
            idents = sorted(rng.sample(idents, budget), key=_natural)
        plan.append((key[0], key[1], idents))
        budget -= (1 if key[1] in inv.listings else 0) + (
            0 if key[1] in inv.listings else len(idents)
        )
        if key[1] in inv.listings:
            budget -= max(0, len(idents) // 10)  # some will need an individual read

    def work(
        customer_index: int, kind: str, idents: list[str]
    ) -> tuple[int, str, list[Mapping[str, Any]], dict[str, Any]]:
        customer = customers[customer_index]
        listed: list[Mapping[str, Any]] = []
        fn = inv.listings.get(kind)
        if fn is not None:
            ok, result = session.call(
                f"@listing {kind}",
                fn,
                session.client,
                customer,
                per_customer[(customer_index, kind)],
            )
            if ok and result:
                listed = [r for r in result if isinstance(r, Mapping)]
        res = inv.resources[kind]
        seen = {res.ident(r) for r in listed}
        read: dict[str, Any] = {}
        for ident in idents:
            if ident in seen:
                continue
            ok, result = session.call(
                f"@readback {kind} {ident}", inv.readbacks[kind], session.client, customer, ident
            )
            if ok:
                read[ident] = result
            elif session.stopped:
                break
        return customer_index, kind, listed, read

    futures = [pool.submit(work, c, k, ids) for c, k, ids in plan]
    observed_by_kind: dict[str, list[tuple[int, Mapping[str, Any]]]] = defaultdict(list)
    for future in futures:
        customer_index, kind, listed, read = future.result()
        res = inv.resources[kind]
        by_id = {res.ident(r): r for r in listed}
        for r in listed:
            observed_by_kind[kind].append((customer_index, r))
        for got in read.values():
            if got is not None:
                observed_by_kind[kind].append((customer_index, got))
        for ident in sorted(
            {o.ident for o in per_customer[(customer_index, kind)] if o.ident}, key=_natural
        ):
            if ident in by_id:
                item: Mapping[str, Any] | None = by_id[ident]
            elif ident in read:
                item = read[ident]
            else:
                continue  # not read (budget, time or a read error)
            history = histories[(kind, ident)]
            try:
                found = evaluate_resource(res, history, item)
            except (KeyError, TypeError, ValueError) as exc:
                findings.notes.append(
                    f"{kind} {ident}: could not compare: {type(exc).__name__}: {exc}"
                )
                continue
            if any(o.op == "delete" and o.outcome == "ok" for o in history):
                findings.checks["deleted"] += 1
            else:
                findings.checks["set"] += 1
            if found is not None:
                findings.violations.append(found)
        if scanner is not None:
            for item in [*listed, *(r for r in read.values() if r is not None)]:
                findings.checks["isolation"] += 1
                foreign = scanner.foreign(json.dumps(item, default=str), customer_index)
                if foreign:
                    findings.violations.append(
                        _leak(
                            customer_index,
                            f"read-back of {kind} {res.ident(item)}",
                            foreign,
                            scanner,
                        )
                    )
    for kind, observed in observed_by_kind.items():
        res = inv.resources[kind]
        if res.unique_key is None:
            continue
        findings.checks["unique"] += len(observed)
        findings.add(final_state_duplicates(res, observed, ops))


def _isolation_checks(
    inv: Invariants,
    ops: Sequence[Operation],
    customers: Mapping[int, Mapping[str, Any]],
    session: _Session,
    pool: ThreadPoolExecutor,
    sample: int,
    rng: random.Random,
    findings: _Findings,
    scanner: MarkerScanner | None,
) -> None:
    if session.stopped:
        return
    indexes = sorted(customers)
    # Cross-customer reads: one customer asks for another's identifiers; must be refused.
    owned: list[tuple[int, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for o in ops:
        if o.ident and o.outcome == "ok" and o.op == "create" and (o.kind, o.ident) not in seen:
            seen.add((o.kind, o.ident))
            owned.append((o.customer, o.kind, o.ident))
    cross: list[tuple[int, int, str, str]] = []
    if owned and len(indexes) > 1:
        for owner, kind, ident in rng.sample(owned, min(len(owned), max(1, sample // 4))):
            reader = rng.choice(indexes)
            if reader == owner:
                reader = indexes[(indexes.index(reader) + 1) % len(indexes)]
            cross.append((reader, owner, kind, ident))
    # Sampled reads as customers, interleaved so concurrent requests mix tenants.
    reads: list[tuple[int, Read]] = []
    if inv.isolation_reads is not None and scanner is not None:
        budget = max(1, sample - len(cross))
        chosen = rng.sample(indexes, min(len(indexes), budget))
        per: list[list[Read]] = []
        for index in chosen:
            ok, result = session.call(
                "@isolation_reads", inv.isolation_reads, customers[index], network=False
            )
            items = [Read(r) if isinstance(r, str) else r for r in (result or [])] if ok else []
            per.append([r for r in items if isinstance(r, Read)])
        depth = max((len(p) for p in per), default=0)
        for level in range(depth):
            for index, items in zip(chosen, per, strict=True):
                if level < len(items):
                    reads.append((index, items[level]))
        reads = reads[:budget]

    def do_read(index: int, spec: Read) -> tuple[str, tuple[Any, ...]]:
        customer = customers[index]

        def send() -> httpx.Response:
            return session.client.request(
                spec.method, spec.path, params=spec.params, headers=inv.headers(customer)
            )

        ok, response = session.call(spec.label, send)
        return "read", (index, spec, response if ok else None, time.time())

    def do_cross(reader: int, owner: int, kind: str, ident: str) -> tuple[str, tuple[Any, ...]]:
        what = f"@readback {kind} {ident} as customer {reader}"
        ok, result = session.call(
            what, inv.readbacks[kind], session.client, customers[reader], ident
        )
        return "cross", (reader, owner, kind, ident, ok, result)

    jobs: list[Any] = []
    # Interleave the two kinds of read so both run under the same concurrency.
    for i in range(max(len(reads), len(cross))):
        if i < len(reads):
            jobs.append(pool.submit(do_read, *reads[i]))
        if i < len(cross):
            jobs.append(pool.submit(do_cross, *cross[i]))
    leaks: dict[tuple[int, str], tuple[set[int], int, float]] = {}
    for job in jobs:
        what, outcome = job.result()
        if what == "read":
            index, spec, response, at = outcome
            if response is None or scanner is None:
                continue
            findings.checks["isolation"] += 1
            foreign = scanner.foreign(response.content, index)
            if foreign:
                key = (index, spec.label)
                prior = leaks.get(key, (set(), 0, at))
                leaks[key] = (prior[0] | set(foreign), prior[1] + 1, min(prior[2], at))
        else:
            reader, owner, kind, ident, ok, result = outcome
            if not ok:
                continue
            findings.checks["isolation"] += 1
            if result is not None:
                findings.violations.append(
                    IntegrityViolation(
                        kind="isolation-leak",
                        customer=str(reader),
                        identifiers=(ident,),
                        detail=(
                            f"customer {reader} read customer {owner}'s {kind} {ident}: the read "
                            "should have been refused (403/404)"
                        ),
                        first_seen=time.time(),
                        check="isolation",
                    )
                )
    for (index, label), (markers, count, at) in sorted(leaks.items()):
        if scanner is not None:
            v = _leak(index, label, sorted(markers), scanner, at)
            detail = f"{v.detail} ({count} reads)" if count > 1 else v.detail
            findings.violations.append(
                IntegrityViolation(v.kind, v.customer, v.identifiers, detail, at, v.check)
            )


def _leak(
    customer: int,
    what: str,
    foreign: Sequence[int],
    scanner: MarkerScanner,
    at: float | None = None,
) -> IntegrityViolation:
    return IntegrityViolation(
        kind="isolation-leak",
        customer=str(customer),
        identifiers=tuple(scanner.marker(i) for i in foreign[:10]),
        detail=(
            f"{what}, read with customer {customer}'s credentials, carries the markers of "
            f"{len(foreign)} other customer(s): {', '.join(str(i) for i in foreign[:10])}"
            f"{' ...' if len(foreign) > 10 else ''}"
        ),
        first_seen=time.time() if at is None else at,
        check="isolation",
    )


def _result(
    findings: _Findings, session: _Session, operations: int, started: float
) -> IntegrityResult:
    # The same duplicate found by the ledger and by read-backs is one violation.
    unique: dict[tuple[str, tuple[str, ...]], IntegrityViolation] = {}
    for v in findings.violations:
        key = (v.kind, tuple(sorted(v.identifiers)))
        prior = unique.get(key)
        if prior is None:
            unique[key] = v
        elif prior.first_seen is None and v.first_seen is not None:
            unique[key] = IntegrityViolation(
                prior.kind,
                prior.customer,
                prior.identifiers,
                prior.detail,
                v.first_seen,
                prior.check,
            )
    violations = sorted(unique.values(), key=lambda v: (v.first_seen is None, v.first_seen or 0.0))
    notes = list(findings.notes)
    if len(violations) > MAX_VIOLATIONS:
        notes.append(f"{len(violations) - MAX_VIOLATIONS} more violations not listed")
    if session.errors:
        notes.append(f"{session.errors} read(s) failed; first: {session.first_error}")
    if session.pack_errors:
        notes.append(
            f"{session.pack_errors} pack function call(s) raised; first: {session.first_pack_error}"
        )
    if session.stopped:
        notes.append(f"stopped early: {session.stopped}")
    checks = {k: v for k, v in findings.checks.items() if v}
    checked = operations + session.requests
    attempted = session.successes + session.errors
    unreadable = session.stopped is not None and "unreachable" in session.stopped
    if violations:
        status = "failed"
    elif (
        unreadable
        or (attempted >= 4 and session.errors > attempted / 2)
        or (attempted and not session.successes)
    ):
        status = "error"
        notes.insert(0, "the target could not be read back reliably, so integrity is unknown")
    elif checked == 0 and not checks:
        status = "skipped"
    else:
        status = "passed"
    return IntegrityResult(
        status=status,  # type: ignore[arg-type]
        checked=checked,
        violations=tuple(violations[:MAX_VIOLATIONS]),
        checks=checks,
        duration_s=_since(started),
        note="; ".join(notes),
    )


# --- small helpers ----------------------------------------------------------------------------


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


def _iso(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 1000):03d}"


def _short(value: object, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _natural(ident: str) -> tuple[int, int | str]:
    return (0, int(ident)) if ident.isdigit() else (1, ident)
