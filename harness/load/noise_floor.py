"""The noise floor: a built-in null target with a known service time, and the calibration on it.

    python -m harness.load.noise_floor --port 8099 --service-ms 0.5 [--stall-every 10 --stall-for 1]

Every request gets ``200 {"ok":true}`` after ``--service-ms`` of real work (a busy wait below
2 ms, where sleeping is too coarse; a sleep above). With ``--stall-every E --stall-for F`` the
server freezes ALL responses for the last F seconds of every E-second cycle (counted from start):
whatever is pending is answered when the freeze ends. The server records how long each request
spent inside it (parsed -> response written) in an HDR histogram: ``GET /__stats`` returns
``{"count": n, "hdr": base64}`` and ``POST /__reset`` clears it; ``/__status/NNN`` answers
with status NNN (for error-handling tests). This is the ground truth the
fidelity benchmark compares the load generators with, and what ``measure_noise_floor`` calibrates
the harness against: the engine's own latency against a server whose service time is known is
the floor below which a finding is the harness's noise, not the target's.

The server is asyncio, raw keep-alive HTTP/1.1, no dependencies beyond hdrh. Loopback only. This
module imports no Locust: the calibration's locustfile is written to a temporary file and runs
in the engine child (``harness.load.stage.run_load``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from harness.load import recording
from harness.load.plan import LoadPlan, PhasePlan
from harness.load.stage import run_load
from harness.records import NoiseFloor

__all__ = ["NullTarget", "main", "measure_noise_floor", "run_null_target", "server_stats"]

BUSY_WAIT_LIMIT_MS = 2.0
_OK_BODY = b'{"ok":true}'


class NullTarget:
    """The server's state: its service time, stall pattern and own latency histogram."""

    def __init__(self, service_ms: float = 0.5, stall_every: float | None = None, stall_for: float = 1.0) -> None:
        self.service_ms = service_ms
        self.stall_every = stall_every
        self.stall_for = stall_for
        self.started = time.monotonic()
        self.hist = recording.new_histogram()

    def stall_remaining(self, now: float) -> float:
        """Seconds left in the current freeze (0 when not frozen)."""
        if not self.stall_every:
            return 0.0
        pos = (now - self.started) % self.stall_every
        start = self.stall_every - self.stall_for
        return self.stall_every - pos if pos >= start else 0.0

    async def respond(self, method: str, path: str) -> tuple[int, bytes]:
        if path.startswith("/__stats"):
            return 200, json.dumps({"count": self.hist.get_total_count(), "hdr": recording.encode(self.hist)}).encode()
        if path.startswith("/__reset"):
            self.hist.reset()
            return 200, _OK_BODY
        if path.startswith("/__status/"):  # /__status/503 answers 503, for error handling tests
            code = int(path.split("/")[2].split("?")[0] or 500)
            return code, b'{"error":"requested status %d"}' % code
        if self.service_ms > 0:
            if self.service_ms <= BUSY_WAIT_LIMIT_MS:
                end = time.perf_counter() + self.service_ms / 1000.0
                while time.perf_counter() < end:
                    pass
            else:
                await asyncio.sleep(self.service_ms / 1000.0)
        wait = self.stall_remaining(time.monotonic())
        if wait > 0:
            await asyncio.sleep(wait)
        return 200, _OK_BODY

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                t0 = time.perf_counter()
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
                length = 0
                close = False
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    lname = name.strip().lower()
                    if lname == "content-length":
                        length = int(value.strip() or 0)
                    elif lname == "connection" and value.strip().lower() == "close":
                        close = True
                if length:
                    await reader.readexactly(length)
                status, body = await self.respond(method, path)
                writer.write(
                    b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (status, len(body), body)
                )
                await writer.drain()
                if not path.startswith("/__"):
                    recording.record_ms(self.hist, (time.perf_counter() - t0) * 1000.0)
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()


async def _serve(target: NullTarget, host: str, port: int) -> None:
    server = await asyncio.start_server(target.handle, host, port, backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.load.noise_floor", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--service-ms", type=float, default=0.5)
    parser.add_argument("--stall-every", type=float, default=None, help="seconds between freezes")
    parser.add_argument("--stall-for", type=float, default=1.0, help="length of each freeze, seconds")
    parser.add_argument("--expose", action="store_true",
                        help="allow a --host off loopback (a network namespace of a test; it answers anyone)")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.expose:
        parser.error(f"--host {args.host}: the null target serves loopback only; use 127.0.0.1 (or --expose)")
    target = NullTarget(args.service_ms, args.stall_every, args.stall_for)
    asyncio.run(_serve(target, args.host, args.port))
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, method: str = "GET", timeout: float = 2.0) -> bytes:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback only
        return bytes(resp.read())


@contextlib.contextmanager
def run_null_target(
    service_ms: float = 0.5,
    stall_every: float | None = None,
    stall_for: float = 1.0,
    port: int | None = None,
    startup_timeout_s: float = 10.0,
) -> Iterator[str]:
    """Start the null target in its own process for the ``with`` block; yields its base URL."""
    port = port or _free_port()
    cmd = [sys.executable, "-m", "harness.load.noise_floor", "--port", str(port), "--service-ms", str(service_ms)]
    if stall_every:
        cmd += ["--stall-every", str(stall_every), "--stall-for", str(stall_for)]
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            try:
                _get(base_url + "/__stats", timeout=0.5)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"null target on port {port} did not start (exit {proc.poll()})") from None
                time.sleep(0.05)
        yield base_url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def server_stats(base_url: str, reset: bool = False) -> str:
    """The null target's own histogram (encoded, µs) of time spent inside the server."""
    data = json.loads(_get(base_url + "/__stats"))
    if reset:
        _get(base_url + "/__reset", method="POST")
    return str(data["hdr"])


NOISE_LOCUSTFILE = '''\
from harness.load.kit import CustomerUser, task


class NullUser(CustomerUser):
    @task
    def get(self):
        self.client.get("/noise", name="GET /noise")
'''


def measure_noise_floor(
    rps: float,
    duration_s: float,
    *,
    service_ms: float = 0.5,
    warmup_s: float = 3.0,
    output_dir: str | None = None,
    cancel: threading.Event | None = None,
    **plan_options: object,
) -> NoiseFloor | None:
    """Run the load engine against the null target and return the harness's own latency floor.

    Returns None when ``cancel`` stopped the measurement before its steady window finished.
    """
    with tempfile.TemporaryDirectory(prefix="scaleready-noise-") as tmp:
        locustfile = Path(tmp) / "noise_locustfile.py"
        locustfile.write_text(NOISE_LOCUSTFILE, encoding="utf-8")
        out = output_dir or str(Path(tmp) / "out")
        with run_null_target(service_ms=service_ms) as base_url:
            phases = []
            if warmup_s > 0:
                phases.append(PhasePlan("warmup", "warmup", rps, warmup_s))
            phases.append(PhasePlan("steady", "steady", rps, duration_s))
            plan = LoadPlan(locustfile=str(locustfile), host=base_url, output_dir=out,
                            phases=tuple(phases), **plan_options)  # type: ignore[arg-type]
            outcome = run_load(plan, cancel=cancel)
        steady = outcome.phase("steady")
        if outcome.interrupted:
            return None
        if steady is None:
            raise RuntimeError(f"noise floor measurement failed: {outcome.error}")
        return NoiseFloor(offered_rps=rps, server_service_ms=service_ms, latency=steady.latency)


if __name__ == "__main__":
    sys.exit(main())
