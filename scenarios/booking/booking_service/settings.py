"""How one service process is configured: frozen at start, passed to whatever needs it."""

from __future__ import annotations

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
