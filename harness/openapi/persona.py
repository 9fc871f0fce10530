"""The Locust user a generated locustfile's personas derive from: ``self.call(label)`` sends
one operation as a random provisioned customer, filled from what that customer has seen.

Each user keeps, per customer, the values it learnt (starting from the customer record's
``known``), so an id its POST created is what its next GET reads. A create or hard delete of a
resource the integrity checks can read back goes into the operation ledger (intent before the
request). Answers count as failures when the service could not serve them (no answer, 5xx) or
refused the load itself (401, 403, 407, 429); any other 4xx is the service refusing one
request it may rightly refuse, such as a slot already taken.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Mapping
from typing import Any, ClassVar

from harness.load.kit import CustomerUser
from harness.openapi.service import OpenApiService
from harness.openapi.values import KnownValues

__all__ = ["OpenApiUser"]


class OpenApiUser(CustomerUser):
    abstract = True
    service: ClassVar[OpenApiService]  # set by the locustfile: openapi_service(PACK / "openapi.json")

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._known: dict[int, KnownValues] = {}

    def _known_for(self, customer: Mapping[str, Any]) -> KnownValues:
        index = int(customer.get("index", -1))
        if index not in self._known:
            self._known[index] = KnownValues.from_record(customer.get("known"))
        return self._known[index]

    def call(self, label: str, **overrides: Any) -> Any:
        """Send operation ``label`` ("GET /patients/{patient_id}") as a random customer.

        ``overrides``: ``json={...}`` merged over the generated body, ``params={...}`` over the
        query. Returns the answer's JSON (None when it is not JSON or not 2xx).
        """
        customer = self.customer()
        known = self._known_for(customer)
        request = self.service.prepare(label, known, random.Random(random.getrandbits(32)),
                                       marker=str(customer.get("marker", "")), customer=customer,
                                       overrides=overrides)  # fmt: skip
        entry = self.service.ledger_entry(label, request)
        pending = (
            self.write(entry[0], entry[1], ident=entry[2], content=entry[3], customer=customer)
            if entry is not None else contextlib.nullcontext()
        )  # fmt: skip
        payload = None
        with pending as write, self.client.request(
            request.method, self.service.url(request), name=label, headers=request.headers,
            json=request.json if request.has_body else None, catch_response=True,
        ) as resp:  # fmt: skip
            status = resp.status_code or 0
            if self.service.counts_as_failure(status):
                resp.failure(f"status {status}")
            else:
                resp.success()
            if 200 <= status < 300:
                with contextlib.suppress(ValueError):
                    payload = resp.json()
            ident = self.service.learn(label, known, request, status, payload)
            if write is not None:
                # an answer we cannot read the id from is acknowledged but unknown in effect
                unreadable = entry is not None and entry[1] == "create" and 200 <= status < 300 and ident is None
                write.done(None if unreadable else (status or None),
                           ident=ident if entry is not None and entry[1] == "create" else entry[2] if entry else None)  # fmt: skip
        return payload
