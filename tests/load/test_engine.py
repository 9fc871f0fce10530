"""The load engine, end to end: small locustfiles against the null target, a few seconds each.

Each test runs ``harness.load.run_load`` (a real child process, real Locust) so it specifies
what the rest of the harness can rely on: counted drops, saturation flags, error reasons,
partial results on cancel with no process left behind, and lossless distributed totals.
"""

from __future__ import annotations

import socket
import textwrap
import threading
import time
from dataclasses import asdict
from pathlib import Path

import psutil
import pytest

from harness.load import LoadPlan, LoadProgress, PhasePlan, recording, run_load
from harness.load.noise_floor import run_null_target

ONE_GET = """
from harness.load.kit import CustomerUser, task

class Visitor(CustomerUser):
    @task
    def home(self):
        self.client.get("{path}", name="GET /home")
"""


def locustfile(tmp_path: Path, body: str, **fmt: str) -> str:
    path = tmp_path / "locustfile.py"
    path.write_text(textwrap.dedent(body.format(**fmt) if fmt else body), encoding="utf-8")
    return str(path)


def plan(tmp_path: Path, lf: str, host: str, *phases: PhasePlan, **options: object) -> LoadPlan:
    return LoadPlan(locustfile=lf, host=host, output_dir=str(tmp_path / "out"), phases=phases, **options)  # type: ignore[arg-type]


def test_plan_round_trips_through_json(tmp_path: Path) -> None:
    p = plan(tmp_path, "lf.py", "http://127.0.0.1:1", PhasePlan("steady", "steady", 10, 2),
             PhasePlan("stress", "stress x2", 20, 1), workers=2, arrivals="poisson")
    assert LoadPlan.from_json(p.to_json()) == p


def test_iterations_that_find_no_free_user_are_dropped_and_counted(tmp_path: Path) -> None:
    lf = locustfile(tmp_path, ONE_GET, path="/slow")
    with run_null_target(service_ms=200) as url:  # each iteration holds its user for 200 ms
        outcome = run_load(plan(tmp_path, lf, url, PhasePlan("steady", "steady", 40, 2.0),
                                min_users=1, max_users=2, max_start_delay_s=0.2))
    assert outcome.error is None
    (steady,) = outcome.phases
    assert steady.max_users == 2
    assert steady.iterations_scheduled >= 75
    assert steady.iterations_scheduled == steady.iterations_started + steady.dropped_iterations
    assert steady.dropped_iterations > steady.iterations_scheduled / 2  # two users manage ~10/s of 40/s
    # throughput counts the iterations that finished while arrivals were offered, not the drain
    assert 0 < steady.iterations_completed <= steady.iterations_started
    assert steady.achieved_ips == pytest.approx(steady.achieved_rps, rel=0.01)  # one request each
    assert steady.validity.saturated
    assert any("could not start" in r for r in steady.validity.reasons)


def test_a_backlog_finished_after_the_window_is_latency_not_throughput(tmp_path: Path) -> None:
    # Each response takes 1.5 s and the window lasts 1 s: nothing completes while arrivals are
    # offered. The drain waits for the responses (their latency counts), but a server this slow
    # kept up with none of the offered rate, whatever the drain finished afterwards.
    lf = locustfile(tmp_path, ONE_GET, path="/slow")
    with run_null_target(service_ms=1500) as url:
        outcome = run_load(plan(tmp_path, lf, url, PhasePlan("steady", "steady", 10, 1.0), max_users=50))
    assert outcome.error is None
    (steady,) = outcome.phases
    assert steady.requests >= 5  # finished in the drain, and recorded
    assert steady.latency.p50_ms >= 1500
    assert steady.iterations_completed == 0 and steady.achieved_ips is None
    assert steady.achieved_rps == 0


@pytest.mark.slow
def test_a_cpu_starved_generator_marks_its_phase_saturated(tmp_path: Path) -> None:
    lf = locustfile(tmp_path, """
        import time
        from harness.load.kit import CustomerUser, task

        class Burner(CustomerUser):
            @task
            def burn(self):
                end = time.perf_counter() + 0.03   # 30 ms of CPU per iteration, no yielding
                while time.perf_counter() < end:
                    pass
                self.client.get("/x", name="GET /x")
    """)
    with run_null_target(service_ms=0) as url:
        outcome = run_load(plan(tmp_path, lf, url, PhasePlan("steady", "steady", 60, 3.0)))
    (steady,) = outcome.phases
    health = steady.generator
    assert steady.validity.saturated
    assert health.cpu_mean_pct > 90 or health.loop_lag_p99_ms > 20
    assert any("CPU core" in r or "event loop" in r for r in steady.validity.reasons)


THREE_GETS = """
from harness.load.kit import CustomerUser, task

class Browser(CustomerUser):
    @task
    def three_pages(self):
        for page in ("/a", "/b", "/c"):
            self.client.get(page, name="GET " + page)
"""


