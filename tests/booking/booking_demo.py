"""The bundled booking demo as a test sees it: `Demo` (one running service), `Tenant` (one
clinic through its API key). The `demo` fixture (conftest.py) starts the services.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

PACK_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "booking"
if str(PACK_DIR) not in sys.path:
    sys.path.insert(0, str(PACK_DIR))  # booking_service, for the in-process tests


@dataclass
class Demo:
    flaw: str
    url: str
    db_path: Path

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0, **kw)

    def new_clinic(self, **body: Any) -> Tenant:
        marker = "m" + uuid.uuid4().hex[:10]
        with self.client() as c:
            r = c.post("/clinics", json={"name": f"Clinic {marker}", "marker": marker, **body})
        assert r.status_code == 201, r.text
        data = r.json()
        return Tenant(self, int(data["id"]), data["api_key"], marker)


@dataclass
class Tenant:
    demo: Demo
    id: int
    api_key: str
    marker: str

    def client(self) -> httpx.Client:
        return self.demo.client(headers={"X-API-Key": self.api_key})

    def post(self, path: str, body: Any) -> httpx.Response:
        with self.client() as c:
            return c.post(path, json=body)

    def get(self, path: str) -> httpx.Response:
        with self.client() as c:
            return c.get(path)

    def practitioner(self, **body: Any) -> int:
        r = self.post("/practitioners", {"name": "Dr Helen Smith", "slot_minutes": 30, **body})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def patient(self, name: str = "Ada Lovelace") -> int:
        r = self.post("/patients/import", {"patients": [{"name": name}]})  # no per-name audit line
        assert r.status_code == 201, r.text
        return int(r.json()["ids"][0])


def next_weekday(offset_days: int = 7) -> date:
    day = date.today() + timedelta(days=offset_days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


