"""Fixtures shared by the booking pack's regression suite (tests/) and properties (properties/).

The target comes from ``--target-url`` / ``SCALEREADY_TARGET_URL`` (see ``harness.pytest_plugin``).
With neither set, the session starts the bundled demo service itself on a free loopback port
with a fresh SQLite file, and stops it at the end, so ``pytest scenarios/booking/tests`` works
on a fresh checkout. ``BOOKING_FLAW=name[,name]`` (read by the service itself) starts that
demo with named flaws, e.g. ``BOOKING_FLAW=tenant-leak pytest scenarios/booking/tests``.

Every test works inside clinics it creates (``new_clinic``), each with a unique name and marker,
so tests neither see nor disturb each other's data and can run against a target that already
holds other customers.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.pack_api import configured_target_url, request_hooks, request_timeout_s

pytest_plugins = ["harness.pytest_plugin"]

PACK_DIR = Path(__file__).resolve().parent
DEMO_START_TIMEOUT_S = 30.0
API_KEY_HEADER = "X-API-Key"


# --- the target -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_demo_service(workdir: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = _free_port()
    log_path = workdir / "booking_service.log"
    args = [
        sys.executable, "-m", "booking_service",
        "--port", str(port), "--db", str(workdir / "booking.sqlite3"),
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            args, cwd=PACK_DIR, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    return proc, f"http://127.0.0.1:{port}", log_path


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + DEMO_START_TIMEOUT_S
    with httpx.Client(base_url=url, timeout=1.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                if client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
    state = f"exited with code {proc.returncode}" if proc.poll() is not None else "never healthy"
    pytest.fail(
        f"The bundled demo service ({url}) {state} within {DEMO_START_TIMEOUT_S:.0f} s; "
        f"its output:\n{tail}\nPass --target-url to test a service that is already running.",
        pytrace=False,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def target_url(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The configured target, or the bundled demo service started for this session."""
    url = configured_target_url(pytestconfig)
    if url is not None:
        yield url
        return
    proc, url, log_path = _start_demo_service(tmp_path_factory.mktemp("booking_service"))
    try:
        _wait_healthy(proc, url, log_path)
        yield url
    finally:
        _stop(proc)


# --- the API, as a tenant sees it ---------------------------------------------------------------


def expect(response: httpx.Response, *statuses: int) -> Any:
    """Assert the response status is one of `statuses`; return the JSON body (or None)."""
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.url} -> {response.status_code}, "
        f"expected {' or '.join(map(str, statuses))}: {response.text[:500]}"
    )
    return response.json() if response.content else None


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Clinic:
    """One tenant of the booking service, with an authenticated client and small helpers."""

    id: int
    name: str
    marker: str
    api_key: str
    client: httpx.Client
    body: dict[str, Any] = field(repr=False)

    def practitioner(self, name: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {"name": name or unique("Dr Practitioner"), **fields}
        return expect(self.client.post("/practitioners", json=body), 201)  # type: ignore[no-any-return]

    def patient(self, name: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {"name": name or unique("Patient"), **fields}
        return expect(self.client.post("/patients", json=body), 201)  # type: ignore[no-any-return]

    def free_slots(self, practitioner_id: int, day: date | str) -> list[str]:
        """Start times ("YYYY-MM-DDTHH:MM") of the practitioner's free slots on `day`."""
        response = self.client.get(
            "/slots", params={"practitioner_id": practitioner_id, "date": str(day)}
        )
        return [slot["start"] for slot in expect(response, 200)["slots"]]

    def book(
        self, practitioner_id: int, patient_id: int, start: str, **fields: Any
    ) -> httpx.Response:
        body = {"practitioner_id": practitioner_id, "patient_id": patient_id, "start": start}
        return self.client.post("/bookings", json={**body, **fields})

    def cancel(self, booking_id: int) -> httpx.Response:
        return self.client.post(f"/bookings/{booking_id}/cancel")

    def search_patients(self, q: str, limit: int = 100) -> list[dict[str, Any]]:
        response = self.client.get("/patients", params={"q": q, "limit": limit})
        return expect(response, 200)  # type: ignore[no-any-return]


NewClinic = Callable[..., Clinic]


@pytest.fixture(scope="session")
def transport() -> Iterator[httpx.HTTPTransport]:
    """One connection pool for every clinic's client.

    A new ``httpx.Client`` builds its own TLS context (over 100 ms here) and opens its own
    connections; clinics are created by the hundred in properties, so they share this.
    """
    with httpx.HTTPTransport() as shared:
        yield shared


@pytest.fixture(scope="session")
def new_clinic(target_url: str, transport: httpx.HTTPTransport) -> NewClinic:
    """Factory: sign up a fresh clinic (unique name and marker) and return it authenticated.

    Session-scoped so Hypothesis properties may call it from inside an example.
    """
    timeout = request_timeout_s()
    # request_hooks(): under an audit with target.max_rps, every client keeps it together.
    signup = httpx.Client(base_url=target_url, timeout=timeout, transport=transport, event_hooks=request_hooks())

    def make(name: str | None = None, **fields: Any) -> Clinic:
        marker = fields.pop("marker", None) or unique("sr-booking")
        body = {"name": name or unique("Clinic"), "marker": marker, **fields}
        created = expect(signup.post("/clinics", json=body), 201)
        # Not closed one by one: closing a client closes the shared transport.
        client = httpx.Client(
            base_url=target_url,
            timeout=timeout,
            headers={API_KEY_HEADER: created["api_key"]},
            transport=transport,
            event_hooks=request_hooks(),
        )
        return Clinic(
            id=created["id"],
            name=created["name"],
            marker=created.get("marker") or marker,
            api_key=created["api_key"],
            client=client,
            body=created,
        )

    return make


@pytest.fixture
def clinic(new_clinic: NewClinic) -> Clinic:
    """A fresh clinic for this test alone (default hours: Mon–Fri 09:00–17:00)."""
    return new_clinic()


@pytest.fixture
def practitioner(clinic: Clinic) -> dict[str, Any]:
    """A practitioner of `clinic` with 30-minute slots."""
    return clinic.practitioner(specialty="general practice", slot_minutes=30)


@pytest.fixture
def patient(clinic: Clinic) -> dict[str, Any]:
    return clinic.patient(email="patient@example.test", phone="+44 20 7946 0000")


def open_monday(weeks_ahead: int = 3, today: date | None = None) -> date:
    """A Monday `weeks_ahead` weeks from now: open by default, comfortably in the future."""
    today = today or date.today()
    return today + timedelta(days=7 * weeks_ahead - today.weekday())


@pytest.fixture(scope="session")
def booking_day() -> date:
    """An open weekday in the future (Mon–Fri 09:00–17:00 is every clinic's default)."""
    return open_monday()


@pytest.fixture(scope="session")
def closed_day(booking_day: date) -> date:
    """The Saturday after `booking_day`: closed by default."""
    return booking_day + timedelta(days=5)
