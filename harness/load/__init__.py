"""The load stage: open-model arrival-rate load on Locust, measured with HDR histograms.

The parent side (this package's public surface) never imports Locust: ``run_load`` starts
``python -m harness.load.engine`` as a child process and turns its output into records.
"""

from harness.load.plan import LoadPlan, PhasePlan, tier_plan
from harness.load.progress import LoadProgress
from harness.load.stage import LoadOutcome, run_load

__all__ = ["LoadOutcome", "LoadPlan", "LoadProgress", "PhasePlan", "run_load", "tier_plan"]
