"""How the harness writes an instant: ISO 8601 UTC with milliseconds, in every file it writes."""

from __future__ import annotations

import math
from datetime import UTC, datetime

__all__ = ["iso_utc"]


def iso_utc(ts: float | None) -> str | None:
    """Unix time -> ``2026-11-23T10:15:00.000Z`` (None stays None)."""
    if ts is None or not math.isfinite(ts):
        return None
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
