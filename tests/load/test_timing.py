"""Intended-start timing: arrivals follow the rate whatever the target does, a token's lag is how
late a user took it, and a token nobody could take in time is dropped and counted, never lost.

The dispatcher runs here in this process's gevent hub, with no users: every token it puts stays
in its queue, with the intended start it was given.
"""

from __future__ import annotations

import random
import statistics
import time
from types import SimpleNamespace

import pytest

from harness.load.plan import PhasePlan
from harness.load.tally import LiveTally
from harness.load.timing import Arrivals, ClassPool, Iteration, distinct_tasks


def arrivals(*shares: float, poisson: bool = False, seed: int = 7, grace: float = 1.0) -> Arrivals:
    pools = [ClassPool(object, share) for share in shares or (1.0,)]
    return Arrivals(pools, random.Random(seed), poisson=poisson, max_start_delay_s=grace)


def live_tally(rate: float = 100.0) -> LiveTally:
    return LiveTally(PhasePlan("steady", "steady", rate, 60.0), rate, window_s=60.0)


def queued(a: Arrivals) -> list[Iteration]:
    return [it for pool in a.pools for it in pool.queue.queue if it is not None]


def test_constant_arrivals_are_evenly_spaced_after_a_random_phase() -> None:
    a, tally = arrivals(), live_tally()
    before = time.perf_counter()
    a.dispatch(tally, rate=100.0, duration=0.3)
    tokens = queued(a)
    assert len(tokens) == tally.scheduled == 30
    gaps = [b.intended - a_.intended for a_, b in zip(tokens, tokens[1:], strict=False)]
    assert gaps == pytest.approx([0.01] * 29)
    assert 0 <= tokens[0].intended - before < 0.01 + 0.005  # the random phase: within one gap
    assert all(it.tally is tally and it.lag == 0.0 for it in tokens)
    assert tokens[0].intended_wall == pytest.approx(tally.to_wall(tokens[0].intended))


def test_two_processes_with_their_own_seed_do_not_send_in_step() -> None:
    first, second = arrivals(seed=1), arrivals(seed=2)
    first.dispatch(live_tally(), rate=50.0, duration=0.1)
    second.dispatch(live_tally(), rate=50.0, duration=0.1)
    phase = [(queued(x)[0].intended - queued(x)[0].tally.started_perf) % 0.02 for x in (first, second)]
    assert abs(phase[0] - phase[1]) > 0.001


def test_poisson_arrivals_have_exponential_gaps_at_the_mean_rate() -> None:
    a, tally = arrivals(poisson=True, seed=3), live_tally(1000.0)
    a.dispatch(tally, rate=1000.0, duration=0.5)
    tokens = queued(a)
    gaps = [b.intended - a_.intended for a_, b in zip(tokens, tokens[1:], strict=False)]
    assert 400 <= len(tokens) <= 600
    assert statistics.mean(gaps) == pytest.approx(0.001, rel=0.15)
    assert statistics.stdev(gaps) == pytest.approx(statistics.mean(gaps), rel=0.25)  # exponential: sd = mean


def test_tokens_go_to_the_user_classes_by_their_weights() -> None:
    a = arrivals(0.25, 0.75)
    a.dispatch(live_tally(2000.0), rate=2000.0, duration=0.5)
    counts = [len(pool.queue.queue) for pool in a.pools]
    assert sum(counts) == 1000
    assert counts[1] / sum(counts) == pytest.approx(0.75, abs=0.05)


def test_a_probe_sends_every_task_of_every_persona_in_turn_whatever_their_weights() -> None:
    # Two personas: the first with three tasks (one repeated by its weight), weighted 0.9; the
    # second with one task. By weight the lone task would get a tenth of the probe; in turn, each
    # of the four distinct tasks gets a quarter.
    many = SimpleNamespace(tasks=["a", "a", "a", "b", "c"])
    few = SimpleNamespace(tasks=["d"])
    a = Arrivals([ClassPool(many, 0.9), ClassPool(few, 0.1)], random.Random(5), poisson=False,
                 max_start_delay_s=1.0)  # fmt: skip
    a.dispatch(live_tally(400.0), rate=400.0, duration=0.1, even=True)
    assert distinct_tasks(many) == ["a", "b", "c"]
    sent = [distinct_tasks(pool.user_class)[it.turn % len(distinct_tasks(pool.user_class))]
            for pool in a.pools for it in pool.queue.queue]  # fmt: skip
    assert len(sent) == 40
    assert all(it.even for it in queued(a))
    assert {t: sent.count(t) for t in "abcd"} == {"a": 10, "b": 10, "c": 10, "d": 10}


def test_outside_the_probe_every_iteration_runs_the_task_its_user_draws() -> None:
    a = arrivals(0.5, 0.5)
    a.dispatch(live_tally(400.0), rate=400.0, duration=0.1)
    assert not any(it.even or it.turn for it in queued(a))


def test_a_user_takes_the_next_token_on_time_and_its_lag_is_how_late() -> None:
    a, tally = arrivals(grace=0.5), live_tally()
    pool = a.pools[0]
    user = SimpleNamespace(_scaleready_pool=pool)
    now = time.perf_counter()
    stale, fresh = Iteration(tally, now - 2.0, 0.0), Iteration(tally, now - 0.1, 0.0)
    for it in (stale, fresh, None):
        pool.queue.put(it)
    assert a.take(user) is fresh  # the stale one waited past the grace
    assert 0.1 <= fresh.lag < 0.5
    assert (tally.dropped, tally.started, tally.inflight) == (1, 1, 1)
    a.done(fresh)
    assert (tally.inflight, tally.completed) == (0, 1)
    assert a.take(user) is None  # the engine's shutdown: stop
    assert pool.idle == 0


def test_a_token_is_never_early_its_lag_is_never_below_zero() -> None:
    a, tally = arrivals(), live_tally()
    pool = a.pools[0]
    pool.queue.put(Iteration(tally, time.perf_counter() + 0.0002, 0.0))  # put up to EARLY_PUT_S early
    assert a.take(SimpleNamespace(_scaleready_pool=pool)).lag == 0.0  # type: ignore[union-attr]


def test_tokens_of_a_closed_phase_and_tokens_nobody_took_are_dropped_and_counted() -> None:
    a, tally = arrivals(grace=0.5), live_tally()
    pool = a.pools[0]
    now = time.perf_counter()
    for intended in (now - 2.0, now - 1.0, now):
        pool.queue.put(Iteration(tally, intended, 0.0))
    a.expire(now)  # the pool manager's sweep: the two late ones at the head
    assert (tally.dropped, len(pool.queue.queue)) == (2, 1)
    a.drop_untaken()  # the end of the phase
    assert (tally.dropped, len(pool.queue.queue)) == (3, 0)
    closed = live_tally()
    closed.closed = True
    pool.queue.put(Iteration(closed, time.perf_counter(), 0.0))
    pool.queue.put(None)
    assert a.take(SimpleNamespace(_scaleready_pool=pool)) is None
    assert closed.dropped == 1 and closed.started == 0


def test_stop_requested_ends_the_dispatch_at_its_next_token() -> None:
    a, tally = arrivals(), live_tally()
    a.stop_requested = True
    a.dispatch(tally, rate=100.0, duration=10.0)
    assert tally.scheduled == 0
