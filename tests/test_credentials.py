"""harness.credentials: when the pack's refresh_credentials is called, and what it changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from harness.credentials import (
    EXPIRES_AT_KEY,
    CredentialRefresher,
    FreshCustomers,
    RefreshCounts,
    RefreshOnRefusal,
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TokenDesk:
    """A pack's hook: each call hands out the next token, valid for ``ttl_s`` from the clock."""

    def __init__(self, clock: Clock, ttl_s: float = 60.0) -> None:
        self.clock, self.ttl_s, self.calls = clock, ttl_s, 0

    def __call__(self, client: httpx.Client, customer: Mapping[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return {"token": f"t{self.calls}", EXPIRES_AT_KEY: self.clock() + self.ttl_s}


def auth(customer: Mapping[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {customer['token']}"}


def refresher(hook: Any, clock: Clock) -> CredentialRefresher:
    return CredentialRefresher(hook, lambda: httpx.Client(), auth_headers=auth, clock=clock, ahead_s=5.0)


def test_credentials_are_refreshed_only_within_the_lead_time_of_their_stated_expiry() -> None:
    clock = Clock(1000.0)
    desk = TokenDesk(clock)
    r = refresher(desk, clock)
    customer = {"index": 0, "token": "t0", EXPIRES_AT_KEY: 1010.0}
    assert r.keep_fresh(customer) is False and desk.calls == 0  # 10 s left: not yet
    clock.now = 1005.5
    assert r.keep_fresh(customer) is True
    assert customer == {"index": 0, "token": "t1", EXPIRES_AT_KEY: 1065.5}
    assert r.keep_fresh(customer) is False and desk.calls == 1  # fresh now: no second call
    assert r.counts == RefreshCounts(refreshed=1, failed=0)


def test_a_record_without_a_stated_expiry_is_never_refreshed_ahead() -> None:
    clock = Clock(1000.0)
    desk = TokenDesk(clock)
    r = refresher(desk, clock)
    for record in ({"index": 1, "token": "t0"}, {"index": 2, "token": "t0", EXPIRES_AT_KEY: "soon"}):
        assert r.keep_fresh(record) is False
    assert desk.calls == 0


def test_after_a_401_a_record_refreshed_meanwhile_is_not_refreshed_again() -> None:
    clock = Clock(1000.0)
    desk = TokenDesk(clock)
    r = refresher(desk, clock)
    customer = {"index": 0, "token": "t0"}
    sent = auth(customer)
    assert r.after_refusal(customer, sent) is True and customer["token"] == "t1"
    # A second request sent with the same stale token: the record already holds another one.
    assert r.after_refusal(customer, sent) is True and desk.calls == 1
    # Refused with the new token too: that is worth one more refresh.
    assert r.after_refusal(customer, auth(customer)) is True and desk.calls == 2


@pytest.mark.parametrize("hook_result", [RuntimeError("token endpoint down"), None])
def test_a_failing_hook_is_counted_and_leaves_the_record_alone(hook_result: Any) -> None:
    def hook(client: httpx.Client, customer: Mapping[str, Any]) -> Any:
        if isinstance(hook_result, Exception):
            raise hook_result
        return hook_result

    clock = Clock(1000.0)
    r = refresher(hook, clock)
    customer = {"index": 0, "token": "t0", EXPIRES_AT_KEY: 999.0}
    assert r.keep_fresh(customer) is False
    assert r.after_refusal(customer, auth(customer)) is False
    assert customer["token"] == "t0" and r.counts == RefreshCounts(refreshed=0, failed=2)


def test_fresh_customers_refresh_only_the_records_looked_up() -> None:
    clock = Clock(1000.0)
    desk = TokenDesk(clock)
    records = {i: {"index": i, "token": "t0", EXPIRES_AT_KEY: 1001.0} for i in range(3)}
    fresh = FreshCustomers(records, refresher(desk, clock))
    assert sorted(fresh) == [0, 1, 2] and len(fresh) == 3 and desk.calls == 0
    assert fresh[1]["token"] == "t1"
    assert [records[i]["token"] for i in range(3)] == ["t0", "t1", "t0"]


class TokenService:
    """Answers 200 to the one token it issued last per customer, 401 to anything else."""

    def __init__(self) -> None:
        self.valid: dict[str, str] = {}
        self.seen: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        sent = request.headers.get("Authorization", "")
        self.seen.append(sent)
        return httpx.Response(200 if sent and sent in self.valid.values() else 401)


def test_a_401_to_a_customers_request_after_the_load_is_refreshed_and_sent_once_more() -> None:
    service = TokenService()
    clock = Clock(1000.0)
    calls = 0

    def hook(client: httpx.Client, customer: Mapping[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        service.valid[str(customer["index"])] = f"Bearer fresh{calls}"
        return {"token": f"fresh{calls}"}

    customers = [{"index": 0, "token": "stale"}, {"index": 1, "token": "stale1"}]
    sent_hooks: list[str] = []
    transport = RefreshOnRefusal(httpx.MockTransport(service.handle), customers, refresher(hook, clock),
                                 on_send=[lambda r: sent_hooks.append(r.headers["Authorization"])])  # fmt: skip
    with httpx.Client(base_url="http://target.test", transport=transport) as client:
        assert client.get("/items", headers=auth(customers[0])).status_code == 200
        assert customers[0]["token"] == "fresh1" and sent_hooks == ["Bearer fresh1"]
        # A second request still carrying the stale token: its owner is known, no second refresh.
        assert client.get("/items", headers={"Authorization": "Bearer stale"}).status_code == 200
        # No customer's credentials, or credentials of nobody known: the 401 is the answer.
        assert client.get("/items").status_code == 401
        assert client.get("/items", headers={"Authorization": "Bearer someone"}).status_code == 401
    assert calls == 1
    assert service.seen == ["Bearer stale", "Bearer fresh1", "Bearer stale", "Bearer fresh1", "", "Bearer someone"]
