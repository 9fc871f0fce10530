"""`scaleready check PACK`: every file of a pack imported, every test, property and persona run
once against the started service, and each fault named with its file and what to do.

The healthy booking demo is checked once for the whole module (about 45 s on this machine); the
broken copies keep one test file and one property file so each runs in about 15 s.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from harness.check import CheckOutcome, run_check
from harness.pack import load_pack

BOOKING = Path(__file__).resolve().parents[1] / "scenarios" / "booking"


def _copy(tmp_path: Path, tests: str = "test_clinics.py", properties: str = "test_round_trip.py") -> Path:
    """A copy of the booking pack with one test file and one property file (the rest removed)."""
    pack = tmp_path / "booking"
    shutil.copytree(BOOKING, pack, ignore=shutil.ignore_patterns("__pycache__"))
    for folder, keep in (("tests", tests), ("properties", properties)):
        for path in (pack / folder).glob("test_*.py"):
            if path.name != keep:
                path.unlink()
    return pack


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _files(outcome: CheckOutcome) -> list[str]:
    return [p.file for p in outcome.problems]


@pytest.fixture(scope="module")
def healthy() -> CheckOutcome:
    return run_check(load_pack(BOOKING), seed=7)


def test_the_booking_demo_passes_and_says_what_it_verified(healthy: CheckOutcome) -> None:
    assert healthy.problems == ()
    assert healthy.ok
    verified = "\n".join(healthy.verified)
    for expected in ("scenario.toml: valid", "provision.py: imports", "provision.py: created 2 customers",
                     "tests/: 104 tests passed", "properties/: 14 properties held (1 example each)",
                     "locustfile.py: 3 personas, 10 tasks each ran once", "invariants.py: held on what the personas wrote"):  # fmt: skip
        assert expected in verified


def test_the_demo_check_takes_under_a_minute(healthy: CheckOutcome) -> None:
    assert healthy.duration_s < 60 * (2 if os.environ.get("CI") else 1.5)  # a shared machine may be slower


@pytest.mark.slow
def test_a_locustfile_that_does_not_parse_and_a_provision_that_raises_are_both_named(tmp_path: Path) -> None:
    pack = _copy(tmp_path)
    _edit(pack / "locustfile.py", "class _ClinicUser(CustomerUser):", "class _ClinicUser(CustomerUser)")
    _edit(pack / "provision.py", "async def create_customer(", "async def create_customer(*args, **kwargs):\n"
          "    raise RuntimeError('sign-up is down')\n\n\nasync def _unused(")  # fmt: skip
    outcome = run_check(load_pack(pack), seed=7)
    by_file = {p.file: p for p in outcome.problems}
    assert "locustfile.py" in by_file and "provision.py" in by_file, outcome.problems
    assert "SyntaxError" in by_file["locustfile.py"].what
    assert "line" in by_file["locustfile.py"].what
    assert "sign-up is down" in by_file["provision.py"].what
    assert not outcome.ok


@pytest.mark.slow
def test_a_persona_whose_task_answers_500_is_named_with_its_endpoint(tmp_path: Path) -> None:
    pack = _copy(tmp_path, properties="test_cancel_idempotent.py")  # one the flaw leaves alone
    # The demo's crash-on-odd-input flaw: a patient named with a non-ASCII letter is a 500.
    _edit(pack / "scenario.toml", 'flaw_env = "BOOKING_FLAW"', 'flaw_env = "BOOKING_FLAW"\n'
          'env = { BOOKING_FLAW = "crash-on-odd-input" }')  # fmt: skip
    with (pack / "locustfile.py").open("a", encoding="utf-8") as f:
        f.write(
            "\n\nclass Registrar(_ClinicUser):\n"
            "    @task\n"
            "    def register_patient(self) -> None:\n"
            "        c = self.customer()\n"
            "        self.client.post('/patients', json={'name': 'Zoë Ødegaard'}, headers=self._as(c),\n"
            "                         name='POST /patients')\n"
        )
    outcome = run_check(load_pack(pack), seed=7)
    persona = [p for p in outcome.problems if p.file == "locustfile.py"]
    assert len(persona) == 1, outcome.problems
    assert "Registrar.register_patient" in persona[0].what
    assert "POST /patients answered 500" in persona[0].what
    assert "service's log" in persona[0].fix


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", "check", *args], capture_output=True, text=True,
                          timeout=180, cwd=Path(__file__).resolve().parents[1])  # fmt: skip


@pytest.mark.slow
def test_a_missing_hook_is_one_line_naming_the_file_what_and_fix_and_exit_2(tmp_path: Path) -> None:
    pack = _copy(tmp_path)
    _edit(pack / "provision.py", "async def create_customer(", "async def make_customer(")
    done = _cli(str(pack))
    assert done.returncode == 2, done.stderr
    problem = next(line for line in done.stdout.splitlines() if line.startswith("  !!  "))
    assert problem.startswith("  !!  provision.py: ") and "no function create_customer" in problem
    assert "-> " in done.stdout
    assert "problem" in done.stdout.splitlines()[-1]
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.slow
def test_keep_target_leaves_the_service_running_and_says_how_to_stop_it(tmp_path: Path) -> None:
    pack = _copy(tmp_path)
    done = _cli(str(pack), "--keep-target")
    assert done.returncode == 0, done.stdout + done.stderr
    running = next(line for line in done.stdout.splitlines() if line.startswith("The service is still running at "))
    url = running.split(" at ")[1].split(" ")[0]
    pgid = int(running.split("process group ")[1].split(")")[0])
    stop = next(line for line in done.stdout.splitlines() if line.startswith("Stop it with: "))
    try:
        assert httpx.get(url + "/health", timeout=5).status_code == 200
        assert "customer 0" in running and "customer 1" in running
        assert "api_key" not in done.stdout
    finally:
        os.killpg(pgid, signal.SIGTERM)
        psutil.wait_procs([p for p in psutil.process_iter() if _in_group(p, pgid)], timeout=10)
    assert f"kill -TERM -- -{pgid}" in stop


def _in_group(proc: psutil.Process, pgid: int) -> bool:
    try:
        return os.getpgid(proc.pid) == pgid
    except (ProcessLookupError, PermissionError):
        return False


@pytest.mark.slow
def test_without_keep_target_no_process_of_the_check_is_left(tmp_path: Path) -> None:
    pack = _copy(tmp_path)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    outcome = run_check(load_pack(pack), seed=7)
    assert outcome.kept is None
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert left == []


def test_ctrl_c_stops_the_check_and_the_service_and_exits_5(tmp_path: Path) -> None:
    pack = _copy(tmp_path, tests="test_bookings.py")
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "check", str(pack)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:  # bounded: the check prints its stages, then ends
        if " gate " in line:
            break
    proc.send_signal(signal.SIGINT)
    out, _err = proc.communicate(timeout=60)
    assert proc.returncode == 5, out
    assert "interrupted" in out
    assert [p for p in psutil.process_iter(["cwd"]) if str(p.info.get("cwd") or "").startswith(str(tmp_path))] == []


def test_a_marker_in_a_public_answer_is_no_fault_and_elsewhere_names_both_fixes() -> None:
    from harness.check import _declared_public, _fault_fix, _task_faults
    from harness.load.tryout_stage import TriedRequest

    public = _declared_public(load_pack(Path(__file__).resolve().parent / "invoicing"))  # GET /feed is public
    feed = TriedRequest(name="GET /feed", method="GET", status=200, reason=None, foreign=("3",))
    invoices = TriedRequest(name="GET /invoices", method="GET", status=200, reason=None, foreign=("2",))
    [fault] = _task_faults([feed, invoices], public)
    assert fault == "GET /invoices returned another customer's marker (customer 2)"
    assert "as_customer" in _fault_fix(fault) and "public(...)" in _fault_fix(fault)
    assert _task_faults([feed], _declared_public(load_pack(BOOKING))) != []  # booking declares nothing public
