"""The booking demo's production shape: worker processes (WEB_CONCURRENCY) against PostgreSQL.

The flaws keep their meaning there: global-lock's one writer at a time becomes a lock in the
database that every worker process waits for, not a thread lock each process has its own of.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import psutil
import pytest
from booking_demo import PACK_DIR, Demo

from harness.database import find_postgres_bin, postgres_server
from harness.target import free_port, wait_healthy

pytestmark = pytest.mark.skipif(find_postgres_bin() is None, reason="PostgreSQL is not installed")
WORKERS = 2


@pytest.fixture(scope="module")
def pg_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], tuple[Demo, str, subprocess.Popen[bytes]]]]:
    stack = ExitStack()
    root = tmp_path_factory.mktemp("pg-shape")
    started: dict[str, tuple[Demo, str, subprocess.Popen[bytes]]] = {}

    def start(flaw: str) -> tuple[Demo, str, subprocess.Popen[bytes]]:
        if flaw not in started:
            # One server per flaw: the demo's schema differs by flaw (missing or dropped indexes).
            server = stack.enter_context(postgres_server(free_port(), root / f"postgres-{flaw}.log"))
            port = free_port()
            env = {**os.environ, "DATABASE_URL": server.url, "WEB_CONCURRENCY": str(WORKERS), "BOOKING_FLAW": flaw}
            proc = subprocess.Popen(
                [sys.executable, "-m", "booking_service", "--port", str(port), "--db", str(root / f"{flaw}.sqlite3")],
                cwd=PACK_DIR, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            stack.callback(_stop, proc)
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, "/health", 60.0, alive=lambda: proc.poll() is None)
            started[flaw] = (Demo(flaw, url, root / f"{flaw}.sqlite3"), server.url, proc)
        return started[flaw]

    with stack:
        yield start


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, 15)
    proc.wait(timeout=15)


def test_the_demo_serves_from_several_worker_processes_sharing_one_database(pg_demo) -> None:  # noqa: ANN001
    demo, _url, proc = pg_demo("none")
    assert len(psutil.Process(proc.pid).children(recursive=True)) >= WORKERS
    tenants = [demo.new_clinic() for _ in range(6)]  # spread over the workers by the kernel
    for tenant in tenants:
        patient = tenant.patient("Ada Lovelace")
        r = tenant.get(f"/patients/{patient}")
        assert r.status_code == 200 and r.json()["clinic_marker"] == tenant.marker
    assert (demo.db_path.exists()) is False  # PostgreSQL, not the SQLite file


@pytest.mark.parametrize(("flaw", "waits"), [("none", False), ("global-lock", True)])
def test_global_lock_is_a_lock_in_the_database_every_worker_waits_for(pg_demo, flaw: str, waits: bool) -> None:  # noqa: ANN001
    import psycopg
    from booking_service.store import _WriteLock

    demo, url, _proc = pg_demo(flaw)
    tenant = demo.new_clinic()
    done = threading.Event()
    statuses: list[int] = []

    def write() -> None:
        statuses.append(tenant.post("/patients", {"name": "Grace Hopper"}).status_code)
        done.set()

    # Another process of the service holds the lock, as a write in another worker does.
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (_WriteLock.KEY,))
        writer = threading.Thread(target=write)
        writer.start()
        went_through = done.wait(1.0 if waits else 10)  # bounded either way
        assert went_through is not waits
        other.execute("SELECT pg_advisory_unlock(%s)", (_WriteLock.KEY,))
    writer.join(timeout=10)
    assert done.is_set() and statuses == [201]


def test_the_demo_s_settings_travel_to_its_workers_whole() -> None:
    from booking_service.flaws import Flaw
    from booking_service.settings import Settings

    settings = Settings(db_path=Path("/x/b.sqlite3"), database_url="postgresql://u@h/db",
                        flaws=frozenset({Flaw.GLOBAL_LOCK, Flaw.MEMORY_LEAK}), state_dir=Path("/s"),
                        slowdown_ms={"GET /slots": 0.6})  # fmt: skip
    assert Settings.from_env(settings.to_env()) == settings


def test_text_postgresql_cannot_store_is_refused_not_a_server_error(pg_demo) -> None:  # noqa: ANN001
    # Found by the properties on this shape: SQLite stores a NUL character, PostgreSQL's text cannot.
    demo, _url, _proc = pg_demo("none")
    tenant = demo.new_clinic()
    r = tenant.get("/patients?q=%00")
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    assert tenant.post("/patients", {"name": "Ada\x00 Lovelace"}).status_code == 422
    assert tenant.get("/patients?q=Ada").status_code == 200  # the worker serves on
