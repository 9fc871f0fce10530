"""A throwaway PostgreSQL server for the target, started and torn down by the harness.

A profile with `database = "postgresql"` audits the production shape of a service: several
worker processes against a real database server, not one process on an SQLite file. The server
is Debian's `postgresql` package run by hand, never its system service: `initdb` in a temporary
data directory, `postgres` on a free loopback port in its own process group, and on the way out
a fast shutdown, then SIGKILL for anything left, and the data directory removed. As root it runs
as the package's `postgres` user (PostgreSQL refuses to run as root).

The target gets the server as ``DATABASE_URL`` in its environment and as the ``{database_url}``
placeholder of `target.start`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.errors import TargetError
from harness.processes import signal_group, stop_group, wait_group_gone

__all__ = ["PostgresServer", "find_postgres_bin", "postgres_server"]

# Where Debian's postgresql packages put their server binaries (newest first), then PATH.
_SEARCH = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin",
           "/usr/lib/postgresql/14/bin", "/usr/local/bin", "/usr/local/pgsql/bin")  # fmt: skip
_INSTALL_HINT = "install Debian's postgresql package (apt-get install postgresql-15) or put initdb on PATH"
# Worker processes times their pool size, plus the harness's own connections.
MAX_CONNECTIONS = 300


@dataclass(frozen=True)
class PostgresServer:
    url: str
    port: int
    data_dir: Path
    pid: int
    version: str


def find_postgres_bin() -> Path | None:
    """The folder holding `initdb` and `postgres`, or None when PostgreSQL is not installed."""
    for folder in _SEARCH:
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "postgres").is_file():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).parent if found and (Path(found).parent / "postgres").is_file() else None


@contextlib.contextmanager
def postgres_server(port: int, log_path: Path, ready_timeout_s: float = 60.0) -> Iterator[PostgresServer]:
    """Start a fresh server on ``127.0.0.1:port``; stop it and delete its data when done."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        raise TargetError(f"the profile asks for PostgreSQL, but no initdb was found; {_INSTALL_HINT}")
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="scaleready-pg-"))
    data = root / "data"
    process: subprocess.Popen[bytes] | None = None
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data.mkdir()
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
            os.chown(data, user.pw_uid, user.pw_gid)
        uid, gid = (user.pw_uid, user.pw_gid) if user else (None, None)
        groups: list[int] | None = [] if user else None
        with open(log_path, "ab") as log:
            init = subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "scaleready", "--auth=trust",
                 "--encoding=UTF8", "--locale=C", "--no-sync"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120, check=False,
                user=uid, group=gid, extra_groups=groups,
            )  # fmt: skip
            if init.returncode != 0:
                raise TargetError(f"initdb failed (exit {init.returncode}); its output is in {log_path}")
            process = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={root}",
                 "-c", f"max_connections={MAX_CONNECTIONS}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                user=uid, group=gid, extra_groups=groups,
            )  # fmt: skip
        url = f"postgresql://scaleready@127.0.0.1:{port}/postgres"
        version = _wait_ready(url, process, ready_timeout_s, log_path)
        yield PostgresServer(url=url, port=port, data_dir=data, pid=process.pid, version=version)
    finally:
        if process is not None:
            # SIGINT is PostgreSQL's fast shutdown: it ends the sessions and exits cleanly.
            stop_group(process, ((signal.SIGINT, 15.0), (signal.SIGKILL, 5.0)))
            signal_group(process.pid, signal.SIGKILL)
            wait_group_gone(process.pid)
        shutil.rmtree(root, ignore_errors=True)


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: this user, or `postgres` when this is root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise TargetError(
            "PostgreSQL refuses to run as root and there is no 'postgres' user; "
            f"{_INSTALL_HINT} (the package creates it)"
        ) from None


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float, log_path: Path) -> str:
    """Poll until the server accepts a connection (it has no other readiness signal)."""
    import psycopg

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TargetError(f"PostgreSQL exited at start (exit {process.returncode}); its output is in {log_path}")
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                return str(row[0]) if row else ""
        except psycopg.OperationalError:
            time.sleep(0.1)
    raise TargetError(f"PostgreSQL did not accept connections within {timeout_s:g} s; its output is in {log_path}")
