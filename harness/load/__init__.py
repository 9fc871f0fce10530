"""The load stage: open-model arrival-rate load on Locust, measured with HDR histograms.

The parent side (this package's public surface) never imports Locust: ``run_load`` starts
``python -m harness.load.engine`` as a child process and turns its output into records.

Parent side (no Locust, no gevent; a test checks it)
    plan          what the engine is asked to do (LoadPlan, PhasePlan)
    stage         run_load: start the engine child, follow it, stop it, read its result
    progress      the one-line-a-second progress (LoadProgress)
    result_file   load-result.json, the phases the child hands back
    results       a phase's tally -> its PhaseMeasurement record; the generator's health
    tally         the phase tally: counted live, frozen (PhaseTally), merged across workers
    phases        phases in order, stress steps ended once one trips
    recording     HDR histograms: recorded, encoded, merged, summarised
    machine       what the machine under the generator was doing (CPU wait, steal)
    noise_floor   the built-in null target and the harness's own latency floor on it
Engine child side (Locust, gevent)
    engine        the Engine (pools, request hook, run_phase), run_local, the entry point
    timing        intended-start timing (coordinated omission): arrivals and their tokens
    distributed   Locust master and workers
    failures      why a request failed; the samples kept to replay it
    locustfile    loading the pack's user classes
    bounding      a deadline and a size limit on every request
    waiting       sub-millisecond waits inside gevent
    kit           what a pack's locustfile imports (CustomerUser)
"""

from harness.load.plan import LoadPlan, PhasePlan, tier_plan
from harness.load.progress import LoadProgress
from harness.load.stage import LoadOutcome, run_load

__all__ = ["LoadOutcome", "LoadPlan", "LoadProgress", "PhasePlan", "run_load", "tier_plan"]
