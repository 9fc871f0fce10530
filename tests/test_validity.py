"""Whose latency a phase measured: the target's own, an upper bound (a busy machine), or spoiled
(a generator that could not keep its schedule), decided from the generator's readings."""

from __future__ import annotations

import dataclasses

import pytest
from factories import T0, generator_health, phase

from harness.records import GeneratorHealth, ResourceSample
from harness.validity import OTHER_CPU_LIMIT_PCT, Thresholds, classify, with_other_work


def readings(**values: float | None) -> GeneratorHealth:
    base: dict[str, float | None] = {"cpu_max_pct": 40.0, "cpu_mean_pct": 30.0, "loop_lag_p99_ms": 1.0,
                                     "loop_lag_max_ms": 2.0, "rss_max_mb": 70.0}  # fmt: skip
    return GeneratorHealth(**{**base, **values})  # type: ignore[arg-type]


def judged(g: GeneratorHealth, scheduled: int = 1000, dropped: int = 0):  # type: ignore[no-untyped-def]
    return classify(g, scheduled=scheduled, dropped=dropped, thresholds=Thresholds())


# --- the generator's own readings ----------------------------------------------------------------


def test_the_generators_cpu_wait_is_reported_but_alone_does_not_invalidate() -> None:
    # The generator waits for a CPU whenever the target beside it is busy too (3 % measured for
    # the healthy demo at 5000 customers on a machine 70 % busy): a reading, not a verdict. What
    # invalidates a window is CPU used by others (with_other_work).
    v = judged(readings(cpu_wait_pct=4.7, steal_pct=0.2, machine_cpu_pct=110.0))
    assert not v.saturated and v.clean


def test_steal_by_the_hypervisor_over_its_limit_makes_the_phase_crowded_not_saturated() -> None:
    # Steal pauses the target too and only adds latency: the verdict judges it, like other work.
    v = judged(readings(cpu_wait_pct=0.5, steal_pct=12.0, machine_cpu_pct=90.0))
    assert v.crowded and not v.saturated and v.kind == "upper-bound"
    assert any("steal" in r for r in v.reasons)
    assert v.crowded_by == ("steal",)
    assert v.latency_bound_ms is None  # the target was paused too: nothing bounds the noise


def test_a_quiet_machine_or_one_that_gives_no_reading_raises_nothing() -> None:
    quiet = judged(readings(cpu_wait_pct=0.5, steal_pct=0.4, machine_cpu_pct=95.0))
    unknown = judged(readings())
    assert quiet.clean and unknown.clean
    assert quiet.latency_bound_ms == 0.0


@pytest.mark.parametrize(
    ("cpu_mean", "cpu_wait", "steal", "crowded_by", "saturated"),
    [
        (20.0, 6.0, 0.5, ("cpu-wait",), False),  # CPU to spare, kept off it: the machine was busy
        (20.0, 1.0, 6.0, ("steal",), False),  # the hypervisor paused the virtual machine
        (20.0, 1.0, 0.5, (), True),  # late with nothing to blame outside: the generator's own
        (60.0, 6.0, 0.5, (), True),  # busy itself as well: its own queueing may be part of it
    ],
)
def test_an_event_loop_running_late_is_the_machines_doing_only_when_the_generator_was_kept_off_the_cpu(
    cpu_mean: float, cpu_wait: float, steal: float, crowded_by: tuple[str, ...], saturated: bool
) -> None:
    v = judged(readings(cpu_wait_pct=cpu_wait, steal_pct=steal, machine_cpu_pct=150.0, cpu_mean_pct=cpu_mean,
                        loop_lag_p99_ms=35.0))  # fmt: skip
    assert (v.crowded, v.saturated) == (bool(crowded_by), saturated)
    assert v.crowded_by == crowded_by
    assert any("event loop ran 35.0 ms late" in r for r in v.reasons)


def test_a_generator_over_its_cpu_limit_spoils_the_phase_with_the_reason_and_the_fix() -> None:
    v = judged(readings(cpu_mean_pct=95.0, loop_lag_max_ms=40.0))
    assert v.kind == "spoiled" and v.latency_bound_ms is None
    assert v.service_bound_ms == 40.0  # a service time is late by at most the loop's lateness
    assert "95% of a CPU core" in v.reasons[0] and "--workers 2" in v.reasons[0]


