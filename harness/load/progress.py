"""The engine child's progress: one JSON line a second on its stdout, read by the parent.

Everything else the child says goes to its stderr (the engine log), so a line on stdout is a
progress line, unless a locustfile prints: a line that is not one is skipped. Imports no Locust.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, fields

__all__ = ["LoadProgress", "print_progress"]

@dataclass(frozen=True)
class LoadProgress:
    """One second of a running phase, summed over the engine's processes."""

    phase: str  # the phase's label: "warmup", "steady", "stress x2", ...
    elapsed: float  # seconds into the phase
    duration: float  # the phase's planned length, seconds
    rps: float  # requests recorded in the last second
    errors: int  # failed requests so far in the phase
    users: int  # virtual users in the pools
    dropped: int  # iterations that could not start, so far in the phase

    def to_line(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_line(cls, line: str) -> LoadProgress | None:
        """The progress a line carries; None for a blank line or one that is not progress."""
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            return None
        if not isinstance(data, dict) or set(data) != _FIELDS:
            return None
        return cls(**data)


_FIELDS = frozenset(f.name for f in fields(LoadProgress))


def print_progress(label: str, elapsed: float, duration: float, rps: float, errors: int,
                   users: int, dropped: int) -> None:
    """Write one progress line on stdout (the engine child)."""
    progress = LoadProgress(phase=label, elapsed=round(elapsed, 2), duration=duration, rps=round(rps, 1),
                            errors=errors, users=users, dropped=dropped)  # fmt: skip
    sys.stdout.write(progress.to_line() + "\n")
    sys.stdout.flush()
