"""Headless Chromium from Debian's packages, as the report's browser tests open a page."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Open ``page`` from disk, as a user opens a run folder's report, with ``extra`` switches
    (``--dump-dom``, ``--screenshot=...``); skips the test where Chromium is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=3000", "--window-size=1280,2400", *extra, page.as_uri(),
    ]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=90, check=False)


class DevToolsPage:
    """A page opened in headless Chromium and driven over the DevTools protocol, for what a
    one-shot ``--dump-dom`` cannot tell: console errors, layout, what the browser built.

    DevTools evaluates in the page whatever its Content-Security-Policy forbids to the page itself,
    so the report's own CSP (no scripts) stays on while the test measures it.
    """

    def __init__(self, tmp_path: Path, page: Path, *, width: int = 1280, height: int = 900) -> None:
        if not Path(CHROMIUM).exists():
            pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")
        from websockets.sync.client import connect

        profile = tmp_path / "devtools-profile"
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--remote-debugging-port=0", f"--window-size={width},{height}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.messages: list[dict[str, object]] = []
        self._id = 0
        self._stack = contextlib.ExitStack()
        try:
            browser_ws = self._devtools_url(profile)
            port = browser_ws.split(":")[2].split("/")[0]
            self.ws = self._stack.enter_context(connect(self._page_ws(port), max_size=None, open_timeout=20))
            for method in ("Page.enable", "Runtime.enable", "Log.enable"):
                self.call(method)
            self.call("Page.navigate", url=page.as_uri())
            self._wait_for("Page.loadEventFired")
        except BaseException:
            self.close()
            raise

    def _devtools_url(self, profile: Path) -> str:
        deadline = time.monotonic() + 30
        active = profile / "DevToolsActivePort"
        while time.monotonic() < deadline:
            if active.exists():
                lines = active.read_text().splitlines()
                if len(lines) >= 2:
                    return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited {self.process.returncode}")
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    @staticmethod
    def _page_ws(port: str) -> str:
        import json
        import urllib.request

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:  # loopback only
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
            time.sleep(0.1)
        raise TimeoutError("chromium opened no page")

    def call(self, method: str, **params: object) -> dict[str, object]:
        import json

        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})  # type: ignore[no-any-return]
            self.messages.append(message)

    def _wait_for(self, event: str) -> None:
        import json

        if any(m.get("method") == event for m in self.messages):
            return
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            self.messages.append(message)
            if message.get("method") == event:
                return

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")  # type: ignore[union-attr]

    def console_errors(self) -> list[str]:
        """Errors and warnings the page raised: console calls, exceptions, log entries (a CSP
        violation, a failed load)."""
        found = []
        for m in self.messages:
            params = m.get("params") or {}
            assert isinstance(params, dict)
            if m.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                found.append(str(params.get("args")))
            elif m.get("method") == "Runtime.exceptionThrown":
                found.append(str(params.get("exceptionDetails")))
            elif m.get("method") == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
                found.append(str(params["entry"].get("text")))
        return found

    def close(self) -> None:
        self._stack.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> DevToolsPage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
