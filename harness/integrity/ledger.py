"""The operation ledger: what the load did to the target's data, as it happened.

Load behaviours record each state-changing operation (a booking created, cancelled, updated)
with its outcome, Jepsen-style:

* ``ok``: acknowledged (2xx). It happened and must stay visible.
* ``fail``: a definite refusal (4xx, e.g. 409 slot taken). Nothing happened.
* ``unknown``: no answer or a server error (timeout, reset, 5xx). It may or may not have
  happened, so the checkers accept either, but never half of it.

An operation is best recorded in two steps: its **intent** before the request is sent
(:meth:`Ledger.begin`) and its **outcome** once the answer is in (:meth:`PendingWrite.done`).
An intent that never gets its outcome (the load stopped with the request in flight, the task
was killed by the drain at phase end, the process died) reads back as ``unknown``: the write
may have reached the service, so the checkers accept both its presence and its absence. A
single-step :meth:`Ledger.record` after the answer still works, but a write cut off before it
is then invisible, and whatever it did (a delete, an update) reads as a lost write.

After the tier, :mod:`harness.integrity.check` reads the ledgers back and checks the target's
data against them. The ledger also keeps the foreign markers the load engine saw in response
bodies (:meth:`Ledger.observe_leak`), so a leak that only shows under concurrency is not lost.

One append-only JSON-lines file per process (``ledger-<pid>-<random>.jsonl``), so Locust
workers never share a file and :func:`read_ledgers` merges them. Records are buffered and
written at most every ``flush_interval_s`` (on the next record after it elapses) and at
:meth:`Ledger.close` / interpreter exit. No threads, no Locust import: it works the same in a
gevent-patched Locust process and in plain Python.

A line is one compact JSON object (short keys keep 5000 customers' files small)::

    {"t0": 1700000000.12, "t1": 1700000000.15, "c": 17, "k": "booking", "op": "create",
     "o": "ok", "s": 201, "id": "8812", "d": "<sha1 of the content>", "x": {...content}}
    {"ev": "leak", "t": 1700000000.2, "c": 17, "f": [4, 9], "r": "GET /patients", "s": 200,
     "m": "GET", "u": "/patients?q=ab"}

and the two-step form, paired within the file by ``i``::

    {"ev": "intent", "i": 3, "t0": 1700000000.12, "c": 17, "k": "booking", "op": "delete", "id": "8812"}
    {"ev": "done", "i": 3, "t1": 1700000000.15, "o": "ok", "s": 200}
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TextIO

__all__ = [
    "LEDGER_DIR_ENV",
    "Ledger",
    "LedgerContents",
    "LeakObservation",
    "NullLedger",
    "OPS",
    "OUTCOMES",
    "Operation",
    "PendingWrite",
    "close_shared_ledger",
    "content_digest",
    "outcome_of",
    "read_ledger_dir",
    "read_ledgers",
    "shared_ledger",
]

LEDGER_DIR_ENV = "SCALEREADY_LEDGER_DIR"  # set by the harness for the load engine's processes
FILE_GLOB = "ledger-*.jsonl"
MAX_LINES = 5_000_000  # read_ledger_dir stops here (bounded memory); the contents say so
MAX_CONTENT_CHARS = 2_000  # larger content is kept as its digest only
MAX_URL_CHARS = 2_000  # a leak's URL past this is cut (and then not replayed)

Outcome = Literal["ok", "fail", "unknown"]
OpName = Literal["create", "update", "delete"]
OUTCOMES: frozenset[str] = frozenset({"ok", "fail", "unknown"})
OPS: frozenset[str] = frozenset({"create", "update", "delete"})


def content_digest(content: Mapping[str, Any] | None) -> str | None:
    """sha1 of the canonical JSON of ``content`` (sorted keys, no spaces); None for None."""
    if content is None:
        return None
    text = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def outcome_of(status: int | None) -> Outcome:
    """The outcome an HTTP status means for a write.

    2xx ok; 4xx fail (the service refused: nothing happened); no response (None or 0), 5xx and
    anything else unknown (the write may have been applied before the error).
    """
    if not status:
        return "unknown"
    if 200 <= status < 300:
        return "ok"
    if 400 <= status < 500:
        return "fail"
    return "unknown"


@dataclass(frozen=True)
class Operation:
    """One state-changing operation, as the load recorded it."""

    started: float  # unix time the request was sent
    ended: float  # unix time the answer came (or the client gave up)
    customer: int  # the customer's index
    kind: str  # the resource kind, e.g. "booking"
    op: str  # "create" | "update" | "delete"
    outcome: str  # "ok" | "fail" | "unknown"
    ident: str | None  # the service's identifier (None when unknown, e.g. a timed-out create)
    digest: str | None  # content_digest(content) as written
    content: dict[str, Any] | None  # what was written (None when too large; the digest stays)
    status: int | None = None  # HTTP status; 0 = no response
    unanswered: bool = False  # an intent with no outcome recorded: cut off in flight (unknown)


@dataclass(frozen=True)
class LeakObservation:
    """Other customers' markers found in a response one customer received during the load."""

    at: float
    customer: int
    foreign: tuple[int, ...]
    request: str  # the request's name, "GET /patients"
    status: int | None = None
    method: str | None = None  # as sent, so the check can replay it ("GET")
    url: str | None = None  # path and query as sent ("/patients?q=ab"); None in older ledgers


