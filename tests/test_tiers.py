"""Tier status: a window shared with other work on the machine is marked crowded, for the verdict
to judge (a busy machine only adds latency), and never saturated: the generator kept its schedule."""

from __future__ import annotations

from harness.load.progress import LoadProgress
from harness.records import ResourceSample
from harness.tiers import OTHER_CPU_LIMIT_PCT, _progress_dict, max_arrivals, with_other_work
from tests.factories import T0, generator_health, phase


def target_cpu(pct: float, seconds: int = 10) -> tuple[ResourceSample, ...]:
    return tuple(
        ResourceSample(at=T0 + 1 + i, rss_mb=80.0, cpu_pct=pct, open_fds=20, threads=4) for i in range(seconds)
    )


def steady_on(machine_cpu_pct: float | None, generator_cpu: float = 30.0, workers: int = 0):  # type: ignore[no-untyped-def]
    return phase(
        duration_s=12.0,
        generator=generator_health(cpu_mean_pct=generator_cpu, machine_cpu_pct=machine_cpu_pct, workers=workers),
    )


def other_cpu_reason(steady, samples) -> str:  # type: ignore[no-untyped-def]
    g = with_other_work(steady, samples).generator
    return g.reasons[-1] if g.crowded else ""


def test_cpu_that_neither_the_generator_nor_the_target_used_over_half_a_core_makes_the_window_crowded() -> None:
    # 200 % busy: generator 30, target 40, so others took 130 % of a core.
    g = with_other_work(steady_on(200.0), target_cpu(40.0)).generator
    assert g.crowded and not g.saturated and not g.clean and g.other_cpu_pct == 130.0
    assert g.crowded_by == ("other-work",) and g.crowding_slowed_target
    reason = g.reasons[-1]
    assert "130% of a core" in reason and "the generator 30%" in reason and "the target 40%" in reason
    assert "rerun when the machine is quiet" in reason


def test_other_work_under_the_limit_is_recorded_without_judging() -> None:
    g = with_other_work(steady_on(80.0), target_cpu(40.0)).generator
    assert g.other_cpu_pct == 10.0 and not g.crowded and not g.saturated


def test_a_quiet_machine_leaves_the_window_clean() -> None:
    # generator 30 + target 40 + the kernel's networking and the harness's own 10
    assert other_cpu_reason(steady_on(80.0), target_cpu(40.0)) == ""
    assert other_cpu_reason(steady_on(70.0 + OTHER_CPU_LIMIT_PCT), target_cpu(40.0)) == ""


def test_local_workers_count_as_the_generator_not_as_other_work() -> None:
    assert other_cpu_reason(steady_on(150.0, generator_cpu=45.0, workers=2), target_cpu(40.0)) == ""


def test_without_the_targets_own_cpu_or_the_machines_nothing_is_judged() -> None:
    assert other_cpu_reason(steady_on(200.0), ()) == ""  # --target: the harness did not start it
    assert other_cpu_reason(steady_on(None), target_cpu(40.0)) == ""  # the OS gave no reading


def test_a_crowded_stress_step_is_named_and_left_to_the_capacity_model_to_judge() -> None:
    step = phase("stress", label="stress x1.5", duration_s=12.0,
                 generator=generator_health(cpu_mean_pct=40.0, machine_cpu_pct=190.0))
    g = with_other_work(step, target_cpu(60.0)).generator
    assert g.crowded and not g.saturated
    assert "during stress x1.5" in g.reasons[-1]


def test_max_rps_counts_requests_so_the_arrivals_are_kept_under_it_by_the_measured_mix() -> None:
    # An action made 2.5 requests at the earlier tiers: 100 requests/s allow 40 actions/s.
    assert max_arrivals(100.0, 2.5) == 40.0
    # Before any tier measured it, one request an action (the engine holds back the rest).
    assert max_arrivals(100.0, None) == 100.0
    assert max_arrivals(100.0, 0.5) == 100.0  # never more actions than requests
    assert max_arrivals(None, 2.5) == float("inf")


def test_the_audit_observer_gets_load_progress_as_the_dict_it_reads() -> None:
    progress = LoadProgress(phase="steady", elapsed=2.0, duration=30.0, rps=100.0, errors=1, users=8, dropped=0)
    assert _progress_dict(progress) == {"phase": "steady", "elapsed": 2.0, "duration": 30.0, "rps": 100.0,
                                        "errors": 1, "users": 8, "dropped": 0}  # fmt: skip
