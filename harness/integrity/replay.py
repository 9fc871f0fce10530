"""Confirming a leak seen under load by replaying its request, before it is reported.

The load engine credits each request to a customer (``harness.load.kit``: the last
``self.customer()``, or ``as_customer``) and records a suspicion when a response carries another
customer's marker. It cannot see which credentials the request carried: a locustfile that reads
a job's receipt with its submitter's key while crediting the worker makes every such read look
like a leak. So after the load, each suspected request is sent again, with no other load:

1. as the customer it was credited to: foreign data in the answer confirms the leak;
2. as the customer whose marker came back (the data's owner): a control, that says whether the
   request reads the owner's data and whether the owner still gets it;
3. a few more times as each, interleaved on the check's concurrent pool: a leak through request
   context shared between concurrent requests (a global "current tenant") shows only when
   requests of two customers overlap.

Only GETs are replayed (repeating a write could change the data). A request name is judged from
a few of its suspicions (distinct customers): one confirmed replay makes all its suspicions
reports; replays that all come back clean dismiss them (counted and said, not reported); a
suspicion that could not be replayed is reported, saying that it was not confirmed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from harness.integrity.declare import Invariants
from harness.integrity.evaluate import leaks_under_load
from harness.integrity.ledger import LeakObservation
from harness.integrity.markers import MarkerScanner
from harness.integrity.session import Session
from harness.records import IntegrityViolation, LeakReplay

__all__ = ["MAX_REPLAYED_REQUESTS", "REPLAY_REQUESTS_CAP", "confirm_leaks"]

MAX_REPLAYED_REQUESTS = 20  # request names replayed per tier; later ones are reported unverified
SUSPICIONS_PER_REQUEST = 3  # suspicions (distinct customers) replayed per request name
CONCURRENT_PAIRS = 3  # replays as the customer alongside as many as the owner
REPLAYABLE_METHODS = frozenset({"GET"})
# The most requests the confirmation sends: the session's cap grows by this much.
REPLAY_REQUESTS_CAP = MAX_REPLAYED_REQUESTS * SUSPICIONS_PER_REQUEST * (2 + 2 * CONCURRENT_PAIRS)

@dataclass(frozen=True)
class _Answer:
    """One replay: the status (0: no answer) and the foreign markers the answer carried."""

    status: int
    foreign: tuple[int, ...] = ()
    own: bool = False  # the answer carries the replaying customer's own marker

    @property
    def shown(self) -> str:
        return str(self.status) if self.status else "no answer"


@dataclass(frozen=True)
class _Verdict:
    confirmed: bool | None  # None: the replay could not decide (no answer, a 5xx, no credentials)
    sentence: str


def confirm_leaks(
    leaks: Sequence[LeakObservation],
    *,
    inv: Invariants,
    customers: Mapping[int, Mapping[str, Any]],
    scanner: MarkerScanner | None,
    session: Session,
    pool: ThreadPoolExecutor,
) -> tuple[list[IntegrityViolation], LeakReplay | None]:
    """The leaks seen under load that replay confirms (or cannot refute), and how they were judged."""
    if not leaks:
        return [], None
    by_request: dict[str, dict[int, list[LeakObservation]]] = defaultdict(lambda: defaultdict(list))
    for leak in sorted(leaks, key=lambda item: item.at):
        by_request[leak.request][leak.customer].append(leak)
    before = session.requests
    reported: list[LeakObservation] = []
    evidence: dict[str, str] = {}
    counts = {"confirmed": 0, "not_confirmed": 0, "unverified": 0}
    findings: list[str] = []
    for rank, (request, per_customer) in enumerate(by_request.items()):
        if rank >= MAX_REPLAYED_REQUESTS:
            verdicts: list[_Verdict] = [_Verdict(None, f"past the first {MAX_REPLAYED_REQUESTS} request names replayed")]
        else:
            verdicts = [
                _replay(first, inv, customers, scanner, session, pool)
                for first in _candidates(per_customer)
            ]
        outcome, sentence = _judge(verdicts, len(per_customer))
        findings.append(f"{request}: {sentence}")
        counts[outcome] += len(per_customer)
        if outcome != "not_confirmed":
            reported.extend(leak for items in per_customer.values() for leak in items)
            evidence[request] = sentence
    summary = LeakReplay(
        suspected=sum(len(p) for p in by_request.values()),
        confirmed=counts["confirmed"],
        not_confirmed=counts["not_confirmed"],
        unverified=counts["unverified"],
        requests=session.requests - before,
        findings=tuple(findings),
    )
    return leaks_under_load(reported, scanner, evidence), summary


def _candidates(per_customer: Mapping[int, list[LeakObservation]]) -> list[LeakObservation]:
    """The suspicions to replay: the first of each customer, the replayable ones first."""
    firsts = [items[0] for items in per_customer.values()]
    firsts.sort(key=lambda leak: (not _replayable(leak), leak.at))
    return firsts[:SUSPICIONS_PER_REQUEST]


def _replayable(leak: LeakObservation) -> bool:
    return bool(leak.url) and (leak.method or "").upper() in REPLAYABLE_METHODS


def _replay(
    leak: LeakObservation,
    inv: Invariants,
    customers: Mapping[int, Mapping[str, Any]],
    scanner: MarkerScanner | None,
    session: Session,
    pool: ThreadPoolExecutor,
) -> _Verdict:
    """Send one suspected request again as its customer and as its data's owner."""
    why_not = _why_not_replayable(leak, inv, customers, scanner)
    if why_not:
        return _Verdict(None, why_not)
    assert scanner is not None and leak.url is not None
    method, url, reader = (leak.method or "GET").upper(), leak.url, leak.customer
    owner = next((i for i in leak.foreign if i in customers), None)
    send = _sender(method, url, inv, customers, scanner, session)
    alone = send(reader)
    if alone.foreign:
        return _Verdict(True, f"replayed as customer {reader}, {method} {url} answered {alone.shown} with "
                              f"the markers of customer(s) {_names(alone.foreign)}")  # fmt: skip
    if not alone.status or alone.status >= 500:
        return _Verdict(None, f"the replay as customer {reader} got {alone.shown}")
    control = send(owner) if owner is not None else None
    if control is not None and control.foreign:  # the owner gets someone else's data: a leak too
        return _Verdict(True, f"replayed as customer {owner}, whose marker it carried, {method} {url} "
                              f"answered {control.shown} with the markers of customer(s) "
                              f"{_names(control.foreign)}")  # fmt: skip
    together = [
        f.result()
        for f in [pool.submit(send, who) for _ in range(CONCURRENT_PAIRS) for who in (reader, owner) if who is not None]
    ]
    # A leak to either side is one: overlapping requests may swap their answers either way.
    mixed = [a for a in together if a.foreign]
    if mixed:
        pair = f"customers {reader} and {owner}" if owner is not None else f"customer {reader}"
        return _Verdict(True, f"replayed as {pair} at once, {method} {url} answered {len(mixed)} of "
                              f"{len(together)} times with another customer's markers (customer(s) "
                              f"{_names(sorted({i for a in mixed for i in a.foreign}))})")  # fmt: skip
    if not any(a.status for a in together) and not (control and control.status):
        return _Verdict(None, f"the replays of {method} {url} got no answer")
    refused = 400 <= alone.status < 500
    answer = "(refused)" if refused else "with no other customer's marker"
    sentence = (
        f"as customer {reader}, {method} {url} answered {alone.shown} {answer}, "
        f"and {CONCURRENT_PAIRS} more alongside its owner's replays carried none"
    )
    if control is not None:
        sentence += f"; as customer {owner}, whose marker it carried, {control.shown}"
        if refused and 200 <= control.status < 300 and control.own:
            sentence += (
                f" with its own data: the request was most likely sent with customer {owner}'s "
                f"credentials but credited to customer {reader} (credit it with "
                "`with self.as_customer(...)` in the locustfile)"
            )
    return _Verdict(False, sentence)


