"""BOOKING_SLOWDOWN: one endpoint of the demo made slower by a fixed CPU time per request."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from booking_demo import PACK_DIR  # noqa: F401 - puts booking_service on the path
from booking_service.app import create_app
from booking_service.settings import Settings, parse_slowdown
from fastapi.testclient import TestClient


def test_the_setting_reads_endpoint_and_milliseconds() -> None:
    assert parse_slowdown("GET /slots=0.6, GET  /bookings=1") == {"GET /slots": 0.6, "GET /bookings": 1.0}
    assert parse_slowdown("") == {}
    with pytest.raises(ValueError, match="ENDPOINT=MS"):
        parse_slowdown("GET /slots")


def _slots_ms(tmp_path: Path, slowdown: dict[str, float]) -> float:
    with TestClient(create_app(Settings(db_path=tmp_path / f"{len(slowdown)}.sqlite3", slowdown_ms=slowdown))) as client:
        key = client.post("/clinics", json={"name": "Clinic a", "marker": "ma"}).json()["api_key"]
        headers = {"X-API-Key": key}
        client.get("/slots?practitioner_id=1&date=2030-01-07", headers=headers)  # warm
        took = []
        for _ in range(5):
            started = time.perf_counter()
            client.get("/slots?practitioner_id=1&date=2030-01-07", headers=headers)
            took.append((time.perf_counter() - started) * 1000)
        return min(took)  # the fastest of five: the least of the machine's noise


def test_only_the_named_endpoint_gets_slower(tmp_path: Path) -> None:
    plain = _slots_ms(tmp_path, {})
    slower = _slots_ms(tmp_path, {"GET /slots": 40.0, "GET /clinic": 0.0})
    assert slower >= 40.0 > plain + 20.0  # every request spins its 40 ms; the plain one takes a few
