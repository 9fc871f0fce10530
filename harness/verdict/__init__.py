"""The verdict: READY, AT RISK, NOT READY or INCONCLUSIVE, with the findings that decide it.

    policy     what counts as passing (VerdictPolicy) and how findings are reproduced
    tier       one tier judged: status, reason, findings
    rules/     the registered rules, one module per family (see rules/__init__.py)
    judge      runs the tiers and the rules, and combines them into the verdict
    scores     the five area scores

Pure: no I/O, no printing, no Locust, httpx or matplotlib.
"""

from harness.verdict.judge import Judgement, judge, tier_status
from harness.verdict.policy import EndpointSlo, ReproduceContext, VerdictPolicy
from harness.verdict.scores import area_scores, lognormal_score

__all__ = [
    "EndpointSlo",
    "Judgement",
    "ReproduceContext",
    "VerdictPolicy",
    "area_scores",
    "judge",
    "lognormal_score",
    "tier_status",
]
