"""Customer provisioning: bring the target up to N customers through the pack's hook.

Customers are numbered. The store (a JSON-lines file in the run folder, also what the Locust
behaviours read) holds every customer created so far, so a tier grows from the previous one
instead of starting over, and a provisioning run that was interrupted resumes where it stopped.
Each customer gets a marker unique to it and to this run: the isolation checks look for other
customers' markers in what a customer can read.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from harness.pacing import RequestPacer, async_request_hooks
from harness.records import ProvisioningResult

CreateCustomer = Callable[[httpx.AsyncClient, int, random.Random, str], Awaitable[dict[str, Any]]]


class CustomerStore:
    """The customers provisioned so far, persisted as JSON lines (one customer per line)."""

    def __init__(self, path: Path, run_token: str | None = None) -> None:
        self.path = path
        self.run_token = run_token or secrets.token_hex(3)
        self._customers: dict[int, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    record = json.loads(line)
                    self._customers[int(record["index"])] = record
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._customers)

    def missing(self, upto: int) -> list[int]:
        return [i for i in range(upto) if i not in self._customers]

    def marker(self, index: int) -> str:
        return f"srm{self.run_token}c{index:06d}"

    def add(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._customers[int(record["index"])] = record
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, separators=(",", ":")) + "\n")

    def all(self) -> list[dict[str, Any]]:
        return [self._customers[i] for i in sorted(self._customers)]


def provision(
    hook: CreateCustomer,
    store: CustomerStore,
    *,
    base_url: str,
    upto: int,
    concurrency: int,
    seed: int,
    timeout_s: float,
    cancel: threading.Event | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    pacer: RequestPacer | None = None,
) -> ProvisioningResult:
    """Create the customers missing below `upto`; failures are counted, not raised. ``pacer``
    holds the hook's requests to the pack's max_rps."""
    todo = store.missing(upto)
    started = time.monotonic()
    created, failures = asyncio.run(
        _provision_all(hook, store, base_url, todo, concurrency, seed, timeout_s, cancel, on_progress, pacer)
    )
    elapsed = time.monotonic() - started
    return ProvisioningResult(
        customers=len(store),
        created=created,
        failed=len(failures),
        duration_s=round(elapsed, 2),
        rate_per_s=round(created / elapsed, 1) if elapsed > 0 else 0.0,
        errors=tuple(failures[:10]),
    )


def failure_text(exc: BaseException) -> str:
    """One sentence for a failed creation, with the service's own answer when it gave one."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, httpx.HTTPStatusError):
        body = " ".join(exc.response.text.split())[:200]
        request = exc.request
        text = f"{request.method} {request.url.path} answered {exc.response.status_code}" + (f": {body}" if body else "")
    return text[:300]


async def _provision_all(
    hook: CreateCustomer,
    store: CustomerStore,
    base_url: str,
    todo: list[int],
    concurrency: int,
    seed: int,
    timeout_s: float,
    cancel: threading.Event | None,
    on_progress: Callable[[int, int], None] | None,
    pacer: RequestPacer | None,
) -> tuple[int, list[str]]:
    created = 0
    failures: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in todo:
        queue.put_nowait(index)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    hooks = async_request_hooks(pacer)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s, limits=limits, event_hooks=hooks) as client:

        async def worker() -> None:
            nonlocal created
            while not queue.empty():
                if cancel is not None and cancel.is_set():
                    return
                index = queue.get_nowait()
                rng = random.Random(seed * 1_000_003 + index)
                try:
                    record = await hook(client, index, rng, store.marker(index))
                except Exception as exc:  # noqa: BLE001 - a pack hook's failure is data, not a crash
                    failures.append(f"customer {index}: {failure_text(exc)}")
                    continue
                record = {**record, "index": index, "marker": record.get("marker", store.marker(index))}
                store.add(record)
                created += 1
                if on_progress is not None:
                    on_progress(created, len(todo))

        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(todo))))))
    return created, failures