@pytest.mark.parametrize(("dropped", "spoiled"), [(10, False), (11, True)])
def test_more_than_one_percent_of_arrivals_dropped_spoils_the_phase(dropped: int, spoiled: bool) -> None:
    assert judged(readings(), scheduled=1000, dropped=dropped).saturated is spoiled


def test_requests_held_back_by_max_rps_and_a_lost_worker_each_spoil_the_phase() -> None:
    held = judged(readings(held_by_max_rps=50, paced_requests=1000, paced_wait_s=0.5, max_rps=100.0))
    assert held.saturated and "max_rps (100 requests/s) held back 50 of 1000" in held.reasons[0]
    lost = judged(readings(workers=2, workers_lost=1))
    assert lost.saturated and "1 load worker(s) died" in lost.reasons[0]


# --- other work on the machine -------------------------------------------------------------------


def target_cpu(pct: float, seconds: int = 10) -> tuple[ResourceSample, ...]:
    return tuple(
        ResourceSample(at=T0 + 1 + i, rss_mb=80.0, cpu_pct=pct, open_fds=20, threads=4) for i in range(seconds)
    )


def steady_on(machine_cpu_pct: float | None, generator_cpu: float = 30.0, workers: int = 0):  # type: ignore[no-untyped-def]
    return phase(
        duration_s=12.0,
        generator=generator_health(cpu_mean_pct=generator_cpu, machine_cpu_pct=machine_cpu_pct, workers=workers),
    )


def on_machine(p, samples):  # type: ignore[no-untyped-def]
    return with_other_work(p, p.target_cpu_pct(samples))


def other_cpu_reason(steady, samples) -> str:  # type: ignore[no-untyped-def]
    v = on_machine(steady, samples).validity
    return v.reasons[-1] if v.crowded else ""


def test_cpu_that_neither_the_generator_nor_the_target_used_over_half_a_core_makes_the_window_crowded() -> None:
    # 200 % busy: generator 30, target 40, so others took 130 % of a core.
    measured = on_machine(steady_on(200.0), target_cpu(40.0))
    v = measured.validity
    assert v.crowded and not v.saturated and not v.clean and measured.generator.other_cpu_pct == 130.0
    assert v.crowded_by == ("other-work",) and v.latency_bound_ms is None and v.service_bound_ms is None
    reason = v.reasons[-1]
    assert "130% of a core" in reason and "the generator 30%" in reason and "the target 40%" in reason
    assert "rerun when the machine is quiet" in reason


def test_other_work_under_the_limit_is_recorded_without_judging() -> None:
    measured = on_machine(steady_on(80.0), target_cpu(40.0))
    assert measured.generator.other_cpu_pct == 10.0 and measured.validity.clean


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
                 generator=generator_health(cpu_mean_pct=40.0, machine_cpu_pct=190.0))  # fmt: skip
    v = on_machine(step, target_cpu(60.0)).validity
    assert v.crowded and not v.saturated
    assert "during stress x1.5" in v.reasons[-1]


def test_a_generator_kept_waiting_while_other_work_stayed_small_is_late_by_twice_its_loops_lateness() -> None:
    # Only its own timing was late: a late send and a late read.
    waiting = readings(cpu_mean_pct=20.0, cpu_wait_pct=22.0, loop_lag_p99_ms=35.0, loop_lag_max_ms=300.0,
                       machine_cpu_pct=150.0)  # fmt: skip
    p = dataclasses.replace(phase(duration_s=12.0), generator=waiting, validity=judged(waiting))
    assert p.validity.crowded_by == ("cpu-wait",) and p.validity.latency_bound_ms is None  # whose CPU: unknown
    quiet_otherwise = on_machine(p, target_cpu(100.0))  # 150 - 20 - 100 = 30 % other work
    assert quiet_otherwise.validity.latency_bound_ms == 600.0
    assert quiet_otherwise.validity.service_bound_ms == 300.0
