"""A tiny loopback job desk for the attribution tests: a shared work queue and a public feed.

Customers (API key ``key-<index>``) submit jobs; any customer takes the oldest open job from the
shared queue and finishes it; only the submitter may read the job's receipt, which carries the
submitter's marker. ``GET /feed`` is public: every customer sees the latest receipts, markers
and all. ``GET /mine`` lists the caller's own jobs, unless ``leaky`` forgets the filter (for
every caller, or for those in ``leaky_for``), or
``shared_context`` keeps the caller in one variable for all requests: then two overlapping
requests (they meet at a barrier) both answer for whichever caller came last, as a global
"current tenant" does under concurrency, while a request alone answers correctly.

Standard library only; a fixture for tests, not a service: it runs in a thread of the test.
"""

from __future__ import annotations

import re
import textwrap
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from json_http import send_json

from harness.integrity.check import check_tier
from harness.records import IntegrityResult

TOKEN = "srmq01"
FEED_LENGTH = 5
SHARED_CONTEXT_WAIT_S = 0.3  # how long a /mine request waits for another to overlap it


# The desk's invariants.py: no resources, only how to read as a customer (what replays need).
INVARIANTS = """
def auth_headers(customer):
    return {"X-API-Key": customer["api_key"]}
"""


def marker(index: int) -> str:
    return f"{TOKEN}c{index:06d}"


def customers(n: int) -> list[dict[str, Any]]:
    return [{"index": i, "api_key": f"key-{i}", "marker": marker(i)} for i in range(n)]


@dataclass
class Desk:
    """The desk's state; ``requests`` counts them by "METHOD /path-shape"."""

    leaky: bool = False
    leaky_for: frozenset[int] = frozenset()  # callers whose /mine forgets the filter
    shared_context: bool = False
    current: int | None = None  # the "current tenant" of shared_context
    meet: threading.Barrier = field(default_factory=lambda: threading.Barrier(2))
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    queue: list[int] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, caller: int) -> int:
        """A new open job of ``caller``'s on the queue (call with ``lock`` held, or before serving)."""
        ident = len(self.jobs) + 1
        self.jobs[ident] = {"id": ident, "submitter": caller, "worker": None, "done": False}
        self.queue.append(ident)
        return ident

    def receipt(self, job: dict[str, Any]) -> dict[str, Any]:
        return {"job": job["id"], "marker": marker(job["submitter"]), "finished_by": job["worker"]}


def _handler(desk: Desk) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _json(self, status: int, body: object) -> None:
            send_json(self, status, body)

        def _caller(self) -> int | None:
            key = self.headers.get("X-API-Key", "")
            return int(key[4:]) if re.fullmatch(r"key-\d+", key) else None

        def _count(self) -> None:
            shape = re.sub(r"/\d+", "/{id}", self.path.split("?")[0])
            with desk.lock:
                desk.requests[f"{self.command} {shape}"] = desk.requests.get(f"{self.command} {shape}", 0) + 1

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            self._count()
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            caller = self._caller()
            if caller is None:
                return self._json(401, {"detail": "no key"})
            with desk.lock:
                if self.path == "/jobs":
                    ident = desk.submit(caller)
                    return self._json(201, {"id": ident, "marker": marker(caller)})
                if self.path == "/queue/take":
                    if not desk.queue:
                        return self._json(200, {})
                    job = desk.jobs[desk.queue.pop(0)]
                    # What a worker needs, and no more: no marker, so taking a job leaks nothing.
                    return self._json(200, {"id": job["id"], "submitter_index": job["submitter"]})
                if m := re.fullmatch(r"/jobs/(\d+)/finish", self.path):
                    job = desk.jobs.get(int(m.group(1)))
                    if job is None or job["done"]:
                        return self._json(409, {"detail": "not open"})
                    job.update(done=True, worker=caller)
                    return self._json(200, {"id": job["id"], "done": True})
            return self._json(404, {"detail": "no such route"})

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self._count()
            caller = self._caller()
            if caller is None:
                return self._json(401, {"detail": "no key"})
            if self.path == "/mine" and desk.shared_context:
                caller = _shared_caller(desk, caller)
            with desk.lock:
                if m := re.fullmatch(r"/jobs/(\d+)/receipt", self.path):
                    job = desk.jobs.get(int(m.group(1)))
                    if job is None or job["submitter"] != caller or not job["done"]:
                        return self._json(404, {"detail": "not found"})
                    return self._json(200, desk.receipt(job))
                if self.path == "/feed":
                    done = [j for j in desk.jobs.values() if j["done"]][-FEED_LENGTH:]
                    return self._json(200, [desk.receipt(j) for j in done])
                if self.path == "/mine":
                    unfiltered = desk.leaky or caller in desk.leaky_for
                    mine = [j for j in desk.jobs.values() if unfiltered or j["submitter"] == caller]
                    return self._json(200, [{"id": j["id"], "marker": marker(j["submitter"])} for j in mine])
            return self._json(404, {"detail": "no such route"})

    return Handler


def _shared_caller(desk: Desk, caller: int) -> int:
    """The caller as a global "current tenant" sees it: the last one set when requests overlap."""
    desk.current = caller
    try:
        desk.meet.wait(timeout=SHARED_CONTEXT_WAIT_S)
    except threading.BrokenBarrierError:
        desk.meet.reset()  # alone: nobody overlapped, the variable is still ours
    return desk.current if desk.current is not None else caller


@contextmanager
def serve(desk: Desk) -> Iterator[str]:
    """Run the desk on a free loopback port for the block; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(desk))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def check_desk(folder: Path, url: str, ledger: Path, people: Sequence[dict[str, Any]],
               invariants: str = INVARIANTS) -> IntegrityResult:  # fmt: skip
    """The integrity check of the desk after a load (or a hand-written ledger)."""
    inv = folder / "invariants.py"
    inv.write_text(textwrap.dedent(invariants), encoding="utf-8")
    return check_tier(inv, base_url=url, customers=people, ledger_dir=ledger, sample=50,
                      request_timeout_s=2.0, time_budget_s=20.0)  # fmt: skip
