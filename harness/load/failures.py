"""Failed requests: the reason each one failed, and the samples kept to replay them.

A reason is a short stable word the reports group by: ``http-503``, ``timeout``, ``connection``,
``oversized`` (a body past ``max_response_bytes``), ``check-failed`` (a pack's
``catch_response`` check), or the pack's own reason when it names one (``invalid-json``). The
first failures of a phase are kept verbatim (``error_sample``) so the audit can replay each
distinct server error alone and tell a bug from a capacity limit.

Imported by the engine child only (Locust).
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import gevent
from locust.exception import CatchResponseError

from harness.load.bounding import ResponseTooLarge
from harness.records import ErrorSample

__all__ = ["MAX_BODY_EXCERPT", "MAX_REQUEST_BODY", "classify", "error_sample"]

MAX_BODY_EXCERPT = 500
MAX_REQUEST_BODY = 2048

_PACK_REASON = re.compile(r"[a-z][a-z0-9-]{1,40}")  # "invalid-json": a pack's own failure reason


def classify(exception: BaseException | None, response: Any, length: int, max_bytes: int) -> str | None:
    """The error reason of one request ("http-500", "timeout", ...), or None for a success."""
    if exception is None:
        return "oversized" if length > max_bytes else None
    status = getattr(response, "status_code", 0) or 0
    if status >= 400:
        return f"http-{status}"
    if isinstance(exception, CatchResponseError):
        underlying = getattr(response, "error", None)
        if status == 0 and isinstance(underlying, BaseException):
            # The pack marked a request that got no answer at all ("status 0"): the reason is
            # why there was no answer (timeout, reset), not the pack's check.
            exception = underlying
        else:
            text = str(exception).strip()
            return text if _PACK_REASON.fullmatch(text) else "check-failed"
    original = getattr(exception, "original", None)  # geventhttpclient's RetriesExceeded
    if isinstance(original, BaseException):
        exception = original
    if isinstance(exception, ResponseTooLarge):
        return "oversized"
    name = type(exception).__name__.lower()
    text = str(exception).lower()
    if "timeout" in name or "timed out" in text or isinstance(exception, TimeoutError | gevent.Timeout):
        return "timeout"
    if isinstance(exception, OSError) or "connection" in name or "connection" in text:
        return "connection"
    return name or "error"


def error_sample(
    name: str, method: str, url: str | None, response: Any, reason: str, customer: int | None = None
) -> ErrorSample:
    """One failed request, kept verbatim (path and query, bodies cut short) to be replayed."""
    parts = urlsplit(url or "")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    body = ""
    try:
        content = getattr(response, "content", None) or b""
        body = content[:MAX_BODY_EXCERPT].decode("utf-8", errors="replace")
    except Exception:  # the body itself may be the failure (reset mid-read)
        body = ""
    request_body = None
    req = getattr(response, "request", None)
    raw = getattr(req, "body", None) if req is not None else None
    if raw:
        request_body = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))[:MAX_REQUEST_BODY]
    return ErrorSample(
        endpoint=name, method=method, url=path or (url or ""),
        status=getattr(response, "status_code", 0) or 0, reason=reason,
        body_excerpt=body, at=time.time(), request_body=request_body,
        customer_index=customer,
    )  # fmt: skip
