"""Credentials that expire: the pack's ``refresh_credentials`` hook, run outside the measurements.

A service whose customers authenticate with something short-lived (a bearer token with a TTL)
turns, without this, into a wave of 401s partway through a tier: the audit would blame the
service for the harness's stale credentials. A pack says how to get fresh ones in provision.py::

    def refresh_credentials(client: httpx.Client, customer: dict) -> dict:
        r = client.post("/tokens", headers={"X-API-Key": customer["api_key"]})
        r.raise_for_status()
        return {"token": r.json()["token"], "credentials_expire_at": r.json()["expires_at"]}

The fields it returns replace the customer record's. The harness calls it

* **before a stated expiry**: when a record's ``credentials_expire_at`` (unix seconds) is less
  than ``REFRESH_AHEAD_S`` away, as the customer is picked (load) or read as (integrity checks,
  replays of server errors);
* **on a 401** under load: a request sent with the customer's ``auth_headers`` that answers 401
  is refreshed and sent again once; only the second answer is measured. A 401 that a refresh
  cannot fix (the hook fails, or the retry is a 401 too) is the service's error like any other.
* **on a 401 after the load** (:class:`RefreshOnRefusal`): the integrity checks, the counters
  and the replays of server errors send through a transport that does the same, so credentials
  whose expiry no record states (a token that simply stops working) do not turn the checks'
  reads into errors.

The hook's own requests go through a client of their own (``httpx``), not the load's: they are
neither the service's errors nor its latency, and the time an iteration spends refreshing is
taken out of its latency. They are counted (:class:`RefreshCounts`) and reported per tier.

The locks are ``threading`` locks: in the load process, which Locust has monkey-patched, they are
gevent's, so one customer is refreshed once however many users pick it at the same moment.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "CREDENTIALS_ENV",
    "EXPIRES_AT_KEY",
    "HOOK_NAME",
    "REFRESH_AHEAD_S",
    "CredentialRefresher",
    "FreshCustomers",
    "RefreshCounts",
    "RefreshOnRefusal",
    "RefreshHook",
]

log = logging.getLogger("scaleready.credentials")

HOOK_NAME = "refresh_credentials"  # found by name in the pack's provision.py
CREDENTIALS_ENV = "SCALEREADY_CREDENTIALS"  # tells the load processes which provision.py has it
EXPIRES_AT_KEY = "credentials_expire_at"  # unix seconds, in a customer record, optional
# How long before a stated expiry credentials are refreshed: a task may send several requests
# after picking its customer, and under stress one request can take seconds; a token that is
# valid when the task starts must still be valid for its last request.
REFRESH_AHEAD_S = 5.0

RefreshHook = Callable[[httpx.Client, Mapping[str, Any]], Mapping[str, Any]]
AuthHeaders = Callable[[Mapping[str, Any]], Mapping[str, str]]


@dataclass(frozen=True)
class RefreshCounts:
    """Refreshes the harness made, and those that failed (the hook raised or returned no dict)."""

    refreshed: int = 0
    failed: int = 0

    def __add__(self, other: RefreshCounts) -> RefreshCounts:
        return RefreshCounts(self.refreshed + other.refreshed, self.failed + other.failed)


class CredentialRefresher:
    """Calls the pack's hook for one customer at a time and updates its record in place.

    ``client`` is the hook's own client (built on first use by ``make_client`` when not given);
    ``clock`` is injectable so the expiry rule can be tested without waiting.
    """

    def __init__(
        self,
        hook: RefreshHook,
        make_client: Callable[[], httpx.Client],
        *,
        auth_headers: AuthHeaders | None = None,
        clock: Callable[[], float] = time.time,
        ahead_s: float = REFRESH_AHEAD_S,
    ) -> None:
        self.hook = hook
        self.auth_headers = auth_headers
        self._make_client = make_client
        self._client: httpx.Client | None = None
        self._clock = clock
        self.ahead_s = ahead_s
        self._locks: dict[object, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self.refreshed = 0
        self.failed = 0

    @property
    def counts(self) -> RefreshCounts:
        return RefreshCounts(self.refreshed, self.failed)

    def due(self, customer: Mapping[str, Any]) -> bool:
        """True when the record states an expiry less than ``ahead_s`` away (or past)."""
        expires = customer.get(EXPIRES_AT_KEY)
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            return False
        return self._clock() >= float(expires) - self.ahead_s

    def keep_fresh(self, customer: MutableMapping[str, Any]) -> bool:
        """Refresh the customer's credentials if their stated expiry is near; True if it did."""
        if not self.due(customer):
            return False
        with self._lock_for(customer):
            if not self.due(customer):  # another user refreshed it while this one waited
                return False
            return self._call(customer)

    def after_refusal(self, customer: MutableMapping[str, Any], sent: Mapping[str, str]) -> bool:
        """After a 401 to a request sent with headers ``sent``: make the credentials fresh.

        True when the record now holds credentials other than those sent (refreshed now, or by
        another user meanwhile), so a retry is worth sending; False when the hook failed.
        """
        with self._lock_for(customer):
            if self.auth_headers is not None and not _holds(sent, self.auth_headers(customer)):
                return True  # refreshed since that request was built
            return self._call(customer)

    @classmethod
    def for_target(
        cls, hook: RefreshHook, base_url: str, timeout_s: float, *, auth_headers: AuthHeaders | None = None,
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
    ) -> CredentialRefresher:
        """A refresher whose hook reads ``base_url`` with a client of its own."""
        hooks = dict(event_hooks or {})
        return cls(hook, lambda: httpx.Client(base_url=base_url, timeout=timeout_s, event_hooks=hooks),
                   auth_headers=auth_headers)  # fmt: skip

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _lock_for(self, customer: Mapping[str, Any]) -> threading.Lock:
        key = customer.get("index", id(customer))
        with self._locks_lock:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = threading.Lock()
            return lock

    def _call(self, customer: MutableMapping[str, Any]) -> bool:
        if self._client is None:
            self._client = self._make_client()
        try:
            fields = self.hook(self._client, customer)
            if not isinstance(fields, Mapping):
                raise TypeError(f"returned {type(fields).__name__}, not a dict of the fields to replace")
        except Exception as exc:  # noqa: BLE001 - the pack's hook failing is data: its 401s stay errors
            self.failed += 1
            if self.failed == 1:
                log.warning("%s(customer %s) failed: %s: %s", HOOK_NAME, customer.get("index"),
                            type(exc).__name__, exc)  # fmt: skip
            return False
        customer.update(fields)
        self.refreshed += 1
        return True


