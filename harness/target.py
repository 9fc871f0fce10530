"""The target: where it is, whether we may send it traffic, and its lifecycle when we start it.

A target the harness starts runs in its own process group so that stopping it (also on failure
and Ctrl-C) stops everything it spawned. While it runs, a sampler thread records the process
tree's memory, CPU, open file descriptors and threads: a `resource-leak` finding comes from those
samples, never from a guess.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import httpx
import psutil

from harness.addresses import is_loopback
from harness.errors import AuditInterrupted, ConfigError, TargetError
from harness.processes import signal_group, stop_group, wait_group_gone
from harness.records import ResourceSample
from harness.redaction import Redactor, start_secrets


def check_target_allowed(base_url: str, allowed_hosts: Sequence[str], where: str) -> None:
    """Refuse, before any request, a target outside loopback that the pack does not allow."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"target URL '{base_url}' is not an http(s) URL; write it like http://127.0.0.1:8000"
        )
    host = parts.hostname
    if is_loopback(host) or host in allowed_hosts:
        return
    raise ConfigError(
        f"target host '{host}' is not on loopback and {where} does not allow it; "
        f"add it to target.allowed_hosts if you really mean to load-test it"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_healthy(
    base_url: str,
    health_path: str,
    timeout_s: float,
    alive: Callable[[], bool] | None = None,
    cancel: threading.Event | None = None,
) -> float:
    """Poll the health endpoint until it answers 2xx; returns seconds waited.

    Polling is the synchronisation here: we have no other signal from an arbitrary service.
    A set ``cancel`` (Ctrl-C, SIGTERM) ends the wait at once with ``AuditInterrupted``.
    """
    deadline = time.monotonic() + timeout_s
    started = time.monotonic()
    last_error = "no answer"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():
                raise AuditInterrupted("interrupted while waiting for the target to become healthy")
            if alive is not None and not alive():
                raise TargetError("the target process exited before it became healthy")
            try:
                response = client.get(base_url.rstrip("/") + health_path)
                if response.is_success:
                    return time.monotonic() - started
                last_error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last_error = type(exc).__name__
            if cancel is not None:
                cancel.wait(0.1)
            else:
                time.sleep(0.1)
    raise TargetError(
        f"{base_url}{health_path} did not become healthy within {timeout_s:g} s "
        f"(last answer: {last_error})"
    )


@dataclass(frozen=True)
class StartSpec:
    command: str
    cwd: Path
    health_path: str
    ready_timeout_s: float
    env: Mapping[str, str]
    flaw: str | None = None
    flaw_env: str | None = None
    secrets: Sequence[str] = ()
    # more {name} placeholders of the command, e.g. {database_url} when the harness started one
    placeholders: Mapping[str, str] | None = None
    # processes (and their children) whose CPU counts as the target's: the database server the
    # harness started for it is part of the service under test, not "other work" on the machine.
    # Their memory is left out: PostgreSQL's shared buffers show in every backend's RSS and fill
    # by design, which the leak rule would read as growth.
    cpu_also_of: Sequence[int] = ()


class ManagedTarget:
    """A target process started (and always stopped) by the harness."""

    def __init__(self, spec: StartSpec, log_path: Path, sample_interval_s: float = 1.0) -> None:
        self.spec = spec
        self.log_path = log_path
        self.sample_interval_s = sample_interval_s
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.state_dir = Path(tempfile.mkdtemp(prefix="scaleready-target-"))
        self.command = self._format_command()
        # The credentials in the command and its environment: never printed, never written.
        self.secrets = tuple(start_secrets(self.command, spec.env, spec.secrets))
        self.redactor = Redactor(self.secrets)
        #: The command as it may be shown (console, error messages, reports).
        self.shown_command = self.redactor.text(self.command)
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: BinaryIO | None = None
        self._samples: list[ResourceSample] = []
        self._samples_lock = threading.Lock()
        self._stop_sampling = threading.Event()
        self._sampler: threading.Thread | None = None
        self.exit_code: int | None = None
        self.exited_at: float | None = None
        self._detached = False

    def _format_command(self) -> str:
        values = {
            "port": str(self.port),
            "python": shlex.quote(sys.executable),
            "state_dir": shlex.quote(str(self.state_dir)),
            "flaw": self.spec.flaw or "none",
            **{k: shlex.quote(v) for k, v in (self.spec.placeholders or {}).items()},
        }
        try:
            return self.spec.command.format(**values)
        except (KeyError, IndexError) as exc:
            raise ConfigError(
                f"target.start: unknown placeholder {exc} in '{self.spec.command}'; "
                "use {port}, {python}, {state_dir} or {flaw} ({database_url} too in a profile "
                'with database = "postgresql")'
            ) from None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, cancel: threading.Event | None = None) -> None:
        env = {**os.environ, **self.spec.env}
        if self.spec.flaw and self.spec.flaw_env:
            env[self.spec.flaw_env] = self.spec.flaw
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        try:
            self._process = subprocess.Popen(
                shlex.split(self.command),
                cwd=self.spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self.stop()
            raise TargetError(
                f"could not run the target's start command `{self.shown_command}` in {self.spec.cwd}: "
                f"{exc.strerror}; check target.start in scenario.toml"
            ) from None
        try:
            wait_healthy(
                self.base_url, self.spec.health_path, self.spec.ready_timeout_s, alive=self.alive,
                cancel=cancel,
            )
        except AuditInterrupted:
            self.stop()
            raise
        except TargetError as exc:
            self.stop()
            raise TargetError(
                f"{exc}. Command: `{self.shown_command}` (cwd {self.spec.cwd}). "
                f"Last output:\n{self.log_tail()}"
            ) from None
        self._sampler = threading.Thread(target=self._sample_loop, name="target-sampler", daemon=True)
        self._sampler.start()
        # Note the moment the process exits (not when someone next asks): a report says when.
        threading.Thread(target=self._watch_exit, name="target-exit", daemon=True).start()

    def _watch_exit(self) -> None:
        process = self._process
        if process is None:
            return
        code = process.wait()
        if self.exit_code is None:
            self.exit_code = code
            self.exited_at = time.time()

    def alive(self) -> bool:
        if self._process is None:
            return False
        code = self._process.poll()
        if code is not None and self.exit_code is None:
            self.exit_code = code
            self.exited_at = time.time()
        return code is None

    def stop(self, grace_s: float = 5.0) -> None:
        if self._detached:
            return
        self._stop_sampling.set()
        if self._sampler is not None:
            self._sampler.join(timeout=3)
        process = self._process
        if process is not None and process.poll() is None:
            stop_group(process, ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)))
        if process is not None:
            # Children that outlived the leader (same session) must not survive us either.
            signal_group(process.pid, signal.SIGKILL)
            wait_group_gone(process.pid)
            self.alive()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
            # The service may have echoed a credential it was given: the log keeps none.
            self.redactor.file(self.log_path)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def detach(self) -> int:
        """Leave the process running for a person to inspect (``scaleready check --keep-target``)
        and return its process group id: ``stop()`` does nothing afterwards, and its state folder
        stays until that group is stopped and the folder removed by hand."""
        process = self._process
        if process is None or process.poll() is not None:
            raise TargetError("the target process is no longer running, so it cannot be kept")
        self._stop_sampling.set()
        if self._sampler is not None:
            self._sampler.join(timeout=3)
        if self._log_file is not None:
            self._log_file.close()  # the service keeps writing to its own copy of the descriptor
            self._log_file = None
        self._process = None
        self._detached = True
        return process.pid

    def __enter__(self) -> ManagedTarget:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no output)"
        tail = self.redactor.text(text).strip().splitlines()[-lines:]
        return "\n".join(tail) if tail else "(no output)"

    # --- resources ---------------------------------------------------------------------------

    def samples(self, since: float | None = None) -> tuple[ResourceSample, ...]:
        with self._samples_lock:
            return tuple(s for s in self._samples if since is None or s.at >= since)

    def _sample_loop(self) -> None:
        assert self._process is not None
        try:
            root = psutil.Process(self._process.pid)
        except psutil.Error:
            return
        known: dict[int, psutil.Process] = {}
        also = [p for p in (_process_or_none(pid) for pid in self.spec.cpu_also_of) if p is not None]
        while not self._stop_sampling.wait(self.sample_interval_s):
            sample = sample_tree(root, known)
            if sample is None:
                self.alive()
                return
            extra = [s for s in (sample_tree(p, known) for p in also) if s is not None]
            if extra:
                sample = replace(sample, cpu_pct=sample.cpu_pct + sum(s.cpu_pct for s in extra))
            with self._samples_lock:
                self._samples.append(sample)


def _process_or_none(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def sample_tree(root: psutil.Process, known: dict[int, psutil.Process]) -> ResourceSample | None:
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    rss = cpu = 0.0
    fds = threads = 0
    for proc in procs:
        # Keep Process objects so cpu_percent() measures since the previous sample.
        proc = known.setdefault(proc.pid, proc)
        try:
            with proc.oneshot():
                rss += proc.memory_info().rss
                cpu += proc.cpu_percent(None)
                fds += proc.num_fds()
                threads += proc.num_threads()
        except psutil.Error:
            continue
    return ResourceSample(
        at=time.time(), rss_mb=rss / 2**20, cpu_pct=cpu, open_fds=fds, threads=threads
    )

