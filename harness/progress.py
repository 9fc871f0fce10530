"""What a running audit tells its observer: typed events, so a display cannot misspell a key.

Imports nothing heavy, so the command line can draw them without loading the stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.load.progress import LoadProgress

__all__ = ["LoadProgress", "Provisioning", "TierEvent", "TierStep"]


@dataclass(frozen=True)
class Provisioning:
    """Creating customers for a tier: ``done`` of ``total`` created so far in this pass."""

    customers: int  # the tier
    done: int
    total: int


@dataclass(frozen=True)
class TierStep:
    """A tier moved on to a step after its load: replaying server errors, the overlap probe,
    checking integrity."""

    step: Literal["replay", "overlap", "integrity"]


#: What a tier tells its observer while it runs.
TierEvent = Provisioning | LoadProgress | TierStep
