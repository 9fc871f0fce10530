"""Two "hosts" on this machine: network namespaces joined by a veth pair, for distributed tests.

``two_hosts()`` makes namespaces ``<tag>m`` (the master's host, 10.213.K.1) and ``<tag>w`` (a
worker's host, 10.213.K.2) on a /30 of their own, runs commands in either, and on exit kills
every process still inside them and deletes both namespaces (the veth pair goes with them).
Where namespaces cannot be made (not root, no ``ip``, a container without CAP_NET_ADMIN) the
test is skipped and says why. Traffic stays inside the pair: nothing is routed out.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Hosts:
    master_ns: str
    worker_ns: str
    master_ip: str
    worker_ip: str
    worker_link: str  # the worker's end of the veth pair, inside worker_ns

    def command(self, ns: str, argv: Sequence[str], hostname: str | None = None) -> list[str]:
        """``argv`` run inside namespace ``ns``; with ``hostname``, in a UTS namespace of its own
        too, so it reports another host name (as a separate machine would)."""
        cmd = ["ip", "netns", "exec", ns]
        if hostname is None:
            return [*cmd, *argv]
        script = 'hostname "$0" && exec "$@"'
        return [*cmd, "unshare", "--uts", "sh", "-c", script, hostname, *argv]

    def python_in(self, ns: str, folder: Path) -> str:
        """A script that runs this interpreter inside ``ns`` (for ``run_load(python=...)``)."""
        path = folder / f"python-in-{ns}"
        path.write_text(f'#!/bin/sh\nexec ip netns exec {ns} {sys.executable} "$@"\n', encoding="utf-8")
        path.chmod(0o755)
        return str(path)

    def pids(self, ns: str) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=10)
        return [int(p) for p in out.stdout.split()]

    def kill_host(self, ns: str) -> None:
        """The host is gone: its link drops (no goodbye on the wire), then its processes die."""
        subprocess.run(["ip", "-n", ns, "link", "set", self.worker_link, "down"], check=False, timeout=10)
        for pid in self.pids(ns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)


def _cannot_make(reason: str) -> None:
    pytest.skip(f"network namespaces cannot be made here ({reason}); the two-host tests need root and `ip netns`")


@contextlib.contextmanager
def two_hosts() -> Iterator[Hosts]:
    if os.geteuid() != 0:
        _cannot_make("not root")
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        _cannot_make("no `ip` or `unshare` command")
    k = os.getpid() % 250 + 1  # a /30 per test process, so parallel runs do not collide
    tag = f"sr{os.getpid() % 100000}"
    hosts = Hosts(f"{tag}m", f"{tag}w", f"10.213.{k}.1", f"10.213.{k}.2", f"{tag}w0")
    made: list[str] = []
    try:
        for ns in (hosts.master_ns, hosts.worker_ns):
            done = _run("ip", "netns", "add", ns)
            if done.returncode != 0:
                _cannot_make(done.stderr.strip() or f"ip netns add exited {done.returncode}")
            made.append(ns)
        steps = [
            ("ip", "link", "add", f"{tag}m0", "type", "veth", "peer", "name", hosts.worker_link),
            ("ip", "link", "set", f"{tag}m0", "netns", hosts.master_ns),
            ("ip", "link", "set", hosts.worker_link, "netns", hosts.worker_ns),
            ("ip", "-n", hosts.master_ns, "addr", "add", f"{hosts.master_ip}/30", "dev", f"{tag}m0"),
            ("ip", "-n", hosts.worker_ns, "addr", "add", f"{hosts.worker_ip}/30", "dev", hosts.worker_link),
            ("ip", "-n", hosts.master_ns, "link", "set", f"{tag}m0", "up"),
            ("ip", "-n", hosts.worker_ns, "link", "set", hosts.worker_link, "up"),
            ("ip", "-n", hosts.master_ns, "link", "set", "lo", "up"),
            ("ip", "-n", hosts.worker_ns, "link", "set", "lo", "up"),
        ]
        for step in steps:
            done = _run(*step)
            if done.returncode != 0:
                _cannot_make(f"{' '.join(step)}: {done.stderr.strip()}")
        yield hosts
    finally:
        for ns in made:
            for pid in hosts.pids(ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _run("ip", "netns", "del", ns)
