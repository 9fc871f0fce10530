"""The pure integrity checkers: ledger operations and observed state in, violations out.

Each checker accounts for writes of unknown outcome (Jepsen's ``:info``): such a write may or
may not have happened, so a state it explains is not a violation, but half of it is. Nothing
here reads the target or the clock: :mod:`harness.integrity.check` fetches what the target
says and hands it to these functions.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.integrity.declare import Resource
from harness.integrity.ledger import LeakObservation, Operation
from harness.integrity.markers import MarkerScanner
from harness.records import IntegrityViolation, ViolationKind

__all__ = [
    "evaluate_resource",
    "final_state_duplicates",
    "leaks_under_load",
    "ledger_duplicates",
    "marker_leak",
    "natural_order",
]

MAX_GROUP = 50  # creates compared per unique key in the ledger (pairs grow quadratically)
INF = float("inf")


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
    subject = _Subject(res, ops[0].ident or "?", ops[0].customer)
    writes = _writes(ops)
    deletes = [o for o in ops if o.op == "delete" and o.outcome in ("ok", "unknown")]
    final_delete = _final_delete(writes, deletes)
    if final_delete is not None:
        return _resurrected(subject, final_delete, observed)
    if deletes or not writes:
        return None  # a delete of unknown outcome: present or absent are both explainable
    if observed is None:
        return _lost(subject, writes)
    return _changed(subject, writes, observed)


@dataclass(frozen=True)
class _Subject:
    """The one resource :func:`evaluate_resource` judges, and how its violations name it."""

    res: Resource
    ident: str
    customer: int

    def violation(
        self, kind: ViolationKind, detail: str, first_seen: float, check: str
    ) -> IntegrityViolation:
        return IntegrityViolation(
            kind=kind, customer=str(self.customer), identifiers=(self.ident,),
            detail=f"{self.res.kind} {self.ident}: {detail}", first_seen=first_seen, check=check,
        )  # fmt: skip


def _final_delete(writes: Sequence[Operation], deletes: Sequence[Operation]) -> Operation | None:
    """The first acknowledged delete after which nothing could have rewritten the resource."""
    for d in deletes:
        if d.outcome == "ok" and all(
            w.op == "create" or (w.outcome == "ok" and w.ended < d.started) for w in writes
        ):
            return d
    return None


def _resurrected(
    subject: _Subject, delete: Operation, observed: Mapping[str, Any] | None
) -> IntegrityViolation | None:
    """Definitely deleted: reading it back active again is a violation; absent or inactive is not."""
    if observed is None or not subject.res.active(observed):
        return None
    return subject.violation(
        "resurrected",
        detail=(
            f"deleted with an acknowledged {delete.op} (HTTP {delete.status}) at "
            f"{_iso(delete.ended)}, but the read-back shows it active again"
        ),
        first_seen=delete.ended,
        check="deleted",
    )


def _lost(subject: _Subject, writes: Sequence[Operation]) -> IntegrityViolation | None:
    """Absent: lost if any write was acknowledged; only unknown writes may not have happened."""
    acknowledged = [w for w in writes if w.outcome == "ok"]
    if not acknowledged:
        return None
    first = acknowledged[0]
    return subject.violation(
        "lost-write",
        detail=(
            f"the {first.op} was acknowledged (HTTP {first.status}) at {_iso(first.ended)} but "
            "the read-back does not find it"
        ),
        first_seen=first.ended,
        check="set",
    )


def _changed(
    subject: _Subject, writes: Sequence[Operation], observed: Mapping[str, Any]
) -> IntegrityViolation | None:
    """Present: its stable fields must be those of a write that may have been the last one."""
    res = subject.res
    # Possible final values: writes not followed by an acknowledged write started after them.
    finals = [
        w for w in writes if not any(o.outcome == "ok" and o.started > _end(w) for o in writes)
    ]
    wanted = {res.stable_digest(w.content) for w in finals if w.content is not None}
    if not wanted:
        return None  # contents were too large to keep: presence is all we can check
    if res.stable_digest(observed) in wanted:
        return None
    expected = next(w for w in finals if w.content is not None)
    uncertain = any(w.outcome == "unknown" for w in finals)
    return subject.violation(
        "half-written" if uncertain else "lost-write",
        detail=(
            f"reads back as {_short(res.stable_view(observed))}, "
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
    creates = _LedgerCreates.of(operations, resources)
    return [*_ids_handed_out_twice(creates), *_unique_key_clashes(creates)]


@dataclass(frozen=True)
class _LedgerCreates:
    """The ledger's acknowledged creates, indexed for the unique check."""

    by_ident: Mapping[tuple[str, str], list[Operation]]  # (kind, ident): creates that returned it
    deletes: Mapping[tuple[str, str], list[Operation]]  # (kind, ident): deletes, ok or unknown
    by_key: Mapping[tuple[str, Hashable], list[Operation]]  # (kind, unique key): creates

    @classmethod
    def of(
        cls, operations: Sequence[Operation], resources: Mapping[str, Resource]
    ) -> _LedgerCreates:
        by_ident: dict[tuple[str, str], list[Operation]] = defaultdict(list)
        deletes: dict[tuple[str, str], list[Operation]] = defaultdict(list)
        by_key: dict[tuple[str, Hashable], list[Operation]] = defaultdict(list)
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
                by_key[(o.kind, key)].append(o)
        return cls(by_ident, deletes, by_key)


