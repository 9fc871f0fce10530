"""Recommendations: one project-written text per finding category, ranked by impact then effort."""

from __future__ import annotations

import pytest

from harness.records import CATEGORIES
from harness.report.recommendations import (
    EFFORT_ORDER,
    RECOMMENDATIONS,
    rank_key,
    recommendation_for,
)


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_finding_category_has_a_recommendation(category: str) -> None:
    rec = RECOMMENDATIONS[category]
    assert rec.category == category
    assert rec.name and rec.problem and rec.effort in EFFORT_ORDER
    assert len(rec.meaning) > 80  # what it usually means, in sentences
    assert rec.actions and all(a.endswith(".") for a in rec.actions)
    assert rec.problem.format(where="GET /x")  # a phrase that completes "we recommend fixing ..."


def test_no_recommendation_for_a_category_that_does_not_exist() -> None:
    assert set(RECOMMENDATIONS) == set(CATEGORIES)


def test_a_category_from_a_newer_harness_gets_a_generic_recommendation() -> None:
    assert recommendation_for("a-category-from-the-future").actions


def test_ranking_puts_impact_first_then_the_smaller_job() -> None:
    ranked = sorted(
        [("medium", "coherency"), ("high", "contention"), ("high", "data-volume-scaling"), ("critical", "coherency")],
        key=lambda sc: rank_key(*sc),
    )
    # critical first; of the two highs, the index (small) before the lock scope (medium)
    assert ranked == [("critical", "coherency"), ("high", "data-volume-scaling"), ("high", "contention"),
                      ("medium", "coherency")]  # fmt: skip
