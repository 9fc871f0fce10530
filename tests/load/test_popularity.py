"""Customer popularity: which customer each action acts for, under the real engine.

A locustfile names each request by the customer it acts for, so the engine's own per-endpoint
counts say how the load spread over the customers: skewed (Zipf) in the load phases, uniform in
the data-volume probe, which must see every customer's data.
"""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path

import pytest

from harness.load import LoadPlan, PhasePlan, run_load
from harness.load.noise_floor import run_null_target
from harness.load.popularity import cumulative_weights, from_env_value, to_env_value
from harness.records import Popularity

BY_CUSTOMER = """
from harness.load.kit import CustomerUser, task

class Visitor(CustomerUser):
    @task
    def home(self):
        c = self.customer()
        self.client.get("/", name=f"customer {c['index']}")
"""

CUSTOMERS = 10


def _run(tmp_path: Path, phase: PhasePlan, popularity: Popularity) -> dict[int, int]:
    lf = tmp_path / "locustfile.py"
    lf.write_text(textwrap.dedent(BY_CUSTOMER), encoding="utf-8")
    customers = tmp_path / "customers.jsonl"
    # Written out of order: the ranks follow the index, not the file's order.
    records = [{"index": i, "id": i, "api_key": f"k{i}", "marker": f"m{i}"} for i in range(CUSTOMERS)]
    random.Random(4).shuffle(records)
    customers.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    with run_null_target(service_ms=0) as url:
        outcome = run_load(LoadPlan(locustfile=str(lf), host=url, output_dir=str(tmp_path / "out"), phases=(phase,),
                                    customers_file=str(customers), popularity=popularity))  # fmt: skip
    (measured,) = outcome.phases
    return {int(e.name.split()[1]): e.requests for e in measured.endpoints}


def test_zipf_popularity_gives_the_top_customers_their_share_of_the_load(tmp_path: Path) -> None:
    counts = _run(tmp_path, PhasePlan("steady", "steady", 200, 2.0), Popularity("zipf", 1.0))
    total = sum(counts.values())
    assert total >= 300
    expected = Popularity("zipf", 1.0).top_share(CUSTOMERS)  # 0.34 for rank 1 of 10
    assert abs(counts.get(0, 0) / total - expected) < 0.08
    assert counts.get(0, 0) > 4 * counts.get(9, 0)


def test_the_probe_draws_customers_uniformly_whatever_the_popularity(tmp_path: Path) -> None:
    counts = _run(tmp_path, PhasePlan("probe", "probe", 200, 2.0), Popularity("zipf", 1.0))
    total = sum(counts.values())
    assert len(counts) == CUSTOMERS  # every customer's data is measured
    assert counts.get(0, 0) / total < 0.2  # uniform: 0.1 each (Zipf would give rank 1 0.34)


def test_zipf_weights_follow_the_rank_and_uniform_needs_none() -> None:
    zipf = Popularity("zipf", 1.0)
    assert zipf.weights(4) == [1.0, 0.5, pytest.approx(1 / 3), 0.25]
    assert zipf.top_share(4) == pytest.approx(1.0 / (1 + 0.5 + 1 / 3 + 0.25))
    assert Popularity().top_share(20) == pytest.approx(0.05)
    assert cumulative_weights(Popularity(), 100) is None
    assert cumulative_weights(Popularity("zipf", 2.0), 3) == [1.0, 1.25, pytest.approx(1.25 + 1 / 9)]


@pytest.mark.parametrize("popularity", [Popularity(), Popularity("zipf", 0.8), Popularity("zipf", 1.0)])
def test_popularity_round_trips_through_the_engine_environment_and_the_plan(
    popularity: Popularity, tmp_path: Path
) -> None:
    assert from_env_value(to_env_value(popularity)) == popularity
    plan = LoadPlan(locustfile="l.py", host="http://127.0.0.1:1", output_dir=str(tmp_path),
                    phases=(PhasePlan("steady", "steady", 1, 1),), popularity=popularity)  # fmt: skip
    assert LoadPlan.from_json(plan.to_json()).popularity == popularity
