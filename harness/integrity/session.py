"""The bounded HTTP session the integrity checks read the target through.

Pack functions (``@readback``, ``@listing``, ``@invariant``) run with the session's client: every
request counts against the check's deadline and request cap, and once either runs out the next
request raises inside the pack function, which :meth:`Session.call` turns into "not read".
Errors are counted, not raised, so a broken target or pack function becomes a note and a
status, never an exception out of :func:`harness.integrity.check.check_tier`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

import httpx

from harness.credentials import CredentialRefresher, RefreshOnRefusal
from harness.integrity.declare import Invariants
from harness.pacing import RequestPacer, request_hooks

__all__ = ["Api", "Session"]

UNREACHABLE_AFTER = 8  # this many transport errors before any success: the target is down


class _Stop(Exception):
    """The checker's time or request budget ran out (raised from inside pack functions)."""


class Session:
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
        credentials: CredentialRefresher | None = None,
        customers: Iterable[MutableMapping[str, Any]] = (),
    ) -> None:
        """``credentials`` refresh a customer's after a 401 to a request made as one of
        ``customers``, and the request is sent again (:class:`RefreshOnRefusal`)."""
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
        on_request = [self._on_request, *request_hooks(pacer).get("request", [])]
        if credentials is not None:
            transport = RefreshOnRefusal(transport or httpx.HTTPTransport(limits=limits), customers,
                                         credentials, on_send=on_request)  # fmt: skip
        self.client = httpx.Client(
            base_url=base_url,
            timeout=timeout_s,
            limits=limits,
            event_hooks={"request": on_request},
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

    @property
    def unreliable(self) -> bool:
        """The target could not be read well enough for the check to mean anything."""
        attempted = self.successes + self.errors
        unreachable = self.stopped is not None and "unreachable" in self.stopped
        return bool(
            unreachable
            or (attempted >= 4 and self.errors > attempted / 2)
            or (attempted and not self.successes)
        )

    def notes(self) -> list[str]:
        """What the check's result must say about the session: errors, and why it stopped."""
        notes = []
        if self.errors:
            notes.append(f"{self.errors} read(s) failed; first: {self.first_error}")
        if self.pack_errors:
            notes.append(
                f"{self.pack_errors} pack function call(s) raised; first: {self.first_pack_error}"
            )
        if self.stopped:
            notes.append(f"stopped early: {self.stopped}")
        return notes

    def close(self) -> None:
        self.client.close()


class Api:
    """What a custom :func:`invariant` reads the target with: as a customer, within the budget."""

    def __init__(
        self, session: Session, customers: Mapping[int, Mapping[str, Any]], invariants: Invariants
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