@dataclass(frozen=True)
class LedgerContents:
    operations: tuple[Operation, ...]
    leaks: tuple[LeakObservation, ...]
    files: int
    bad_lines: int  # unreadable lines (a process killed mid-write leaves at most one per file)
    truncated: bool  # MAX_LINES reached

    @property
    def unanswered(self) -> int:
        """Writes whose intent was recorded but whose answer never was (outcome unknown)."""
        return sum(1 for o in self.operations if o.unanswered)


class Ledger:
    """An append-only, buffered JSON-lines ledger for one process. Use :meth:`open`."""

    def __init__(
        self,
        path: Path,
        *,
        flush_interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._flush_interval = flush_interval_s
        self._clock = clock
        self._monotonic = monotonic
        self._buffer: list[str] = []
        self._lock = threading.Lock()  # a gevent lock once Locust has patched the process
        self._file: TextIO | None = path.open("a", encoding="utf-8")
        self._next_flush = monotonic() + flush_interval_s
        self._intents = 0
        self.records = 0

    @classmethod
    def open(cls, directory: str | os.PathLike[str], *, flush_interval_s: float = 1.0) -> Ledger:
        """A new ledger file for this process in ``directory`` (created if missing)."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"ledger-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        return cls(path, flush_interval_s=flush_interval_s)

    # --- writing --------------------------------------------------------------------------

    def record(
        self,
        *,
        customer: int,
        kind: str,
        op: str,
        outcome: str | None = None,
        status: int | None = None,
        ident: object = None,
        content: Mapping[str, Any] | None = None,
        started: float | None = None,
        ended: float | None = None,
    ) -> None:
        """Record one state-changing operation (call it once the answer is in).

        ``outcome`` defaults to :func:`outcome_of` ``(status)``. ``started`` is when the request
        was sent (defaults to ``ended``, which defaults to now). ``ident`` is the identifier the
        service returned, if any (stored as a string). ``content`` is what was written: keep it
        small, it is what the read-back is compared with.
        """
        if op not in OPS:
            raise ValueError(f"op = {op!r}: use one of {sorted(OPS)}")
        if outcome is None:
            outcome = outcome_of(status)
        elif outcome not in OUTCOMES:
            raise ValueError(f"outcome = {outcome!r}: use one of {sorted(OUTCOMES)}")
        t1 = self._clock() if ended is None else ended
        t0 = t1 if started is None else started
        line: dict[str, Any] = {
            "t0": round(t0, 6), "t1": round(t1, 6), "c": int(customer), "k": kind, "op": op, "o": outcome,
        }  # fmt: skip
        if status is not None:
            line["s"] = status
        if ident is not None:
            line["id"] = str(ident)
        _put_content(line, content)
        self._append(json.dumps(line, separators=(",", ":"), ensure_ascii=False, default=str))

    def begin(
        self,
        *,
        customer: int,
        kind: str,
        op: str,
        ident: object = None,
        content: Mapping[str, Any] | None = None,
        started: float | None = None,
    ) -> PendingWrite:
        """Record the intent of a write before sending it; call ``.done(...)`` on the answer.

        Until ``done`` is called the write's outcome is unknown, and stays so if it never is:
        a request cut off in flight may still have been applied.
        """
        if op not in OPS:
            raise ValueError(f"op = {op!r}: use one of {sorted(OPS)}")
        t0 = self._clock() if started is None else started
        with self._lock:
            self._intents += 1
            token = self._intents
        line: dict[str, Any] = {
            "ev": "intent", "i": token, "t0": round(t0, 6), "c": int(customer), "k": kind, "op": op,
        }  # fmt: skip
        if ident is not None:
            line["id"] = str(ident)
        _put_content(line, content)
        self._append(json.dumps(line, separators=(",", ":"), ensure_ascii=False, default=str))
        return PendingWrite(self, token)

    def _complete(
        self, token: int, outcome: str | None, status: int | None, ident: object, ended: float | None
    ) -> None:
        if outcome is None:
            outcome = outcome_of(status)
        elif outcome not in OUTCOMES:
            raise ValueError(f"outcome = {outcome!r}: use one of {sorted(OUTCOMES)}")
        t1 = self._clock() if ended is None else ended
        line: dict[str, Any] = {"ev": "done", "i": token, "t1": round(t1, 6), "o": outcome}
        if status is not None:
            line["s"] = status
        if ident is not None:
            line["id"] = str(ident)
        self._append(json.dumps(line, separators=(",", ":"), ensure_ascii=False, default=str))

    def observe_leak(
        self,
        *,
        customer: int,
        foreign: Iterable[int],
        request: str,
        status: int | None = None,
        at: float | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        """Record that ``customer`` received other customers' markers (``foreign``) in a response.

        ``method`` and ``url`` (path and query) are the request as sent: the integrity check
        replays it to confirm the leak before reporting it.
        """
        line: dict[str, Any] = {
            "ev": "leak", "t": round(self._clock() if at is None else at, 6), "c": int(customer),
            "f": sorted({int(i) for i in foreign})[:50], "r": request[:200], "s": status,
        }  # fmt: skip
        if method:
            line["m"] = method[:16]
        if url:
            line["u"] = url[:MAX_URL_CHARS]
        self._append(json.dumps(line, separators=(",", ":"), ensure_ascii=False))

    def _append(self, line: str) -> None:
        with self._lock:
            if self._file is None:
                return  # closed: late records from a stopping user are dropped, not raised
            self._buffer.append(line)
            self.records += 1
            due = self._monotonic() >= self._next_flush
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._buffer = self._buffer, []
            self._next_flush = self._monotonic() + self._flush_interval
            if self._file is None or not lines:
                return
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    @property
    def closed(self) -> bool:
        return self._file is None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _put_content(line: dict[str, Any], content: Mapping[str, Any] | None) -> None:
    if content is None:
        return
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    line["d"] = hashlib.sha1(text.encode("utf-8")).hexdigest()
    if len(text) <= MAX_CONTENT_CHARS:
        line["x"] = content


class PendingWrite:
    """A write whose intent is in the ledger; :meth:`done` records its outcome (once).

    As a context manager, leaving the block without :meth:`done` (an exception, the task killed
    at phase end) records the outcome as unknown: the request may have been applied.
    """

    def __init__(self, ledger: Ledger | None, token: int) -> None:
        self._ledger = ledger
        self._token = token
        self.finished = False

    def done(
        self,
        status: int | None = None,
        *,
        ident: object = None,
        outcome: str | None = None,
        ended: float | None = None,
    ) -> None:
        """The answer: ``status`` (None = no answer), the ``ident`` the service returned."""
        if self.finished:
            return
        self.finished = True
        if self._ledger is not None:
            self._ledger._complete(self._token, outcome, status, ident, ended)

    def __enter__(self) -> PendingWrite:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.finished:
            self.done(None, outcome="unknown")


class NullLedger:
    """A ledger that records nothing: what :func:`shared_ledger` gives outside the harness."""

    path = None
    records = 0
    closed = False

    def record(self, **_: Any) -> None:
        return None

    def begin(self, **_: Any) -> PendingWrite:
        return PendingWrite(None, 0)

    def observe_leak(self, **_: Any) -> None:
        return None

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


_shared: tuple[int, Ledger | NullLedger] | None = None
_shared_lock = threading.Lock()


def shared_ledger() -> Ledger | NullLedger:
    """This process's ledger in ``$SCALEREADY_LEDGER_DIR``, opened on first use and closed at exit.

    Outside the harness (plain ``locust -f``, the variable unset) it is a :class:`NullLedger`, so
    behaviours can record unconditionally. A forked child opens its own file.
    """
    global _shared
    current = _shared
    pid = os.getpid()
    if current is not None and current[0] == pid:
        return current[1]
    with _shared_lock:
        if _shared is not None and _shared[0] == pid:
            return _shared[1]
        folder = os.environ.get(LEDGER_DIR_ENV)
        ledger: Ledger | NullLedger = Ledger.open(folder) if folder else NullLedger()
        if isinstance(ledger, Ledger):
            atexit.register(ledger.close)
        _shared = (pid, ledger)
        return ledger


def close_shared_ledger() -> None:
    """Flush and close this process's shared ledger (call it when the load stops)."""
    global _shared
    with _shared_lock:
        if _shared is not None and _shared[0] == os.getpid():
            _shared[1].close()
        _shared = None


# --- reading ----------------------------------------------------------------------------------


def read_ledger_dir(
    directory: str | os.PathLike[str], *, max_lines: int = MAX_LINES
) -> LedgerContents:
    """Every operation and leak observation of every ledger file in ``directory``.

    Operations are sorted by start time. Unreadable lines are counted, not raised (a process
    killed mid-write leaves a partial last line). A missing directory reads as empty.
    """
    folder = Path(directory)
    files = sorted(folder.glob(FILE_GLOB)) if folder.is_dir() else []
    operations: list[Operation] = []
    leaks: list[LeakObservation] = []
    bad = 0
    lines = 0
    truncated = False
    for path in files:
        intents: dict[int, dict[str, Any]] = {}  # per file: a process numbers its own intents
        with path.open(encoding="utf-8", errors="replace") as f:
            for raw in f:
                lines += 1
                if lines > max_lines:
                    truncated = True
                    break
                try:
                    item = json.loads(raw)
                    event = item.get("ev")
                    if event == "leak":
                        leaks.append(_leak(item))
                    elif event == "intent":
                        _operation({**item, "t1": item["t0"], "o": "unknown"})  # malformed: a bad line now
                        intents[int(item["i"])] = item
                    elif event == "done":
                        intent = intents.pop(int(item["i"]))
                        operations.append(_operation(_settled(intent, item)))
                    else:
                        operations.append(_operation(item))
                except (ValueError, KeyError, TypeError, AttributeError):
                    bad += 1
        # Intents never answered: cut off in flight, so their outcome is unknown.
        operations.extend(
            replace(_operation({**i, "t1": i["t0"], "o": "unknown"}), unanswered=True)
            for i in intents.values()
        )
        if truncated:
            break
    operations.sort(key=lambda o: (o.started, o.ended))
    leaks.sort(key=lambda o: o.at)
    return LedgerContents(tuple(operations), tuple(leaks), len(files), bad, truncated)


def read_ledgers(directory: str | os.PathLike[str]) -> list[Operation]:
    """The operations of every ledger file in ``directory``, merged and sorted by start time."""
    return list(read_ledger_dir(directory).operations)


def _settled(intent: dict[str, Any], done: dict[str, Any]) -> dict[str, Any]:
    """One operation line from an intent and its outcome (the outcome's ident wins)."""
    merged = {**intent, "t1": done["t1"], "o": done["o"]}
    for key in ("s", "id"):
        if key in done:
            merged[key] = done[key]
    return merged


def _operation(item: dict[str, Any]) -> Operation:
    ident = item.get("id")
    content = item.get("x")
    return Operation(
        started=float(item["t0"]),
        ended=float(item["t1"]),
        customer=int(item["c"]),
        kind=str(item["k"]),
        op=str(item["op"]),
        outcome=str(item["o"]),
        ident=None if ident is None else str(ident),
        digest=item.get("d"),
        content=content if isinstance(content, dict) else None,
        status=item.get("s"),
    )


def _leak(item: dict[str, Any]) -> LeakObservation:
    return LeakObservation(
        at=float(item["t"]),
        customer=int(item["c"]),
        foreign=tuple(int(i) for i in item["f"]),
        request=str(item.get("r", "")),
        status=item.get("s"),
        method=item.get("m"),
        url=item.get("u"),
    )
