"""What a pack's locustfile imports: ``from harness.load.kit import CustomerUser, task, between``.

:class:`CustomerUser` is a plain Locust ``FastHttpUser`` with these additions:

* **Pacing.** Run by the harness (``harness.load.engine``), each task execution is one
  *iteration* started by the harness's arrival-rate dispatcher at its intended time (open model);
  the user does not sleep between tasks. Run with plain ``locust -f``, the user behaves like any
  Locust user: closed loop with ``wait_time = between(1, 3)`` (override it as usual).
* **Customers.** ``self.customer()`` returns one provisioned customer record (a dict with at least
  ``id``, ``api_key`` and ``marker``) drawn from the JSON-lines file named by the
  ``SCALEREADY_CUSTOMERS`` environment variable, by the profile's customer popularity
  (``SCALEREADY_POPULARITY``: uniform, or Zipf so that a few large customers carry much of the
  traffic); the data-volume probe's iterations always draw uniformly, so they see every customer.
* **Attribution.** Every request is credited to one customer: its response is scanned for other
  customers' markers and its server errors are replayed as that customer. By default that is the
  customer ``self.customer()`` last returned; ``with self.as_customer(c):`` credits the requests
  inside the block to ``c`` (a request made with another customer's credentials, such as the
  receipt of a job its submitter owns).
* **Credentials.** With ``SCALEREADY_CREDENTIALS`` naming a provision.py that defines
  ``refresh_credentials`` (the harness sets it), a customer's credentials are refreshed as it is
  picked when their stated expiry is near, and a request that answers 401 is refreshed and sent
  again once; the refresh's requests and time are not the service's (``harness.credentials``).

Importing this module imports Locust (and so monkey-patches the process with gevent): import it
from locustfiles only, never from the harness's parent process.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from locust import between, constant, tag, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser
from locust.user.task import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, DefaultTaskSet

from harness.credentials import CREDENTIALS_ENV
from harness.load.popularity import POPULARITY_ENV, cumulative_weights, from_env_value
from harness.load.timing import distinct_tasks

if TYPE_CHECKING:
    from harness.credentials import CredentialRefresher
    from harness.integrity.ledger import PendingWrite

log = logging.getLogger("scaleready.engine")

__all__ = ["CREDENTIALS_ENV", "CUSTOMERS_ENV", "CustomerUser", "between", "constant", "load_customers", "tag", "task"]

CUSTOMERS_ENV = "SCALEREADY_CUSTOMERS"
PACER_ATTRIBUTE = "scaleready_pacer"  # set on the Locust Environment by the harness engine
ITERATION_CONTEXT_KEY = "scaleready_iteration"
CUSTOMER_CONTEXT_KEY = "scaleready_customer"  # index of the customer the request acts for
REQUEST_TIMEOUT_ENV = "SCALEREADY_REQUEST_TIMEOUT_S"
UNAUTHORIZED = 401

_customer_cache: dict[str, tuple[dict[str, Any], ...]] = {}
# (customers file, popularity) -> cumulative weights by rank, computed once per process
_weights_cache: dict[tuple[str, str], list[float] | None] = {}


def load_customers(path: str | os.PathLike[str]) -> tuple[dict[str, Any], ...]:
    """Read (once per process) the provisioned customers from a JSON-lines file."""
    key = str(Path(path).resolve())
    cached = _customer_cache.get(key)
    if cached is None:
        lines = Path(key).read_text(encoding="utf-8").splitlines()
        records = (json.loads(line) for line in lines if line.strip())
        # Rank order is provisioning order (index 0 is rank 1, the most popular under Zipf): the
        # same customers are the largest at every tier, as tier 500 grows from tier 50's.
        cached = tuple(sorted(records, key=lambda r: int(r.get("index", 0))))
        if not cached:
            raise ValueError(f"{path}: no customers in the file; provision customers first")
        _customer_cache[key] = cached
    return cached


def _popularity_weights(path: str, customers: int) -> list[float] | None:
    popularity = os.environ.get(POPULARITY_ENV, "")
    key = (str(Path(path).resolve()), popularity)
    if key not in _weights_cache:
        _weights_cache[key] = cumulative_weights(from_env_value(popularity), customers)
    return _weights_cache[key]


_refreshers: dict[tuple[str, str], CredentialRefresher | None] = {}


def credential_refresher(host: str) -> CredentialRefresher | None:
    """This process's refresher of the pack's credentials (None when the pack has no hook)."""
    path = os.environ.get(CREDENTIALS_ENV)
    if not path or not host:
        return None
    key = (path, host)
    if key not in _refreshers:
        _refreshers[key] = _build_refresher(Path(path), host)
    return _refreshers[key]


def _build_refresher(path: Path, host: str) -> CredentialRefresher | None:
    import importlib.util

    import httpx

    from harness.credentials import HOOK_NAME, CredentialRefresher

    spec = importlib.util.spec_from_file_location("scaleready_pack_credentials", path)
    if spec is None or spec.loader is None or not path.is_file():
        log.warning("%s=%s: not a Python file; credentials are not refreshed", CREDENTIALS_ENV, path)
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    hook, auth = getattr(module, HOOK_NAME, None), getattr(module, "auth_headers", None)
    if not callable(hook):
        return None
    timeout = float(os.environ.get(REQUEST_TIMEOUT_ENV) or 10.0)
    return CredentialRefresher(
        hook, lambda: httpx.Client(base_url=host, timeout=timeout),
        auth_headers=auth if callable(auth) else None,
    )  # fmt: skip


class Pacer(Protocol):
    """What the harness engine provides (duck-typed; ``harness.load.timing.Arrivals``)."""

    def take(self, user: CustomerUser) -> Any | None: ...  # an iteration, or None to stop

    def done(self, iteration: Any) -> None: ...


def _report(response: Any) -> Any:
    """Report a request held back with ``catch_response`` as Locust would have without it."""
    response._report_request()
    return response.request_meta["response"]


class _PacedTaskSet(DefaultTaskSet):
    """The root task set under the harness: take an arrival token before each task, never sleep."""

    def __init__(self, user: CustomerUser, pacer: Pacer) -> None:
        super().__init__(user)
        self._pacer = pacer
        # A DefaultTaskSet runs its user's tasks (repeated by weight); the distinct ones, for the probe.
        self._distinct = distinct_tasks(user)

    def execute_task(self, task: Callable[..., Any]) -> None:
        user = cast(CustomerUser, self.user)
        iteration = self._pacer.take(user)
        if iteration is None:
            raise StopUser()
        if iteration.even:  # the probe: every task in turn, so every endpoint is measured
            task = self._distinct[iteration.turn % len(self._distinct)]  # type: ignore[assignment]
        user._iteration = iteration
        try:
            super().execute_task(task)
        finally:
            user._iteration = None
            self._pacer.done(iteration)

    def wait(self) -> None:
        # Pacing happens in execute_task (the token); between iterations there is no think time.
        if self.user._state == LOCUST_STATE_STOPPING:
            raise StopUser()
        self.user._state = LOCUST_STATE_RUNNING


class CustomerUser(FastHttpUser):
    """A Locust user acting for one random provisioned customer per call to :meth:`customer`."""

    abstract = True
    wait_time = between(1, 3)  # plain `locust -f` only; the harness paces by arrival rate

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._iteration: Any = None
        self._customers: tuple[dict[str, Any], ...] | None = None
        self._customer_index: int | None = None
        self._by_index: dict[int, dict[str, Any]] | None = None
        self._cumulative: list[float] | None = None
        self._refresher = credential_refresher(self.host or "")
        if self._refresher is not None and self._refresher.auth_headers is not None:
            self._retry_refused(self._refresher)

    def customers(self) -> Mapping[int, dict[str, Any]]:
        """Every provisioned customer record by its index (``record["index"]``)."""
        if self._by_index is None:
            self._by_index = {int(c["index"]): c for c in self._records() if c.get("index") is not None}
        return self._by_index

    def _records(self) -> tuple[dict[str, Any], ...]:
        if self._customers is None:
            path = os.environ.get(CUSTOMERS_ENV)
            if not path:
                raise RuntimeError(
                    f"{CUSTOMERS_ENV} is not set: point it at the customers JSON-lines file "
                    "written by provisioning (scaleready sets it for you)"
                )
            self._customers = load_customers(path)
            self._cumulative = _popularity_weights(path, len(self._customers))
        return self._customers

    def customer(self) -> dict[str, Any]:
        """A provisioned customer record (``id``, ``api_key``, ``marker``, ...), drawn by the
        profile's popularity (uniformly in the data-volume probe).

        Requests made after this call are attributed to that customer: the harness scans their
        responses for other customers' markers and replays their server errors as this customer.
        Use :meth:`as_customer` for a request that acts for someone else.
        """
        records = self._records()
        probing = self._iteration is not None and getattr(self._iteration, "even", False)
        if self._cumulative is None or probing:  # the probe measures every customer's data alike
            chosen = random.choice(records)
        else:
            chosen = random.choices(records, cum_weights=self._cumulative)[0]
        index = chosen.get("index")
        self._customer_index = int(index) if index is not None else None
        self._keep_fresh(chosen)
        return chosen

    @contextmanager
    def as_customer(self, customer: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        """Credit the requests and writes made inside the block to ``customer``, then restore.

        ::

            job = self.client.post("/queue/take", headers=auth(worker)).json()
            owner = self.customers()[job["submitter_index"]]
            with self.as_customer(owner):      # the receipt is the submitter's, read as them
                self.client.get(f"/jobs/{job['id']}/receipt", headers=auth(owner))

        The harness cannot see which credentials a request carried: without this, the receipt
        above is credited to the worker, and the submitter's marker in it looks like a leak.
        """
        index = customer.get("index") if isinstance(customer, Mapping) else None
        if index is None:
            raise ValueError(
                f"as_customer({customer!r:.80}): not a customer record with an 'index'; pass a "
                "record from self.customer() or self.customers()"
            )
        previous = self._customer_index
        self._customer_index = int(index)
        if isinstance(customer, dict):
            self._keep_fresh(customer)
        try:
            yield customer
        finally:
            self._customer_index = previous

    # credentials --------------------------------------------------------------------------

    def _keep_fresh(self, customer: dict[str, Any]) -> None:
        """Refresh the customer's credentials now if their stated expiry is near."""
        if self._refresher is not None and self._refresher.due(customer):
            began = time.perf_counter()
            self._count_refresh(self._refresher.keep_fresh, customer)
            self._not_the_service(time.perf_counter() - began)

    def _count_refresh(self, refresh: Callable[..., bool], *args: Any) -> bool:
        """Run a refresh and count it in the current phase (refreshed, or the hook failed)."""
        assert self._refresher is not None
        before = self._refresher.counts
        fresh = refresh(*args)
        after = self._refresher.counts
        tally = self._iteration.tally if self._iteration is not None else None
        if tally is not None:  # what this call did (another user may have refreshed meanwhile)
            tally.credential_refreshes += after.refreshed - before.refreshed
            tally.credential_refresh_failures += after.failed - before.failed
        return fresh

    def _not_the_service(self, seconds: float) -> None:
        """Take time the harness spent on credentials out of the iteration's latency.

        Latency counts from the iteration's intended start until its first request is sent
        (``harness.load.engine``); later requests count from their own send. Only time before the
        first request needs moving, and moving the intended start moves exactly that.
        """
        it = self._iteration
        if it is not None and not it.first_done:
            it.intended_wall += seconds

    def _owner_of(self, headers: Any) -> dict[str, Any] | None:
        """The customer whose credentials ``headers`` carry: the attributed one, else any."""
        from harness.credentials import holds_credentials

        assert self._refresher is not None and self._refresher.auth_headers is not None
        auth = self._refresher.auth_headers
        if headers is None:
            return None
        index = self._customer_index
        attributed = self.customers().get(index) if index is not None else None
        for record in (attributed, *self._records()):
            if record is not None and holds_credentials(headers, auth(record)):
                return record
        return None

    def _retry_refused(self, refresher: CredentialRefresher) -> None:
        """Send a request refused with 401 once more, with fresh credentials, measuring only the
        second answer. The first goes out with ``catch_response`` so nothing is reported until
        the harness knows which answer counts."""
        session = self.client
        original = session.request
        auth = refresher.auth_headers
        assert auth is not None

        def request(method: str, url: str, **kwargs: Any) -> Any:
            caller_catches = bool(kwargs.get("catch_response"))
            began = time.perf_counter()
            first = original(method, url, **{**kwargs, "catch_response": True})
            headers: dict[str, str] = kwargs.get("headers") or {}
            owner = self._owner_of(headers) if first.status_code == UNAUTHORIZED else None
            if owner is None or not self._count_refresh(refresher.after_refusal, owner, headers):
                return first if caller_catches else _report(first)
            stale = {k.lower() for k in auth(owner)}
            fresh = {k: v for k, v in headers.items() if k.lower() not in stale}
            self._not_the_service(time.perf_counter() - began)
            return original(method, url, **{**kwargs, "headers": {**fresh, **auth(owner)}})

        session.request = request  # type: ignore[method-assign,assignment]

    def write(
        self,
        kind: str,
        op: str,
        *,
        ident: object = None,
        content: dict[str, Any] | None = None,
        customer: dict[str, Any] | None = None,
    ) -> PendingWrite:
        """Record a write's intent in the ledger *before* sending it; ``done(status)`` on the answer.

        The write is credited to ``customer`` if given, else to the customer requests are credited
        to now (:meth:`as_customer`, or the last :meth:`customer`).

        ::

            with self.write("booking", "delete", ident=b, customer=c) as w:
                resp = self.client.post(f"/bookings/{b}/cancel", ...)
                w.done(resp.status_code or None)

        A write whose answer never came (a timeout, the task cut off when the load stopped at
        phase end) has an unknown outcome: the integrity checks accept both that it happened and
        that it did not. Prefer this to :meth:`record_write`, which is called after the answer,
        so a write cut off before it is missing from the ledger altogether.
        """
        from harness.integrity.ledger import PendingWrite, shared_ledger

        index = customer.get("index") if customer is not None else self._customer_index
        if index is None:
            return PendingWrite(None, 0)
        return shared_ledger().begin(
            customer=int(index), kind=kind, op=op, ident=ident, content=content
        )

    def record_write(
        self,
        kind: str,
        op: str,
        *,
        status: int | None,
        ident: object = None,
        content: dict[str, Any] | None = None,
        customer: dict[str, Any] | None = None,
        started: float | None = None,
    ) -> None:
        """Record a state-changing request in the operation ledger (see ``harness.integrity.ledger``).

        Call it once the answer is in: ``status`` None means no answer (timeout, reset), so the
        outcome is unknown. ``content`` is what was written, compared later with what reads
        back. A write the load cut off before this call is not recorded at all: use
        :meth:`write` (intent before sending) for writes that may be in flight at phase end.
        Outside the harness the ledger is a no-op.
        """
        from harness.integrity.ledger import shared_ledger

        index = customer.get("index") if customer is not None else self._customer_index
        if index is None:
            return
        shared_ledger().record(
            customer=int(index), kind=kind, op=op, status=status, ident=ident, content=content,
            started=started,
        )  # fmt: skip

    def context(self) -> dict[str, Any]:
        context: dict[str, Any] = {}
        if self._iteration is not None:
            context[ITERATION_CONTEXT_KEY] = self._iteration
        if self._customer_index is not None:
            context[CUSTOMER_CONTEXT_KEY] = self._customer_index
        return context

    def run(self) -> None:  # type: ignore[misc]  # Locust marks run() final; we only swap the root task set
        pacer = getattr(self.environment, PACER_ATTRIBUTE, None)
        if pacer is None:
            return super().run()
        self._state = LOCUST_STATE_RUNNING
        self._taskset_instance = _PacedTaskSet(self, pacer)
        from gevent import GreenletExit
        from locust.exception import StopTest

        try:
            try:
                self.on_start()
            except Exception as e:
                if not isinstance(e, (StopUser, StopTest)):
                    self.environment.events.user_error.fire(
                        user_instance=self, exception=e, tb=e.__traceback__
                    )
                raise
            self._taskset_instance.run()
        except (GreenletExit, StopUser, StopTest):
            self.on_stop()