def _ids_handed_out_twice(creates: _LedgerCreates) -> list[IntegrityViolation]:
    """One identifier returned by acknowledged creates of different customers or content."""
    found: list[IntegrityViolation] = []
    for (kind, ident), same in creates.by_ident.items():
        if len({c.customer for c in same}) > 1 or len({c.digest for c in same}) > 1:
            found.append(
                IntegrityViolation(
                    kind="duplicate",
                    customer=",".join(str(c) for c in sorted({c.customer for c in same})),
                    identifiers=(ident,),
                    detail=f"{kind} id {ident} was handed out by {len(same)} acknowledged creates with different content or customers",
                    first_seen=same[1].ended if len(same) > 1 else None,
                    check="unique",
                )
            )
    return found


def _unique_key_clashes(creates: _LedgerCreates) -> list[IntegrityViolation]:
    """Creates holding one unique key, none deleted before the other completed."""
    found: list[IntegrityViolation] = []
    for (kind, key), group in creates.by_key.items():
        group = sorted(group, key=lambda c: c.started)[:MAX_GROUP]
        clash: set[str] = set()
        when: float | None = None
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if a.ident == b.ident:
                    continue
                # either delete invoked before the other create completed explains the pair
                if any(d.started < b.ended for d in creates.deletes.get((kind, a.ident or ""), ())):
                    continue
                if any(d.started < a.ended for d in creates.deletes.get((kind, b.ident or ""), ())):
                    continue
                clash.update((a.ident or "?", b.ident or "?"))
                later = max(a.ended, b.ended)
                when = later if when is None else min(when, later)
        if clash:
            members = [c for c in group if c.ident in clash]
            found.append(
                IntegrityViolation(
                    kind="duplicate",
                    customer=",".join(str(c) for c in sorted({c.customer for c in members})),
                    identifiers=tuple(sorted(clash, key=natural_order)),
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
        idents = tuple(sorted(ids, key=natural_order))
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
    leaks: Sequence[LeakObservation],
    scanner: MarkerScanner | None = None,
    evidence: Mapping[str, str] | None = None,
) -> list[IntegrityViolation]:
    """Foreign markers the load engine saw, one violation per (customer, request).

    ``evidence`` (request name -> one sentence) says what replaying the request showed.
    """
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
                    + (f"; {evidence[request]}" if evidence and request in evidence else "")
                ),
                first_seen=items[0].at,
                check="isolation-under-load",
            )
        )
    return found


def marker_leak(
    customer: int,
    what: str,
    foreign: Sequence[int],
    scanner: MarkerScanner,
    at: float,
) -> IntegrityViolation:
    """An isolation-leak: ``what``, read as ``customer``, carries other customers' markers."""
    return IntegrityViolation(
        kind="isolation-leak",
        customer=str(customer),
        identifiers=tuple(scanner.marker(i) for i in foreign[:10]),
        detail=(
            f"{what}, read with customer {customer}'s credentials, carries the markers of "
            f"{len(foreign)} other customer(s): {', '.join(str(i) for i in foreign[:10])}"
            f"{' ...' if len(foreign) > 10 else ''}"
        ),
        first_seen=at,
        check="isolation",
    )


# --- small helpers ----------------------------------------------------------------------------


def _iso(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 1000):03d}"


def _short(value: object, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def natural_order(ident: str) -> tuple[int, int | str]:
    """Sort key for identifiers: numeric ones by value ("9" before "10"), then the rest."""
    return (0, int(ident)) if ident.isdigit() else (1, ident)


def lost_increments(
    name: str, kind: str, op: str, customer: int, before: int, after: int, operations: Sequence[Operation]
) -> IntegrityViolation | None:
    """A counter that grew by less than the acknowledged writes it counts: a lost update.

    ``before`` and ``after`` are the counter read as ``customer`` before the tier's load and
    after it; each acknowledged ``op`` on ``kind`` in ``operations`` must have added one. The
    violation says how many went missing and how many of the writes overlapped another (two
    read-modify-writes in flight at once are where an unguarded update loses one).
    """
    acknowledged = sorted(
        (o for o in operations if o.customer == customer and o.kind == kind and o.op == op and o.outcome == "ok"),
        key=lambda o: o.started,
    )
    grew = after - before
    if grew >= len(acknowledged):
        return None
    overlapping = _overlapping(acknowledged)
    first = overlapping[0].started if overlapping else (acknowledged[0].started if acknowledged else None)
    return IntegrityViolation(
        kind="lost-write",
        customer=str(customer),
        identifiers=(f"{name}:{customer}",),
        detail=(
            f"{name} grew by {grew} ({before} -> {after}) while the ledger holds {len(acknowledged)} "
            f"acknowledged {op}s of {kind} for this customer: {len(acknowledged) - grew} are missing from it "
            f"({len(overlapping)} of the writes overlapped another in time): a lost update, two "
            "read-modify-writes of one count that interleaved"
        ),
        first_seen=first,
        check="counter",
    )


def _overlapping(ops: Sequence[Operation]) -> list[Operation]:
    """The operations (sorted by start) that were in flight while another one was."""
    found: set[int] = set()
    latest_end, latest = float("-inf"), -1
    for i, o in enumerate(ops):
        if o.started < latest_end:
            found.update((i, latest))
        if o.ended > latest_end:
            latest_end, latest = o.ended, i
    return [ops[i] for i in sorted(found)]
