"""Waiting until an instant with sub-millisecond precision inside gevent.

gevent's timers ride on libev's ``epoll_wait``, whose timeout is whole milliseconds rounded up:
``gevent.sleep(0.0003)`` returns about 1 ms later than asked (figures: benchmarks/README.md).
The arrival dispatcher would then send every token up to a millisecond after its intended
start, and that lateness shows as the target's latency.

A Linux ``timerfd`` armed at the absolute instant makes ``epoll_wait`` return when it expires,
whatever its own timeout: the wait ends tens of microseconds late instead of a millisecond.
Python 3.11 has no ``os.timerfd_*`` (3.13 has), so the two calls go through ctypes. Where that is
not available (not Linux) ``wait_until`` falls back to ``gevent.sleep``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import time

import gevent
from gevent.hub import get_hub

__all__ = ["PreciseWait"]

_CLOCK_MONOTONIC = 1  # time.perf_counter() reads this clock on Linux
_TFD_TIMER_ABSTIME = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_READ = 1  # libev EV_READ


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    if not hasattr(os, "O_CLOEXEC") or time.get_clock_info("perf_counter").implementation != (
        "clock_gettime(CLOCK_MONOTONIC)"
    ):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p,
        ]  # fmt: skip
    except (OSError, AttributeError):
        return None
    return libc


class PreciseWait:
    """``wait_until(t)``: block this greenlet until ``time.perf_counter() >= t``, precisely.

    One timer file descriptor per instance; ``close()`` releases it. Only one greenlet may wait
    on an instance at a time (the dispatcher owns its own).
    """

    def __init__(self) -> None:
        self._fd = -1
        self._watcher = None
        libc = _libc()
        if libc is None:
            return
        fd = libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            return
        self._libc = libc
        self._fd = fd
        self._spec = _Itimerspec()
        self._watcher = get_hub().loop.io(fd, _READ)

    @property
    def precise(self) -> bool:
        return self._fd >= 0

    def wait_until(self, instant: float) -> None:
        if self._fd < 0:
            delay = instant - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            return
        sec = int(instant)
        self._spec.it_value.tv_sec = sec
        self._spec.it_value.tv_nsec = max(1, int((instant - sec) * 1e9))  # 0 would disarm it
        if self._libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None) != 0:
            gevent.sleep(max(0.0, instant - time.perf_counter()))
            return
        try:
            get_hub().wait(self._watcher)
        finally:
            # Consume the expiry, or the next wait returns at once. Nothing to read when the wait
            # ended some other way (the greenlet was killed before the instant).
            with contextlib.suppress(BlockingIOError):
                os.read(self._fd, 8)

    def close(self) -> None:
        if self._fd >= 0:
            if self._watcher is not None:
                self._watcher.close()
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()