class FreshCustomers(Mapping[int, Mapping[str, Any]]):
    """Customer records by index whose credentials are refreshed as each is looked up, so a
    check that reads as a few sampled customers refreshes those, not all of them."""

    def __init__(self, by_index: Mapping[int, MutableMapping[str, Any]], refresher: CredentialRefresher) -> None:
        self._by_index = by_index
        self._refresher = refresher

    def __getitem__(self, index: int) -> Mapping[str, Any]:
        record = self._by_index[index]
        self._refresher.keep_fresh(record)
        return record

    def __iter__(self) -> Iterator[int]:
        return iter(self._by_index)

    def __len__(self) -> int:
        return len(self._by_index)


class RefreshOnRefusal(httpx.BaseTransport):
    """Sends through ``inner``; a 401 to a request that carried one of ``customers``'
    credentials refreshes them and sends the request once more with the fresh ones.

    The owner is the customer whose credentials the request holds now, or held before one of this
    transport's refreshes (two checks reading as one customer at once both see the first 401).
    A request that carries no known customer's credentials (a check reading without any, or as
    another customer on purpose) is answered as it was. ``on_send`` are the client's request
    hooks (a pacer, a request cap): the retry is a request like the first and passes them too.
    """

    def __init__(
        self, inner: httpx.BaseTransport, customers: Iterable[MutableMapping[str, Any]],
        refresher: CredentialRefresher, on_send: Sequence[Callable[[httpx.Request], None]] = (),
    ) -> None:  # fmt: skip
        self._inner = inner
        self._on_send = tuple(on_send)
        self._customers = list(customers)
        self._refresher = refresher
        self._before: list[tuple[dict[str, str], MutableMapping[str, Any]]] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        auth = self._refresher.auth_headers
        if response.status_code != 401 or auth is None:
            return response
        owner = self._owner(request.headers, auth)
        if owner is None:
            return response
        held = dict(auth(owner))
        if not self._refresher.after_refusal(owner, request.headers):
            return response
        with self._lock:
            self._before.append((held, owner))
        response.read()
        response.close()
        headers = request.headers.copy()
        headers.update(dict(auth(owner)))
        retry = httpx.Request(request.method, request.url, headers=headers, content=request.read(),
                              extensions=request.extensions)  # fmt: skip
        for hook in self._on_send:
            hook(retry)
        return self._inner.handle_request(retry)

    def close(self) -> None:
        self._inner.close()

    def _owner(self, headers: httpx.Headers, auth: AuthHeaders) -> MutableMapping[str, Any] | None:
        for customer in self._customers:
            if holds_credentials(headers, auth(customer)):
                return customer
        with self._lock:
            before = list(self._before)
        return next((c for held, c in before if holds_credentials(headers, held)), None)


def _holds(headers: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    """True when ``headers`` carries every one of ``wanted`` (header names compared case-blind)."""
    sent = {k.lower(): v for k, v in headers.items()}
    return all(sent.get(k.lower()) == v for k, v in wanted.items())


def holds_credentials(headers: Mapping[str, str] | None, credentials: Mapping[str, str]) -> bool:
    """True when a request's ``headers`` were built from these ``credentials`` (non-empty)."""
    return bool(credentials) and headers is not None and _holds(headers, credentials)
