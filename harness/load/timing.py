"""Intended-start timing: the arrival schedule, and latency measured from when a request was due.

This is where coordinated omission is corrected. A closed-loop load generator sends the next
request when the previous one returns, so a stalled target also stalls the generator and the
requests that should have been sent during the stall are never timed (wrk2, HdrHistogram's
"coordinated omission"). Here arrivals are open-model: :meth:`Arrivals.dispatch` computes each
iteration's *intended* start from the rate alone, whatever the target does, and puts an
:class:`Iteration` token on the queue of a user class chosen by the classes' weights. A user takes
the token (:meth:`Arrivals.take`, the kit's ``Pacer``), and the iteration's start lag is how late
it took it; a token that waited more than ``max_start_delay_s`` is dropped and counted, never
skipped silently.

The schedule, per process:
    * constant: the k-th arrival at ``t0 + offset + k / rate``, with a random ``offset`` in
      ``[0, 1 / rate)`` so that the workers of a distributed run do not all send at once;
    * Poisson: exponential gaps with mean ``1 / rate`` (``plan.arrivals = "poisson"``).

Latency from the intended start (applied per request in ``Engine.on_request``, inline because it
runs for every request): an iteration's first request counts from its intended start (response
end - intended start, never below its service time); a later request of the same iteration
counts its service time plus the iteration's start lag. A stalled target or a late generator is
never hidden. Service time is Locust's own ``response_time``.

Imported by the engine child only (gevent).
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from gevent.event import Event
from gevent.queue import Queue

from harness.load.waiting import PreciseWait

if TYPE_CHECKING:
    from harness.load.tally import LiveTally

__all__ = ["Arrivals", "ClassPool", "Iteration", "distinct_tasks"]

# While every user is busy the dispatcher sleeps up to this long between wake-ups instead of
# waking for each token (see Arrivals.dispatch); a user that runs out of tokens wakes it at once.
DISPATCH_PARK_S = 0.005
# A token due this soon is put at once rather than after a wait: each precise wait is a few
# system calls, and at thousands of tokens a second they cost the generator ~5 % of its CPU
# (py-spy, throughput case). Starting up to 0.2 ms early shifts the arrival, never the latency:
# an iteration's lag is never below zero, so no request is timed as faster than it was.
EARLY_PUT_S = 0.0002


class Iteration:
    """One scheduled iteration: its intended start (perf clock and wall clock) and its lag."""

    __slots__ = ("tally", "intended", "intended_wall", "lag", "first_done", "even", "turn")

    def __init__(self, tally: LiveTally, intended: float, intended_wall: float, even: bool = False,
                 turn: int = 0) -> None:  # fmt: skip
        self.tally = tally
        self.intended = intended
        self.intended_wall = intended_wall
        self.lag = 0.0
        self.first_done = False
        # A probe's iteration: its persona and its task go in turn, not by their weights, so that
        # every endpoint is measured about equally often at every data volume (drawn at random,
        # a probe of 40 iterations over nine tasks left some with one or two requests).
        self.even = even
        # Which of its persona's distinct tasks a probe iteration runs (modulo their number).
        self.turn = turn


def distinct_tasks(user_class: Any) -> list[Any]:
    """A user class's tasks once each, in declaration order (Locust repeats each by its weight)."""
    return list(dict.fromkeys(getattr(user_class, "tasks", None) or []))


class ClassPool:
    """The paced users of one user class and their queue of arrival tokens."""

    def __init__(self, user_class: type[Any], share: float) -> None:
        self.user_class = user_class
        self.share = share
        self.queue: Queue = Queue()
        self.users: list[Any] = []
        self.idle = 0


