"""The overlap probe: the pack's ``@concurrent_write`` sent several at once for one customer.

Real traffic overlaps two writes of one customer only now and then (less still when customers
are picked uniformly), and a lost update or a double booking shows only when they do. After a
tier's load, at no other load, the probe sends ``concurrency`` attempts of each declared write
at the same moment for one customer, ``rounds`` times (round r on the r-th busiest customer),
recording each in the tier's ledger; the integrity checks that follow judge them with the rest.

Bounded in count (rounds x concurrency x declared writes) and time (``time_budget_s``, and the
request timeout for each attempt). A pack that declares no ``@concurrent_write`` skips it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from harness.errors import ConfigError
from harness.integrity.counters import counted_customers
from harness.integrity.declare import Invariants, WriteProbe, load_invariants
from harness.integrity.ledger import Ledger, PendingWrite, outcome_of
from harness.pacing import RequestPacer, request_hooks
from harness.records import OverlapProbeResult

__all__ = ["Attempt", "ProbeWrite", "probe_overlapping_writes"]

READY_TIMEOUT_S = 2.0  # the longest an attempt waits for the others of its round before sending


class ProbeWrite:
    """What ``attempt.write`` yields: ``done(status, ident=...)`` records the answer, once."""

    def __init__(self, pending: PendingWrite) -> None:
        self._pending = pending
        self.status: int | None = None
        self.finished = False

    def done(self, status: int | None = None, *, ident: object = None) -> None:
        if self.finished:
            return
        self.status, self.finished = status, True
        self._pending.done(status, ident=ident)

    @property
    def outcome(self) -> str:
        return outcome_of(self.status) if self.finished else "unknown"


class Attempt:
    """One of a round's attempts, as the ``@concurrent_write`` function sees it."""

    def __init__(self, probe: WriteProbe, customer: Mapping[str, Any], round_: int, position: int, of: int,
                 ledger: Ledger, ready: threading.Barrier, tally: list[ProbeWrite]) -> None:  # fmt: skip
        self.round = round_
        self.position = position
        self.of = of
        self._probe, self._customer, self._ledger = probe, customer, ledger
        self._ready, self._tally = ready, tally

    @contextmanager
    def write(self, *, content: Mapping[str, Any] | None = None, ident: object = None) -> Iterator[ProbeWrite]:
        """Record the write's intent, wait for the round's other attempts, then send it inside.

        Leaving the block without ``done`` leaves the write unknown (it may have been applied)."""
        pending = self._ledger.begin(customer=int(self._customer["index"]), kind=self._probe.kind,
                                     op=self._probe.op, ident=ident, content=content)  # fmt: skip
        write = ProbeWrite(pending)
        self._tally.append(write)
        # An attempt that had nothing to write (or was slow) breaks the barrier: send anyway.
        with suppress(threading.BrokenBarrierError):
            self._ready.wait()
        with pending:
            yield write


def probe_overlapping_writes(
    invariants: str | Path | ModuleType | Invariants,
    *,
    base_url: str,
    customers: Sequence[Mapping[str, Any]],
    ledger_dir: Path,
    rounds: int,
    concurrency: int,
    request_timeout_s: float,
    time_budget_s: float = 20.0,
    transport: httpx.BaseTransport | None = None,
    pacer: RequestPacer | None = None,
) -> OverlapProbeResult | None:
    """Run the probe; None when the pack declares no ``@concurrent_write`` or it is turned off."""
    try:
        inv = load_invariants(invariants)
    except ConfigError:
        return None  # the integrity check reports a broken invariants file
    chosen = counted_customers(customers, rounds)
    if not inv.write_probes or rounds <= 0 or concurrency < 2 or not chosen:
        return None
    started = time.monotonic()
    deadline = started + time_budget_s
    attempts: list[ProbeWrite] = []
    done_customers: list[int] = []
    notes: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with (
        httpx.Client(base_url=base_url, timeout=request_timeout_s, limits=limits, transport=transport,
                     event_hooks=request_hooks(pacer)) as client,  # fmt: skip
        Ledger.open(ledger_dir) as ledger,
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="overlap") as pool,
    ):
        for round_ in range(rounds):
            if time.monotonic() >= deadline:
                notes.append(f"stopped after {round_} of {rounds} rounds: the {time_budget_s:g} s budget ran out")
                break
            customer = chosen[round_ % len(chosen)]
            for probe in inv.write_probes:
                ready = threading.Barrier(concurrency, timeout=READY_TIMEOUT_S)
                futures = [
                    pool.submit(_attempt, probe, client, Attempt(probe, customer, round_, i, concurrency, ledger,
                                                                 ready, attempts))  # fmt: skip
                    for i in range(concurrency)
                ]
                for future in futures:
                    error = future.result()
                    if error and error not in notes:
                        notes.append(error)
            done_customers.append(int(customer["index"]))
    outcomes = [w.outcome for w in attempts]
    return OverlapProbeResult(
        rounds=len(done_customers), concurrency=concurrency, customers=tuple(done_customers),
        writes=len(attempts), acknowledged=outcomes.count("ok"), refused=outcomes.count("fail"),
        unknown=outcomes.count("unknown"), duration_s=round(time.monotonic() - started, 3),
        note="; ".join(notes[:3]),
    )  # fmt: skip


def _attempt(probe: WriteProbe, client: httpx.Client, attempt: Attempt) -> str | None:
    """One attempt; an error it raised is a note (its write, if recorded, stays unknown)."""
    try:
        probe.send(client, attempt._customer, attempt)
    except httpx.HTTPError as exc:
        return f"@concurrent_write {probe.name}: {type(exc).__name__}: {exc}"[:300]
    except Exception as exc:  # noqa: BLE001 - a broken pack function is reported, not raised
        return f"@concurrent_write {probe.name} raised {type(exc).__name__}: {exc}"[:300]
    return None