def test_max_rps_holds_requests_an_arrivals_plan_sends_past_it_and_says_so(tmp_path: Path) -> None:
    # 30 actions/s of three requests each is 90 requests/s against a cap of 45: the engine keeps
    # the cap (a tenth of a second's burst aside), and the phase is not the target's latency.
    lf = locustfile(tmp_path, THREE_GETS)
    with run_null_target(service_ms=0) as url:
        outcome = run_load(plan(tmp_path, lf, url, PhasePlan("steady", "steady", 30, 3.0), max_rps=45.0,
                                max_users=200))  # fmt: skip
    assert outcome.error is None
    (steady,) = outcome.phases
    assert steady.achieved_rps <= 45 * 1.1  # while arrivals were offered
    assert steady.requests == 3 * steady.iterations_started  # held back, never dropped
    health = steady.generator
    assert steady.validity.saturated and health.held_by_max_rps > steady.requests / 4
    assert any("max_rps (45 requests/s) held back" in r for r in steady.validity.reasons)


@pytest.mark.slow
def test_a_load_under_max_rps_passes_untouched(tmp_path: Path) -> None:
    # 20 actions/s x 3 = 60 requests/s, well under 100: open-model arrivals bunch, and the
    # burst allowance lets them through without holding any beyond the 1 % limit.
    lf = locustfile(tmp_path, THREE_GETS)
    with run_null_target(service_ms=0) as url:
        outcome = run_load(plan(tmp_path, lf, url, PhasePlan("steady", "steady", 20, 3.0), max_rps=100.0,
                                arrivals="poisson", seed=3))  # fmt: skip
    (steady,) = outcome.phases
    assert steady.requests >= 150
    assert not steady.validity.saturated, steady.validity.reasons
    assert steady.generator.held_by_max_rps <= 0.01 * steady.requests


def test_failures_are_counted_by_reason_with_replayable_samples(tmp_path: Path) -> None:
    lf = locustfile(tmp_path, """
        from harness.load.kit import CustomerUser, task

        class Broken(CustomerUser):
            @task
            def fail(self):
                self.client.post("/__status/503?x=1", json={"n": 1}, name="POST /fail",
                                 headers={"X-API-Key": "secret"})
    """)
    with run_null_target(service_ms=0) as url:
        outcome = run_load(plan(tmp_path, lf, url, PhasePlan("steady", "steady", 30, 1.5)))
    (steady,) = outcome.phases
    (endpoint,) = steady.endpoints
    assert endpoint.errors == endpoint.requests > 0
    assert endpoint.errors_by_reason == {"http-503": endpoint.requests}
    sample = steady.error_samples[0]
    assert (sample.method, sample.url, sample.status) == ("POST", "/__status/503?x=1", 503)
    assert "requested status 503" in sample.body_excerpt
    assert sample.request_body == '{"n": 1}'
    assert "secret" not in repr(sample)
    assert len(steady.error_samples) <= 50


@pytest.mark.slow
def test_each_request_gets_a_fresh_deadline_after_timeouts_and_successes(tmp_path: Path) -> None:
    # one user alternates between a frozen target (its requests time out) and a live one: each
    # request is bounded by its own deadline, whether the previous one fired or was cancelled
    lf = locustfile(tmp_path, ONE_GET, path="/")
    with run_null_target(service_ms=0, stall_every=1.0, stall_for=0.5) as url:
        outcome = run_load(plan(tmp_path, lf, url, PhasePlan("steady", "steady", 20, 3.0),
                                min_users=1, max_users=1, request_timeout_s=0.2))
    assert outcome.error is None
    (steady,) = outcome.phases
    (endpoint,) = steady.endpoints
    assert set(endpoint.errors_by_reason) == {"timeout"}
    assert 0 < endpoint.errors < endpoint.requests  # some timed out, the requests after them did not
    # a deadline fires once it has passed, not before, and soon after (the watchdog looks every 10 ms
    # for a 0.2 s timeout; the rest is slack for a busy machine)
    assert 200 <= endpoint.service.max_ms < 350


def test_a_refused_connection_is_a_connection_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    lf = locustfile(tmp_path, ONE_GET, path="/")
    outcome = run_load(plan(tmp_path, lf, f"http://127.0.0.1:{closed_port}",
                            PhasePlan("steady", "steady", 10, 1.0)))
    (steady,) = outcome.phases
    assert set(steady.endpoints[0].errors_by_reason) == {"connection"}


def test_a_broken_locustfile_is_an_error_not_an_exception(tmp_path: Path) -> None:
    lf = locustfile(tmp_path, "raise RuntimeError('pack bug')\n")
    outcome = run_load(plan(tmp_path, lf, "http://127.0.0.1:1", PhasePlan("steady", "steady", 10, 1.0)))
    assert outcome.phases == ()
    assert outcome.error is not None and "pack bug" in outcome.error