class Arrivals:
    """The arrival tokens of this process: scheduled, put on the pools' queues, taken by users.

    ``take`` and ``done`` are the kit's ``Pacer`` protocol (``harness.load.kit``): the engine
    hangs this object on the Locust environment, and each paced user takes one token per task.
    """

    def __init__(self, pools: list[ClassPool], rng: random.Random, *, poisson: bool,
                 max_start_delay_s: float) -> None:  # fmt: skip
        self.pools = pools
        self.cum_shares: list[float] = []
        acc = 0.0
        for p in pools:
            acc += p.share
            self.cum_shares.append(acc)
        self.rng = rng
        self.poisson = poisson
        self.grace = max_start_delay_s
        self.stop_requested = False  # ends the current dispatch at its next token
        self.parked = False  # the dispatcher waits with every user busy (see dispatch)
        self.wake = Event()
        self._timer = PreciseWait()  # gevent.sleep would put tokens up to 1 ms late (ms epoll timeouts)

    def take(self, user: Any) -> Iteration | None:
        """The next token for ``user`` (None: stop), its start lag set; late ones are dropped."""
        pool: ClassPool = user._scaleready_pool
        grace = self.grace
        pool.idle += 1
        try:
            while True:
                if self.parked and not pool.queue.queue:
                    self.wake.set()  # about to wait for a token: it must be put on time
                it = pool.queue.get()
                if it is None:
                    return None
                now = time.perf_counter()
                if now - it.intended > grace or it.tally.closed:
                    it.tally.dropped += 1
                    continue
                it.lag = max(0.0, now - it.intended)
                it.tally.started += 1
                it.tally.inflight += 1
                return it
        finally:
            pool.idle -= 1

    def done(self, iteration: Iteration) -> None:
        iteration.tally.inflight -= 1
        iteration.tally.completed += 1

    def dispatch(self, tally: LiveTally, rate: float, duration: float, even: bool = False) -> None:
        """Put ``rate`` tokens a second for ``duration`` seconds, each at its intended start;
        ``even``: every task of every persona in turn, whatever their weights (the probe)."""
        t0 = time.perf_counter()
        end = t0 + duration
        poisson = self.poisson
        offset = self.rng.random() / rate
        k = 0
        nxt = t0 + (self.rng.expovariate(rate) if poisson else offset)
        pools = self.pools
        cum = self.cum_shares
        rotation, turns = self._rotation() if even else ([], [])
        single = len(pools) == 1 and not even
        wake = self.wake
        timer = self._timer
        while nxt < end and not self.stop_requested:
            now = time.perf_counter()
            if nxt > now + EARLY_PUT_S:
                if pools[0].idle if single else any(p.idle for p in pools):
                    timer.wait_until(nxt)  # a user waits for this token: put it on time
                    continue
                # Every user is busy, so a token put now would only wait in the queue: park up to
                # DISPATCH_PARK_S and then put every token that fell due, each with its own
                # intended time. Near the generator's limit this saves a wake-up of this greenlet
                # per token. A user that frees up and finds its queue empty wakes us (take()), so
                # no token starts later than it would have.
                self.parked = True
                try:
                    wake.wait(max(nxt - now, DISPATCH_PARK_S))
                finally:
                    self.parked = False
                    wake.clear()
                continue
            turn = 0
            if even:
                i = rotation[k % len(rotation)]
                pool, turn = pools[i], turns[i]
                turns[i] += 1
            elif single:
                pool = pools[0]
            else:
                r = self.rng.random()
                pool = next((p for p, c in zip(pools, cum, strict=True) if r <= c), pools[-1])
            tally.scheduled += 1
            pool.queue.put(Iteration(tally, nxt, tally.to_wall(nxt), even, turn))
            k += 1
            nxt = nxt + self.rng.expovariate(rate) if poisson else t0 + offset + k / rate

    def _rotation(self) -> tuple[list[int], list[int]]:
        """The probe's order of pools (each as often as it has distinct tasks, so every task
        comes up equally often) and each pool's first turn; both start at random, so that the
        generator's processes do not all favour the first tasks when the count does not divide."""
        counts = [max(1, len(distinct_tasks(p.user_class))) for p in self.pools]
        rotation = [i for i, n in enumerate(counts) for _ in range(n)]
        shift = self.rng.randrange(len(rotation))
        rotation = rotation[shift:] + rotation[:shift]
        turns = [self.rng.randrange(n) for n in counts]
        return rotation, turns

    def expire(self, now: float) -> None:
        """Drop (and count) the tokens that waited past the grace at the head of each queue."""
        grace = self.grace
        for pool in self.pools:
            q = pool.queue.queue
            while q and q[0] is not None and now - q[0].intended > grace:
                it = q.popleft()
                it.tally.dropped += 1
            if pool.idle and self.parked:
                self.wake.set()  # the drops may have emptied a queue a user waits on

    def drop_untaken(self) -> None:
        """At the end of a phase: tokens nobody took are dropped, never silently skipped."""
        for pool in self.pools:
            while pool.queue.queue:
                it = pool.queue.queue.popleft()
                if it is not None:
                    it.tally.dropped += 1

    def close(self) -> None:
        self._timer.close()
