"""The bundled booking demo, started for real (uvicorn, SQLite) on a free loopback port.

`demo(flaw)` starts the service once per flaw per test session ("none" = healthy) and stops every
one at the end.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from booking_demo import PACK_DIR, Demo

from harness.target import free_port, wait_healthy


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Demo]]:
    started: dict[str, tuple[Demo, subprocess.Popen[bytes]]] = {}

    def start(flaw: str) -> Demo:
        if flaw in started:
            return started[flaw][0]
        workdir = tmp_path_factory.mktemp(f"booking-{flaw}")
        port = free_port()
        db_path = workdir / "booking.sqlite3"
        args = [sys.executable, "-m", "booking_service", "--port", str(port), "--db", str(db_path),
                "--flaw", flaw]  # fmt: skip
        log = open(workdir / "service.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, cwd=PACK_DIR, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
        log.close()
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, "/health", 30.0, alive=lambda: proc.poll() is None)
        except Exception:
            proc.kill()
            proc.wait(timeout=10)
            raise
        started[flaw] = (Demo(flaw, url, db_path), proc)
        return started[flaw][0]

    yield start
    for _demo, proc in started.values():
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
