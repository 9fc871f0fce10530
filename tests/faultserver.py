"""A small fault-injecting HTTP target for the robustness tests (loopback only).

    python tests/faultserver.py --port 8123 --mode MODE [--after N]

Every mode serves ``GET /health`` and ``POST /customers`` (provisioning: a JSON customer with an
API key, a bearer token and a password) like a healthy service; ``GET /items`` (the load) is
where the fault is, once ``--after`` requests to it have been answered normally:

    ok            200 with a small JSON list
    crash         the process exits (code 3) on the next /items request
    hang          /items never answers (the connection stays open)
    garbage       /items cycles: invalid JSON, wrong content type, a 50 MB body, a slow drip
    script        /items answers 500 with a body and a reason phrase holding <script> payloads
    echo-secrets  /items answers 500 echoing the request's API key, bearer token and cookie
    hostile       script and echo-secrets at once (one audit serves both tests)
    never-healthy /health answers 503 forever (and prints why, once a second)
    exit-at-start prints a fatal message and exits (code 3) before listening

Standard library only, so it starts fast and runs under any interpreter.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCRIPT = '<script>document.title="PWNED"</script><img src=x onerror="document.title=\'PWNED\'">'
BIG_BYTES = 50 * 1024 * 1024
HANG_S = 300.0  # bounded, so a forgotten server still ends by itself
DRIP_S = 60.0  # the slow drip lasts this long at most

MODES = ("ok", "crash", "hang", "garbage", "script", "echo-secrets", "hostile", "never-healthy",
         "exit-at-start")


class State:
    def __init__(self, mode: str, after: int) -> None:
        self.mode = mode
        self.after = after
        self.items = itertools.count()
        self.customers = itertools.count()
        self.garbage = itertools.cycle(("invalid-json", "wrong-type", "big", "drip"))
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server_version = "faultserver/1"
    protocol_version = "HTTP/1.1"
    state: State

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass  # the request line is printed by log_request instead

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # One line per request on stdout (the harness keeps it in target.log): tests count them.
        sys.stdout.write(f"request {self.command} {self.path.split('?')[0]}\n")
        sys.stdout.flush()

    def _send(self, status: int, body: bytes, ctype: str = "application/json", reason: str | None = None) -> None:
        self.send_response(status, reason)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        mode = self.state.mode
        if self.path.startswith("/health"):
            if mode == "never-healthy":
                self._send(503, b'{"status": "starting"}')
            else:
                self._send(200, b'{"status": "ok"}')
            return
        if not self.path.startswith("/items"):
            self._send(404, b'{"error": "not found"}')
            return
        with self.state.lock:
            n = next(self.state.items)
        if n < self.state.after or mode == "ok":
            self._send(200, b'[{"id": 1, "name": "widget"}]')
        elif mode == "crash":
            sys.stdout.write(f"faultserver: crashing on /items request {n}\n")
            sys.stdout.flush()
            os._exit(3)
        elif mode == "hang":
            time.sleep(HANG_S)
        elif mode == "garbage":
            with self.state.lock:
                kind = next(self.state.garbage)
            self._garbage(kind)
        elif mode == "hostile":
            self._hostile()
        elif mode == "script":
            self._send(500, f"<html><title>{SCRIPT}</title><body>{SCRIPT}</body></html>".encode(),
                       ctype="text/html", reason=SCRIPT)  # fmt: skip
        elif mode == "echo-secrets":
            echoed = {
                "error": "bad credentials",
                "x-api-key": self.headers.get("X-API-Key", ""),
                "authorization": self.headers.get("Authorization", ""),
                "cookie": self.headers.get("Cookie", ""),
            }
            text = "bad credentials: " + json.dumps(echoed) + f" {self.headers.get('Authorization', '')}"
            self._send(500, text.encode(), ctype="text/plain")
        else:
            self._send(200, b"[]")

    def _hostile(self) -> None:
        echoed = f"key={self.headers.get('X-API-Key', '')} {self.headers.get('Authorization', '')}"
        body = f"<html><title>{SCRIPT}</title><body>{SCRIPT} bad credentials: {echoed}</body></html>"
        self._send(500, body.encode(), ctype="text/html", reason="Oops " + SCRIPT)

    def _garbage(self, kind: str) -> None:
        if kind == "invalid-json":
            self._send(200, b'{"id": 1, "name": ')
        elif kind == "wrong-type":
            self._send(200, b"<html><body>not json</body></html>", ctype="text/html")
        elif kind == "big":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(BIG_BYTES))
            self.end_headers()
            chunk = b"x" * (1024 * 1024)
            try:
                for _ in range(BIG_BYTES // len(chunk)):
                    self.wfile.write(chunk)
            except OSError:
                pass  # the client gave up reading: that is the point
        else:  # drip: a valid header, then one byte every 0.2 s
            body = b'[{"id": 1, "name": "' + b"z" * 300 + b'"}]'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            deadline = time.monotonic() + DRIP_S
            try:
                for byte in body:
                    if time.monotonic() > deadline:
                        break
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        if not self.path.startswith("/customers"):
            self._send(404, b'{"error": "not found"}')
            return
        with self.state.lock:
            n = next(self.state.customers)
        customer = {
            "id": n,
            "api_key": f"sk_live_{n:04d}_SECRETKEY{os.getpid()}",
            "token": f"tok{n:04d}ZZSECRETTOKEN{os.getpid()}",
            "password": f"pw{n:04d}Hunter2Secret",
        }
        self._send(201, json.dumps(customer).encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="faultserver")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, default="ok")
    parser.add_argument("--after", type=int, default=0, help="answer this many /items normally first")
    args = parser.parse_args(argv)
    print(f"faultserver: mode {args.mode} on 127.0.0.1:{args.port}", flush=True)
    if args.mode == "exit-at-start":
        print("faultserver: fatal: cannot open database 'orders.db' (permission denied)", flush=True)
        return 3
    Handler.state = State(args.mode, args.after)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.mode == "never-healthy":
        def complain() -> None:
            for _ in range(600):
                print("faultserver: waiting for the database migration lock", flush=True)
                time.sleep(1.0)

        threading.Thread(target=complain, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
