"""How one service process is configured: frozen at start, passed to whatever needs it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from booking_service.flaws import Flaw


@dataclass(frozen=True)
class Settings:
    #: SQLite file (ignored when `database_url` is set).
    db_path: Path | None = None
    #: ``postgresql://...``: use PostgreSQL instead of SQLite.
    database_url: str | None = None
    flaws: frozenset[Flaw] = field(default_factory=frozenset)
    #: Where the audit log goes (the folder of the SQLite file by default).
    state_dir: Path | None = None
    #: Extra CPU time per request of some endpoints, in ms (``BOOKING_SLOWDOWN="GET /slots=0.6"``):
    #: a slower release of one endpoint, for the harness's baseline-regression measurements.
    slowdown_ms: dict[str, float] = field(default_factory=dict)

    def to_env(self) -> str:
        """The settings as one environment value (for worker processes started by import string)."""
        return json.dumps({
            "db_path": str(self.db_path) if self.db_path else None, "database_url": self.database_url,
            "flaws": sorted(f.value for f in self.flaws),
            "state_dir": str(self.state_dir) if self.state_dir else None, "slowdown_ms": self.slowdown_ms,
        })  # fmt: skip

    @classmethod
    def from_env(cls, value: str) -> Settings:
        data = json.loads(value)
        return cls(
            db_path=Path(data["db_path"]) if data["db_path"] else None,
            database_url=data["database_url"],
            flaws=frozenset(Flaw(f) for f in data["flaws"]),
            state_dir=Path(data["state_dir"]) if data["state_dir"] else None,
            slowdown_ms=dict(data.get("slowdown_ms") or {}),
        )

    def has(self, flaw: Flaw) -> bool:
        return flaw in self.flaws

    @property
    def pool_size(self) -> int:
        if self.has(Flaw.POOL_EXHAUSTION):
            # "4 is plenty: every query takes a millisecond" - true, until connections are held
            # for a whole request under load.
            return 4
        # One connection per worker thread (anyio's default thread limiter is 40): a request
        # never waits for a connection. PostgreSQL connections are dearer: 16 is its default.
        return 16 if self.database_url else 40

    @property
    def pool_timeout_s(self) -> float:
        return 0.25 if self.has(Flaw.POOL_EXHAUSTION) else 10.0

    @property
    def backend(self) -> str:
        return "postgresql" if self.database_url else "sqlite"


def parse_slowdown(text: str) -> dict[str, float]:
    """``"GET /slots=0.6, GET /bookings=1"`` -> {"GET /slots": 0.6, "GET /bookings": 1.0} (ms)."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, ms = part.rpartition("=")
        try:
            value = float(ms)
        except ValueError:
            value = -1.0
        if not name.strip() or value < 0:
            raise ValueError(f"BOOKING_SLOWDOWN={text!r}: write ENDPOINT=MS pairs, e.g. 'GET /slots=0.6'")
        out[" ".join(name.split())] = value
    return out
