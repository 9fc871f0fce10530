"""``load-result.json``: the phases the engine child measured, as it hands them to the parent.

The child rewrites the file after every phase (write, then rename: never half a file), so a
crash, a kill or a deadline keeps every phase that finished. The parent (``harness.load.stage``)
reads it once the child has exited. Imports no Locust.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.load.plan import LoadPlan
from harness.load.results import phase_from_dict, phase_to_dict, tally_to_phase
from harness.load.tally import PhaseTally
from harness.records import PhaseMeasurement
from harness.validity import Thresholds

__all__ = ["RESULT_FILE", "EngineResult", "ResultWriter", "read_result"]

RESULT_FILE = "load-result.json"


@dataclass(frozen=True)
class EngineResult:
    """What the engine child wrote: the phases it completed, its error, whether it was stopped."""

    phases: tuple[PhaseMeasurement, ...]
    error: str | None
    interrupted: bool


class ResultWriter:
    """The child's side: each finished phase becomes a record and is written at once."""

    def __init__(self, plan: LoadPlan) -> None:
        self.output_dir = Path(plan.output_dir)
        self.thresholds = Thresholds(
            plan.saturation_cpu_pct,
            plan.saturation_loop_lag_p99_ms,
            plan.saturation_dropped_ratio,
            plan.saturation_steal_pct,
        )
        self.phases: list[dict[str, Any]] = []

    def add(self, tally: PhaseTally, *, interrupted: bool) -> PhaseMeasurement:
        """Judge a phase's (merged) tally, keep it, rewrite the file; returns the record."""
        record = tally_to_phase(tally, self.thresholds)
        self.phases.append(phase_to_dict(record))
        self.write(None, interrupted)
        return record

    def write(self, error: str | None, interrupted: bool) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.output_dir / (RESULT_FILE + ".tmp")
        data = {"phases": self.phases, "error": error, "interrupted": interrupted}
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.output_dir / RESULT_FILE)


def read_result(output_dir: Path) -> EngineResult:
    """The parent's side. Raises FileNotFoundError, or ValueError/KeyError/TypeError if unreadable."""
    data = json.loads((Path(output_dir) / RESULT_FILE).read_text(encoding="utf-8"))
    return EngineResult(
        phases=tuple(phase_from_dict(p) for p in data.get("phases", ())),
        error=data.get("error"),
        interrupted=bool(data.get("interrupted")),
    )