def _engine_processes(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_cancel_returns_the_phases_measured_so_far_and_leaves_no_process(tmp_path: Path) -> None:
    lf = locustfile(tmp_path, ONE_GET, path="/")
    cancel = threading.Event()
    seen: list[LoadProgress] = []

    def on_progress(progress: LoadProgress) -> None:
        seen.append(progress)
        if progress.phase == "steady" and progress.elapsed >= 1.0:
            cancel.set()

    with run_null_target(service_ms=0.2) as url:
        p = plan(tmp_path, lf, url, PhasePlan("warmup", "warmup", 50, 1.0),
                 PhasePlan("steady", "steady", 50, 60.0), workers=0)
        started = time.monotonic()
        outcome = run_load(p, on_progress=on_progress, cancel=cancel)
        took = time.monotonic() - started

    assert took < 15
    assert outcome.interrupted
    assert [ph.label for ph in outcome.phases] == ["warmup", "steady"]
    assert outcome.phases[0].aborted is None
    assert outcome.phases[1].aborted == "interrupted"
    assert outcome.phases[1].requests > 0
    assert {"phase", "elapsed", "duration", "rps", "errors", "users", "dropped"} <= set(asdict(seen[0]))
    assert _engine_processes(str(tmp_path / "out")) == []


def test_stress_steps_stop_once_a_stop_condition_holds(tmp_path: Path) -> None:
    lf = locustfile(tmp_path, ONE_GET, path="/__status/500")
    with run_null_target(service_ms=0) as url:
        outcome = run_load(plan(
            tmp_path, lf, url,
            PhasePlan("steady", "steady", 20, 1.0),
            PhasePlan("stress", "stress x2", 40, 3.0),
            PhasePlan("stress", "stress x3", 60, 3.0),
            window_s=1.0, stress_stop_error_rate=0.05,
        ))
    labels = [ph.label for ph in outcome.phases]
    assert labels == ["steady", "stress x2"]  # x3 never ran
    assert outcome.phases[1].aborted is not None and "error rate" in outcome.phases[1].aborted


@pytest.mark.slow
def test_two_workers_add_up_to_the_requests_each_one_sent(tmp_path: Path) -> None:
    log_dir = tmp_path / "sent"
    log_dir.mkdir()
    lf = locustfile(tmp_path, """
        import os
        from harness.load.kit import CustomerUser, task

        LOG = open(os.path.join(os.environ["SENT_DIR"], f"{os.getpid()}.log"), "a", buffering=1)

        class Visitor(CustomerUser):
            @task
            def home(self):
                self.client.get("/", name="GET /")
                LOG.write("x\\n")
    """)
    with run_null_target(service_ms=0.1) as url:
        outcome = run_load(plan(tmp_path, lf, url, PhasePlan("steady", "steady", 60, 3.0),
                                workers=2, env={"SENT_DIR": str(log_dir)}))
    assert outcome.error is None, outcome.error
    (steady,) = outcome.phases
    per_worker = {f.name: len(f.read_text().splitlines()) for f in log_dir.glob("*.log")}
    assert len(per_worker) == 2
    assert all(n > 0 for n in per_worker.values())
    assert steady.requests == sum(per_worker.values())
    assert steady.generator.workers == 2 and steady.generator.workers_lost == 0
    assert steady.offered_rps == pytest.approx(60)
    assert sum(w.requests for w in steady.windows) == steady.requests
    # every request's latency is in the histograms, whichever worker and batch it was recorded in
    (endpoint,) = steady.endpoints
    assert endpoint.latency.count == endpoint.service.count == endpoint.requests == steady.requests
    window_counts = sum(recording.decode(w.latency_hdr).get_total_count() for w in steady.windows)
    assert window_counts == steady.requests


@pytest.fixture(autouse=True)
def _no_leftover_engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield
    leftovers = _engine_processes(str(tmp_path))
    for proc in leftovers:
        proc.kill()
    assert leftovers == [], f"engine processes left behind: {leftovers}"


WEIGHTED = """
from harness.load.kit import CustomerUser, task

class Many(CustomerUser):
    weight = 9

    @task(10)
    def common(self):
        self.client.get("/common", name="GET /common")

    @task(1)
    def rare(self):
        self.client.get("/rare", name="GET /rare")

class Few(CustomerUser):
    weight = 1

    @task
    def admin(self):
        self.client.get("/admin", name="GET /admin")
"""


def test_a_probe_measures_every_persona_and_task_alike_whatever_their_weights(tmp_path: Path) -> None:
    # By weight, GET /admin is 1 request in 10 and GET /rare 1 in 12: a probe of 30 iterations
    # would see two or three of each. The probe sends the three distinct tasks in turn instead,
    # in each of the generator's processes.
    lf = locustfile(tmp_path, WEIGHTED)
    with run_null_target(service_ms=0) as url:
        outcome = run_load(plan(tmp_path, lf, url, PhasePlan("probe", "probe", 30, 2.0)))
    (probe,) = outcome.phases
    counts = {e.name: e.requests for e in probe.endpoints}
    assert sum(counts.values()) == probe.iterations_started
    assert set(counts) == {"GET /common", "GET /rare", "GET /admin"}
    assert max(counts.values()) - min(counts.values()) <= 2, counts  # a third each, one off per process
