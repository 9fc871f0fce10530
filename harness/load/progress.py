"""The engine child's progress: one JSON line a second on its stdout, read by the parent.

Everything else the child says goes to its stderr (the engine log), so every line on stdout is a
progress line. Imports no Locust.
"""

from __future__ import annotations

import json
import sys

__all__ = ["print_progress"]


def print_progress(label: str, elapsed: float, duration: float, rps: float, errors: int,
                   users: int, dropped: int) -> None:
    line = {"phase": label, "elapsed": round(elapsed, 2), "duration": duration, "rps": round(rps, 1),
            "errors": errors, "users": users, "dropped": dropped}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
