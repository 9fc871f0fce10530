"""Bounds on every request the load engine sends: a total deadline and a body size limit.

Locust's socket timeouts bound each read, not the response: a target that drips one byte a second
never times out, and a 50 MB body is read whole into memory. Under the engine the whole exchange
(connect, headers, body) has one deadline, and the body is read in chunks and abandoned (connection
closed) past ``max_response_bytes``: both become failed requests ("timeout", "oversized"), and the
generator's memory and time stay bounded.

Imported by the engine only (it needs gevent, which Locust patches in).
"""

from __future__ import annotations

import logging
import time
import zlib
from typing import Any

import gevent
from gevent.hub import get_hub
from greenlet import getcurrent

from harness.pacing import RequestPacer

log = logging.getLogger("scaleready.engine")

__all__ = ["RequestDeadlines", "ResponseTooLarge", "bound_responses"]

# How often the watchdog looks for requests past their deadline, at most (a deadline fires up to
# this late); a twentieth of the timeout when that is shorter.
WATCH_EVERY_S = 0.05
_EXPIRING = float("inf")  # a request the watchdog has found late, its timeout on the way


class ResponseTooLarge(ConnectionError):
    """A body passed ``max_response_bytes``: reading stopped there and the connection was closed.

    A ``ConnectionError`` so that Locust's FastHttpSession turns it into a failed request (as it
    does a reset) instead of a crashed task.
    """


class RequestDeadlines:
    """Total deadlines of the requests in flight, enforced by one watchdog greenlet.

    A ``gevent.Timeout`` per request costs a timer start and a cancel on every request: about 2 %
    of the generator's CPU at its limit (py-spy, throughput benchmark). Here a request costs a
    dict entry while it runs, and the watchdog looks at the entries every ``resolution_s``. A late
    request gets a ``gevent.Timeout`` thrown into its greenlet from the hub, exactly as an expiring
    ``gevent.Timeout`` would do it, so Locust and geventhttpclient see what they always saw.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.resolution_s = min(WATCH_EVERY_S, timeout_s / 20)
        self.due: dict[Any, float] = {}  # greenlet -> perf_counter deadline of its request
        self._watchdog: gevent.Greenlet | None = None

    def start(self) -> None:
        self._watchdog = gevent.spawn(self._watch)

    def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.kill(block=False)

    def _watch(self) -> None:
        loop = get_hub().loop
        while True:
            gevent.sleep(self.resolution_s)
            now = time.perf_counter()
            late = [g for g, due in self.due.items() if due <= now]
            for glet in late:
                self.due[glet] = _EXPIRING
                loop.run_callback(self._expire, glet)

    def _expire(self, glet: Any) -> None:
        # Runs in the hub, like a timer's callback. The request may have ended since the watchdog
        # looked (and its greenlet may have started another, with a deadline of its own): throw
        # only into the request that was found late.
        if self.due.get(glet) == _EXPIRING:
            del self.due[glet]
            if not glet.dead:  # a dead greenlet's throw would land in the hub
                glet.throw(gevent.Timeout(self.timeout_s))


def bound_responses(
    user: Any, deadlines: RequestDeadlines, max_bytes: int, pacer: RequestPacer | None = None
) -> None:
    """Give every request of ``user`` a total deadline (``deadlines``) and a body size limit, and
    with ``pacer`` hold it until the pack's max_rps allows it (the wait is before the deadline
    starts)."""
    agent = getattr(getattr(user, "client", None), "client", None)
    original = getattr(agent, "_urlopen", None)
    if agent is None or original is None:
        return  # not a FastHttpUser: nothing we know how to bound
    due = deadlines.due
    timeout_s = deadlines.timeout_s

    def _urlopen(request: Any) -> Any:
        if pacer is not None:
            held = pacer.reserve()
            if held > 0:
                gevent.sleep(held)
        me = getcurrent()
        due[me] = time.perf_counter() + timeout_s
        response = None
        try:
            response = original(request)
            _read_body(response, max_bytes)
        except BaseException:
            if response is not None:
                _discard(response)
            raise
        finally:
            due.pop(me, None)
        return response

    agent._urlopen = _urlopen


def _read_body(response: Any, max_bytes: int) -> None:
    raw = response._response
    declared = getattr(raw, "content_length", None)
    if declared is not None and declared > max_bytes:
        raise ResponseTooLarge(
            f"the response declared {declared} bytes, over the limit of {max_bytes}"
        )
    if declared is not None:
        body = response.read()  # the parser stops at the declared length, checked above
    else:  # chunked or until close: read in chunks and stop past the limit
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = response.read(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(f"the response passed the limit of {max_bytes} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
    encoding = (response.headers.get("content-encoding") or "identity").lower()
    if encoding in ("gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        try:
            inflater = zlib.decompressobj(wbits)
            body = inflater.decompress(body, max_bytes + 1)
        except zlib.error:
            body = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, max_bytes + 1)
        if len(body) > max_bytes:
            raise ResponseTooLarge(
                f"the decompressed response passed the limit of {max_bytes} bytes"
            )
    elif encoding != "identity":
        response.release()
        response._response = _Replay(body)  # let Locust decode it (br) from what we read
        return
    response._cached_content = body
    response.release()


class _Replay:
    """A finished body standing in for the socket response, for encodings Locust decodes itself."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def read(self, n: int | None = None) -> bytes:
        body, self._body = self._body, b""
        return body

    def release(self) -> None:
        pass


def _discard(response: Any) -> None:
    """Close (never reuse) the connection of a response we stopped reading."""
    raw = getattr(response, "_response", None)
    pool, sock = getattr(raw, "_pool", None), getattr(raw, "_sock", None)
    try:
        if pool is not None and sock is not None:
            pool.release_socket(sock)
    except Exception:  # noqa: BLE001 - closing a broken socket may fail; it is dropped anyway
        log.debug("could not close a discarded connection", exc_info=True)
    finally:
        if raw is not None and hasattr(raw, "_sock"):
            raw._sock = None
            raw._pool = None