def _why_not_replayable(
    leak: LeakObservation,
    inv: Invariants,
    customers: Mapping[int, Mapping[str, Any]],
    scanner: MarkerScanner | None,
) -> str:
    method = (leak.method or "").upper()
    if not leak.url or not method:
        return "the ledger did not keep the request as it was sent"
    if method not in REPLAYABLE_METHODS:
        return f"a {method} is not replayed: repeating it could change the service's data"
    if inv.auth_headers is None:
        return "invariants.py has no auth_headers(customer), so the request cannot be sent as a customer"
    if scanner is None:
        return "the customers' markers are unreadable, so a replay's answer cannot be scanned"
    if leak.customer not in customers:
        return f"customer {leak.customer} is not among the tier's customers"
    return ""


def _sender(
    method: str,
    url: str,
    inv: Invariants,
    customers: Mapping[int, Mapping[str, Any]],
    scanner: MarkerScanner,
    session: Session,
) -> Callable[[int], _Answer]:
    def send(index: int) -> _Answer:
        def request() -> httpx.Response:
            return session.client.request(method, url, headers=inv.headers(customers[index]))

        ok, response = session.call(f"replay of {method} {url} as customer {index}", request)
        if not ok:
            return _Answer(0)
        if not 200 <= response.status_code < 300:
            return _Answer(response.status_code)
        body = response.content
        own = scanner.marker(index).encode() in body
        return _Answer(response.status_code, tuple(scanner.foreign(body, index)), own)

    return send


def _judge(verdicts: Sequence[_Verdict], suspicions: int) -> tuple[str, str]:
    """(outcome, what the report says of it) for one request name, from its replays."""
    counted = f"{suspicions} suspicion(s), {len(verdicts)} replayed"
    confirmed = [v for v in verdicts if v.confirmed]
    if confirmed:
        return "confirmed", f"confirmed by replay ({counted}): {confirmed[0].sentence}"
    undecided = [v for v in verdicts if v.confirmed is None]
    if undecided or not verdicts:
        reason = undecided[0].sentence if undecided else "nothing could be replayed"
        return "unverified", f"not confirmed by replay ({counted}): {reason}"
    return "not_confirmed", f"checked by replay and not confirmed ({counted}): {verdicts[0].sentence}"


def _names(indexes: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in indexes[:10])
    return shown + (" ..." if len(indexes) > 10 else "")
