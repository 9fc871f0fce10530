"""Fixtures for the invoicing pack's tests/ and properties/.

The target comes from ``--target-url`` / ``SCALEREADY_TARGET_URL``; with neither set, the session
starts invoicing_service itself on a free loopback port with a fresh SQLite file. Every test works
inside companies it signs up (``new_company``), so it can run against a target that already holds
other customers.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.pack_api import configured_target_url, request_hooks, request_timeout_s

pytest_plugins = ["harness.pytest_plugin"]

PACK_DIR = Path(__file__).resolve().parent
START_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def target_url(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The configured target, or invoicing_service started for this session."""
    url = configured_target_url(pytestconfig)
    if url is not None:
        yield url
        return
    workdir = tmp_path_factory.mktemp("invoicing_service")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "invoicing_service", "--port", str(port), "--db", str(workdir / "db.sqlite3")]
    with open(workdir / "service.log", "wb") as log:
        proc = subprocess.Popen(args, cwd=PACK_DIR, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            log_tail = (workdir / "service.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"invoicing_service ({url}) did not become healthy: {log_tail}", pytrace=False)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def expect(response: httpx.Response, *statuses: int) -> Any:
    """Assert the response status is one of ``statuses``; return the JSON body (or None)."""
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.url} -> {response.status_code}, "
        f"expected {' or '.join(map(str, statuses))}: {response.text[:500]}"
    )
    return response.json() if response.content else None


@dataclass
class Company:
    """One tenant, with a client that sends its bearer token."""

    id: int
    marker: str
    api_key: str
    client: httpx.Client


NewCompany = Callable[[], Company]


@pytest.fixture(scope="session")
def new_company(target_url: str) -> Iterator[NewCompany]:
    """Factory: sign up a fresh company (unique marker), take a token, return it authenticated."""
    clients: list[httpx.Client] = []
    signup = httpx.Client(base_url=target_url, timeout=request_timeout_s(), event_hooks=request_hooks())
    clients.append(signup)

    def make() -> Company:
        marker = f"sr-invoicing-{uuid.uuid4().hex[:10]}"
        company = expect(signup.post("/companies", json={"name": f"Company {marker}", "marker": marker}), 201)
        token = expect(signup.post("/tokens", headers={"X-API-Key": company["api_key"]}), 201)
        client = httpx.Client(base_url=target_url, timeout=request_timeout_s(), event_hooks=request_hooks(),
                              headers={"Authorization": f"Bearer {token['token']}"})  # fmt: skip
        clients.append(client)
        return Company(id=company["id"], marker=marker, api_key=company["api_key"], client=client)

    yield make
    for client in clients:
        client.close()
