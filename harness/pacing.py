"""The pack's ``target.max_rps``: a cap on every request the harness sends, not only the load.

A team that lets the harness near a shared staging host writes ``max_rps`` as a promise to
whoever runs it. The load engine keeps its arrivals under it (``harness.tiers``,
``harness.load.engine``); everything else the audit sends (creating customers, reading their
data back for the integrity check, replaying errors, the pack's tests) goes through one
``RequestPacer`` per process, as an httpx request hook.

Each request takes the next free slot ``1 / max_rps`` after the previous one and a caller waits
for its slot (sleeping, never spinning); slots left unused are not saved up for later. With
``burst_s`` a request may go up to that much ahead of its slot (the generic cell rate algorithm,
a token bucket holding ``burst_s`` seconds' worth): open-model arrivals bunch at random, and the
load engine would otherwise hold back requests of a load well under the cap. Any one-second
window then holds at most ``max_rps * (1 + burst_s) + 1`` requests.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_RPS_ENV", "Hooks", "RequestPacer", "async_request_hooks", "pacer_from_env", "request_hooks"]

# How the audit hands the cap to the processes it starts (the pack's tests, the properties).
MAX_RPS_ENV = "SCALEREADY_MAX_RPS"


class RequestPacer:
    """At most ``max_rps`` requests a second, across every thread and task that shares it."""

    def __init__(
        self, max_rps: float, *, burst_s: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not (max_rps > 0 and math.isfinite(max_rps)):
            raise ValueError(f"max_rps = {max_rps}: the cap must be a positive number of requests per second")
        if not (0 <= burst_s < 1):
            raise ValueError(f"burst_s = {burst_s}: give a fraction of a second (0 for strict spacing)")
        self.max_rps = max_rps
        self.interval_s = 1.0 / max_rps
        self.burst_s = burst_s
        self._clock = clock
        self._due = -math.inf  # the theoretical time of the next slot
        self._lock = threading.Lock()
        self.requests = 0
        self.held = 0  # requests that had to wait for their slot
        self.waited_s = 0.0  # time they waited, summed

    def reserve(self) -> float:
        """Take the next slot; return how long to wait for it (0 when it is now)."""
        with self._lock:
            now = self._clock()
            send_at = max(now, self._due - self.burst_s)
            self._due = max(send_at, self._due) + self.interval_s
            self.requests += 1
            wait = send_at - now
            if wait > 0:
                self.held += 1
                self.waited_s += wait
            return wait

    def wait(self, *_: Any) -> None:
        """Block until this caller's slot (an httpx request hook: it ignores the request)."""
        delay = self.reserve()
        if delay > 0:
            time.sleep(delay)

    async def wait_async(self, *_: Any) -> None:
        """The same for asyncio code (an httpx.AsyncClient request hook)."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


Hooks = dict[str, list[Callable[..., Any]]]


def request_hooks(pacer: RequestPacer | None) -> Hooks:
    """httpx ``event_hooks`` that pace a client to ``pacer`` (none without one)."""
    return {"request": [pacer.wait]} if pacer is not None else {}


def async_request_hooks(pacer: RequestPacer | None) -> Hooks:
    """The same for an ``httpx.AsyncClient``."""
    return {"request": [pacer.wait_async]} if pacer is not None else {}


def pacer_from_env(environ: dict[str, str] | None = None) -> RequestPacer | None:
    """The pacer for a process the audit started with ``MAX_RPS_ENV`` set; None without it."""
    value = (os.environ if environ is None else environ).get(MAX_RPS_ENV, "").strip()
    if not value:
        return None
    try:
        return RequestPacer(float(value))
    except ValueError as exc:
        raise ValueError(f"{MAX_RPS_ENV}={value!r}: expected a positive number of requests per second") from exc
