"""A worker joining a master from any host: what travels, what is checked, the loop that rejoins.

Workers on other machines share no file system with the master. So nothing in the master's
plan that names one of its files reaches a worker as a path:

* the **pack** is the same folder on every host; the master sends the locustfile's path inside
  it, and each side hashes its copy (:func:`pack_version`). A worker whose copy differs is
  refused at join with the two versions in the message, before it sends a request;
* the **customers** travel as the JSON-lines text of the master's file, and each worker writes
  them to its own scratch folder (:func:`local_plan`);
* the **operation ledger** each worker writes is read back in complete lines
  (:class:`LedgerTail`) and shipped to the master every window and at the end of each phase,
  so the integrity check reads every worker's writes on the master's disk.

The master of each tier is a new process (``harness.load.distributed``), so a worker host runs
:func:`serve`: one worker process per master, rejoining the next tier's master at the same
address, until no master has appeared for ``idle_timeout_s``.

Imports no Locust: :func:`serve` runs in the ``scaleready worker`` command's own process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from harness.addresses import is_loopback
from harness.errors import ConfigError
from harness.integrity.ledger import FILE_GLOB, LEDGER_DIR_ENV
from harness.load.plan import LoadPlan

__all__ = [
    "EXIT_NO_MASTER",
    "EXIT_REFUSED",
    "WORKERS_FILE",
    "LedgerTail",
    "check_remote_target",
    "local_plan",
    "pack_version",
    "portable_plan",
    "refusal",
    "serve",
]

# Not part of a pack's content: caches, virtual environments, run folders.
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".venv", "venv", "node_modules", "reports",
                          ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"})  # fmt: skip
SKIPPED_SUFFIXES = (".pyc", ".pyo")
MAX_PACK_FILES = 20_000  # a pack is a folder of code and data, not a disk
CUSTOMERS_NAME = "customers.jsonl"
EXIT_REFUSED = 2  # the master refused this worker (a different pack, or the audit was full)
EXIT_NO_MASTER = 3  # no master answered within the wait
WORKERS_FILE = "load-workers.json"  # each worker's own final tally per phase, beside the merge


def _pack_files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(files):
            if not name.endswith(SKIPPED_SUFFIXES) and not name.startswith("."):
                yield Path(root) / name


def pack_version(folder: str | os.PathLike[str]) -> str:
    """A hash of the pack folder's files (relative paths and contents; caches left out).

    Two hosts with the same version load the same locustfile, personas and data helpers.
    """
    root = Path(folder).resolve()
    if not root.is_dir():
        raise ConfigError(f"pack folder {root} does not exist; give the same pack folder the audit uses")
    digest = hashlib.sha256()
    for count, path in enumerate(_pack_files(root), start=1):
        if count > MAX_PACK_FILES:
            raise ConfigError(
                f"pack folder {root} holds more than {MAX_PACK_FILES} files; keep run folders and "
                "data dumps outside the pack"
            )
        digest.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def refusal(master_version: str, worker_version: str, worker: str, master_pack: str) -> str:
    """The message a worker with another copy of the pack gets, and the master's error."""
    return (
        f"load worker {worker} was refused: its pack folder has version {worker_version}, the "
        f"master's ({master_pack}) has {master_version}; copy the same pack folder to every host "
        "(the same commit, no local edits) and start the worker again"
    )


def _relative_locustfile(plan: LoadPlan) -> str:
    pack = plan.pack_folder.resolve()
    locustfile = Path(plan.locustfile).resolve()
    try:
        return locustfile.relative_to(pack).as_posix()
    except ValueError:
        raise ConfigError(
            f"locustfile {locustfile} is outside the pack folder {pack}: workers load it from "
            "their copy of the pack, so keep it inside"
        ) from None


