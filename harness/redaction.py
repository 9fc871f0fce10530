"""Keep credentials out of everything the harness writes.

Two nets: the exact secrets the harness knows (every credential-looking field of every
provisioned customer), and patterns for the ones it cannot know (bearer tokens, passwords in
URLs, credential query parameters and JSON fields, auth headers and cookies). The record is
redacted before the reports are built, and every text file of the run folder is swept at the
end, so a key echoed by the target into an error body or a log does not survive either.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

MARK = "[REDACTED]"
SECRET_FIELD = re.compile(r"(key|token|secret|passw|cookie|session|auth|credential)", re.I)
_MIN_SECRET_LEN = 6  # shorter values are too likely to match innocent text

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {MARK}"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@\"']+:[^/\s@\"']+@"), rf"\1{MARK}@"),
    (
        re.compile(r"(?i)([?&;](?:api[_-]?key|access[_-]?token|token|password|passwd|secret|sig)=)[^&\s\"'<>]+"),
        rf"\1{MARK}",
    ),
    (
        re.compile(
            r"(?i)(\"[^\"]*(?:api[_-]?key|token|secret|password|passwd|cookie|session)[^\"]*\"\s*:\s*\")[^\"]+(\")"
        ),
        rf"\1{MARK}\2",
    ),
    (
        re.compile(r"(?im)^(\s*(?:x-api-key|authorization|cookie|set-cookie|x-auth-token)\s*[:=]\s*).+$"),
        rf"\1{MARK}",
    ),
    (
        re.compile(r"(?i)('(?:x-api-key|authorization|cookie|x-auth-token)'\s*:\s*')[^']+(')"),
        rf"\1{MARK}\2",
    ),
)

T = TypeVar("T")


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        unique = sorted({s for s in secrets if isinstance(s, str) and len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True)
        self._exact = re.compile("|".join(re.escape(s) for s in unique)) if unique else None

    @classmethod
    def for_customers(cls, customers: Iterable[Mapping[str, Any]]) -> Redactor:
        return cls(_secret_values(customers))

    def text(self, value: str) -> str:
        if self._exact is not None:
            value = self._exact.sub(MARK, value)
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return value

    def value(self, value: T) -> T:
        """Redact every string inside dataclasses, mappings and sequences (returns a copy)."""
        return _walk(value, self.text)  # type: ignore[no-any-return]

    def sweep(self, folder: Path, suffixes: tuple[str, ...] = (".json", ".md", ".html", ".xml", ".log", ".txt", ".jsonl", ".csv")) -> int:
        """Rewrite every text file under `folder` with secrets replaced; returns files changed."""
        changed = 0
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.suffix not in suffixes:
                continue
            try:
                original = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            cleaned = self.text(original)
            if cleaned != original:
                tmp = path.with_name(f".{path.name}.redacting")
                tmp.write_text(cleaned, encoding="utf-8")
                os.replace(tmp, path)
                changed += 1
        return changed


def _secret_values(customers: Iterable[Mapping[str, Any]]) -> list[str]:
    found: list[str] = []

    def visit(obj: Any, key: str = "") -> None:
        if isinstance(obj, Mapping):
            for k, v in obj.items():
                visit(v, str(k))
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                visit(v, key)
        elif isinstance(obj, str) and SECRET_FIELD.search(key):
            found.append(obj)

    for customer in customers:
        visit(customer)
    return found


def _walk(obj: Any, fn: Any) -> Any:
    if isinstance(obj, str):
        return fn(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _walk(getattr(obj, f.name), fn) for f in dataclasses.fields(obj)}
        return dataclasses.replace(obj, **changes)
    if isinstance(obj, Mapping):
        return type(obj)({k: _walk(v, fn) for k, v in obj.items()}) if isinstance(obj, dict) else {k: _walk(v, fn) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(_walk(v, fn) for v in obj)
    if isinstance(obj, list):
        return [_walk(v, fn) for v in obj]
    return obj
