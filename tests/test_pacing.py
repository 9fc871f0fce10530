"""max_rps: every request the harness sends outside the load engine takes a paced slot."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from harness.pacing import MAX_RPS_ENV, RequestPacer, pacer_from_env


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_slots_are_one_interval_apart_and_each_caller_is_told_its_wait() -> None:
    clock = FakeClock()
    pacer = RequestPacer(4.0, clock=clock)
    assert [pacer.reserve() for _ in range(4)] == [0.0, 0.25, 0.5, 0.75]
    assert pacer.requests == 4 and pacer.held == 3 and pacer.waited_s == pytest.approx(1.5)


def test_idle_time_is_not_saved_up_for_a_burst() -> None:
    clock = FakeClock()
    pacer = RequestPacer(10.0, clock=clock)
    pacer.reserve()
    clock.now += 60.0  # a minute with no request
    assert pacer.reserve() == 0.0
    assert pacer.reserve() == pytest.approx(0.1)  # the one after it still waits its interval


def test_a_burst_allowance_lets_bunched_requests_through_but_not_a_higher_rate() -> None:
    clock = FakeClock()
    pacer = RequestPacer(10.0, burst_s=0.2, clock=clock)
    # Three requests at once: the first is on its slot, two more may run ahead by up to 0.2 s.
    assert [pacer.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert pacer.reserve() == pytest.approx(0.1)  # the fourth waits: the allowance is spent
    # Sustained, the rate is still 10 a second: each further request waits one interval more.
    waits = [pacer.reserve() for _ in range(100)]
    assert waits[-1] == pytest.approx(0.1 + 100 * 0.1)
    assert pacer.held == 101


@pytest.mark.parametrize("bad", [0.0, -5.0, float("inf"), float("nan")])
def test_a_cap_that_is_not_a_positive_rate_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="positive number of requests per second"):
        RequestPacer(bad)


def test_the_cap_reaches_processes_the_audit_starts_through_the_environment() -> None:
    pacer = pacer_from_env({MAX_RPS_ENV: "25"})
    assert pacer is not None and pacer.max_rps == 25.0
    assert pacer_from_env({}) is None
    with pytest.raises(ValueError, match=MAX_RPS_ENV):
        pacer_from_env({MAX_RPS_ENV: "fast"})


# --- against a real loopback server -------------------------------------------------------------


@pytest.fixture
def arrivals() -> Iterator[tuple[str, list[float]]]:
    """A loopback HTTP server that records when each request arrived."""
    seen: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            seen.append(time.monotonic())
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def busiest_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for u in times[i:] if u - t < 1.0) for i, t in enumerate(times))


def test_threads_sharing_a_pacer_never_pass_the_rate_together(arrivals: tuple[str, list[float]]) -> None:
    url, seen = arrivals
    pacer = RequestPacer(40.0)

    def client_thread() -> None:
        with httpx.Client(base_url=url, event_hooks={"request": [pacer.wait]}) as client:
            for _ in range(15):
                client.get("/").raise_for_status()

    threads = [threading.Thread(target=client_thread) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(seen) == 60
    # 60 requests at 40/s take at least 59 intervals, and no second holds more than 40 (+1 for
    # the edge of the window).
    assert max(seen) - min(seen) >= 59 / 40 - 0.05
    assert busiest_second(seen) <= 41


def test_async_clients_are_paced_the_same_way(arrivals: tuple[str, list[float]]) -> None:
    url, seen = arrivals
    pacer = RequestPacer(50.0)

    async def main() -> None:
        async with httpx.AsyncClient(base_url=url, event_hooks={"request": [pacer.wait_async]}) as client:
            responses = await asyncio.gather(*(client.get("/") for _ in range(40)))
        assert all(r.status_code == 200 for r in responses)

    asyncio.run(main())
    assert len(seen) == 40
    assert max(seen) - min(seen) >= 39 / 50 - 0.05
    assert busiest_second(seen) <= 51