def portable_plan(plan: LoadPlan) -> dict[str, Any]:
    """The plan as it travels to a worker: the locustfile inside the pack, no master paths."""
    data = plan.to_dict()
    data["locustfile"] = _relative_locustfile(plan)
    data.update(pack_dir="", customers_file=None, output_dir="")
    data["env"] = {k: v for k, v in plan.env.items() if k != LEDGER_DIR_ENV}
    return data


def local_plan(data: dict[str, Any], pack_dir: Path, scratch: Path, customers: str | None,
               ledger: bool) -> LoadPlan:  # fmt: skip
    """A traveled plan on this host: the locustfile in its pack copy, files in ``scratch``."""
    scratch.mkdir(parents=True, exist_ok=True)
    values = dict(data)
    values["locustfile"] = str(Path(pack_dir).resolve() / data["locustfile"])
    values["pack_dir"] = str(Path(pack_dir).resolve())
    values["output_dir"] = str(scratch / "out")
    env = dict(data.get("env", {}))
    if customers is not None:
        path = scratch / CUSTOMERS_NAME
        path.write_text(customers, encoding="utf-8")
        values["customers_file"] = str(path)
    if ledger:
        (scratch / "ledger").mkdir(parents=True, exist_ok=True)
        env[LEDGER_DIR_ENV] = str(scratch / "ledger")
    values["env"] = env
    return LoadPlan.from_dict(values)


def check_remote_target(target_url: str, remote_workers: int) -> None:
    """Refuse a loopback target when workers on other hosts share the load.

    Each worker sends to the target's address as written: on another host, 127.0.0.1 is that
    host, so it would load-test something else (or nothing) and its numbers would be merged in.
    """
    host = urlsplit(target_url).hostname or ""
    if remote_workers and is_loopback(host):
        raise ConfigError(
            f"target {target_url} is on loopback, but {remote_workers} load worker(s) on other hosts "
            "would send to their own loopback; serve the target on an address the workers reach, "
            "give it with --target URL and list its host in the pack's target.allowed_hosts"
        )


class LedgerTail:
    """The complete lines written to a folder's ledger files since the last call."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.offsets: dict[Path, int] = {}

    def new_text(self) -> str:
        parts = []
        for path in sorted(self.folder.glob(FILE_GLOB)):
            start = self.offsets.get(path, 0)
            with path.open("rb") as f:
                f.seek(start)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next call
            if end:
                self.offsets[path] = start + end
                parts.append(chunk[:end].decode("utf-8"))
        return "".join(parts)


def serve(master: str, pack_dir: Path, *, idle_timeout_s: float, once: bool = False,
          log: TextIO = sys.stderr) -> int:  # fmt: skip
    """Join each master that appears at ``master`` (HOST:PORT) until none has for ``idle_timeout_s``.

    Returns 0 after at least one session, EXIT_REFUSED when a master refused this host's pack,
    EXIT_NO_MASTER when no master ever answered, or the worker process's own failing exit code.
    """
    version = pack_version(pack_dir)  # a missing or oversized pack fails here, not at join
    print(f"scaleready worker: pack {Path(pack_dir).resolve()} version {version}; joining {master}",
          file=log, flush=True)  # fmt: skip
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    sessions = 0
    deadline = time.monotonic() + idle_timeout_s
    while (wait := deadline - time.monotonic()) > 0:
        cmd = [sys.executable, "-m", "harness.load.engine", "--worker", "--master", master,
               "--pack", str(pack_dir), "--wait", f"{wait:.1f}"]  # fmt: skip
        code = subprocess.call(cmd, env=env, stdin=subprocess.DEVNULL)
        if code == 0:
            sessions += 1
            print(f"scaleready worker: session {sessions} with {master} ended", file=log, flush=True)
            if once:
                return 0
            deadline = time.monotonic() + idle_timeout_s
        elif code != EXIT_NO_MASTER:
            return code
    print(f"scaleready worker: no master at {master} for {idle_timeout_s:g} s; stopping after "
          f"{sessions} session(s)", file=log, flush=True)  # fmt: skip
    return 0 if sessions else EXIT_NO_MASTER
