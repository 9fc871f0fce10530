"""The throwaway PostgreSQL server: started in a fresh data directory, gone without a trace."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from harness import database
from harness.database import find_postgres_bin, postgres_server
from harness.errors import TargetError
from harness.target import free_port

needs_postgres = pytest.mark.skipif(
    find_postgres_bin() is None, reason="PostgreSQL is not installed (Debian's postgresql package)"
)


def _leftovers() -> tuple[list[int], list[Path]]:
    """Server processes and data directories of throwaway servers still around."""
    procs = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "scaleready-pg-" in cmdline:
            procs.append(proc.pid)
    dirs = [p for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("scaleready-pg-*")]
    return procs, dirs


@needs_postgres
def test_a_server_starts_empty_answers_and_leaves_nothing_behind(tmp_path: Path) -> None:
    import psycopg

    before = _leftovers()
    with postgres_server(free_port(), tmp_path / "postgres.log") as server:
        assert server.version.startswith(("15", "16", "17", "14"))
        assert server.data_dir.is_dir()
        with psycopg.connect(server.url) as conn:
            conn.execute("CREATE TABLE t (x int)")
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
        assert psutil.pid_exists(server.pid)
    assert not psutil.pid_exists(server.pid) or psutil.Process(server.pid).status() == psutil.STATUS_ZOMBIE
    assert not server.data_dir.exists() and not server.data_dir.parent.exists()
    assert _leftovers() == before
    assert "database system is shut down" in (tmp_path / "postgres.log").read_text()


@needs_postgres
def test_a_failure_while_the_server_runs_still_tears_it_down(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="the audit failed"), postgres_server(free_port(), tmp_path / "pg.log") as server:
        raise RuntimeError("the audit failed")
    assert not server.data_dir.parent.exists()
    assert server.pid not in _leftovers()[0]


def test_no_postgresql_installed_is_one_clear_sentence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(database, "_SEARCH", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TargetError, match="no initdb was found; install Debian's postgresql package"), \
            postgres_server(free_port(), tmp_path / "pg.log"):
        pass
