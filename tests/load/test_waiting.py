"""Precise waits: the dispatcher puts arrival tokens at their intended instant, not up to 1 ms late."""

from __future__ import annotations

import time

import gevent
import pytest

from harness.load.waiting import PreciseWait

DELAYS_S = (0.0002, 0.0005, 0.0009) * 40


def lateness_ms(wait: object, delays: tuple[float, ...]) -> list[float]:
    late = []
    for delay in delays:
        start = time.perf_counter()
        wait(start + delay, delay)  # type: ignore[operator]
        late.append((time.perf_counter() - start - delay) * 1000.0)
    return sorted(late)


@pytest.fixture
def precise() -> PreciseWait:
    w = PreciseWait()
    if not w.precise:
        pytest.skip("no timerfd on this platform: the wait falls back to gevent.sleep")
    yield w
    w.close()


def test_a_wait_never_ends_before_its_instant(precise: PreciseWait) -> None:
    for delay in DELAYS_S:
        instant = time.perf_counter() + delay
        precise.wait_until(instant)
        assert time.perf_counter() >= instant


def test_sub_millisecond_waits_end_much_closer_to_the_instant_than_gevent_sleep(precise: PreciseWait) -> None:
    # Side by side in one run: gevent's timers round to whole milliseconds (epoll_wait), so a
    # 0.2 ms sleep ends about 1 ms later; the timerfd wait ends tens of microseconds later.
    ours = lateness_ms(lambda instant, _d: precise.wait_until(instant), DELAYS_S)
    gevents = lateness_ms(lambda _i, delay: gevent.sleep(delay), DELAYS_S)
    median = len(DELAYS_S) // 2
    assert ours[median] * 3 < gevents[median], (ours[median], gevents[median])


def test_a_wait_in_the_past_returns_at_once_and_other_greenlets_keep_running(precise: PreciseWait) -> None:
    ticks = []

    def ticker() -> None:
        for _ in range(5):
            ticks.append(time.perf_counter())
            gevent.sleep(0.002)

    g = gevent.spawn(ticker)
    precise.wait_until(time.perf_counter() - 1.0)
    precise.wait_until(time.perf_counter() + 0.02)  # the ticker runs while we wait
    g.join(timeout=1.0)
    assert len(ticks) == 5


def test_a_waiter_killed_mid_wait_leaves_the_timer_usable(precise: PreciseWait) -> None:
    waiter = gevent.spawn(precise.wait_until, time.perf_counter() + 10.0)
    gevent.sleep(0.01)
    waiter.kill(block=True, timeout=1.0)
    assert waiter.dead
    instant = time.perf_counter() + 0.001
    precise.wait_until(instant)
    assert 0.0 <= time.perf_counter() - instant < 0.5
