"""Keep credentials out of everything the harness writes.

Two nets: the exact secrets the harness knows (every credential-looking field of every
provisioned customer, and every value of the target's start command and environment that looks
like a secret or that the pack names in `target.secrets`), and patterns for the ones it cannot
know (bearer tokens, passwords in URLs, credential query parameters, JSON fields and headers,
command-line options and environment assignments, the shapes of common cloud keys). The record
is redacted before the reports are built, and every text file of the run folder is swept at the
end, so a key echoed by the target into an error body or a log does not survive either.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

MARK = "[REDACTED]"
SECRET_FIELD = re.compile(r"(key|token|secret|passw|cookie|session|auth|credential)", re.I)
_MIN_SECRET_LEN = 6  # shorter values are too likely to match innocent text

# Names that say "the value beside me is a credential", in JSON keys, headers, options and
# environment variables. Not a bare "key" or "auth": "key" and "author" are everywhere in reports.
_SECRET_NAME = (
    r"api[_-]?key|access[_-]?key|secret|token|password|passwd|cookie|session|"
    r"authori[sz]ation|x-auth|auth[_-]?token|credential|private[_-]?key|signing[_-]?key"
)
# The same names as environment variables (underscores only), and Azure's "AccountKey=".
_ENV_SECRET_NAME = _SECRET_NAME.replace("[_-]", "_").replace("-", "_") + "|accountkey"
# A value in running text ends at whitespace or at a character that closes a quoted or
# structured context, so that JSON and HTML stay well-formed after the sweep.
_VALUE = r"[^\s\"'<>&,;\\]{4,}"

# The shapes of well-known credentials: recognisable without any context around them.
_KEY_SHAPES = re.compile(
    r"\b(?:"
    r"(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|A3T[A-Z0-9])[A-Z0-9]{16}"  # AWS access key id
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub tokens
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab personal access token
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}"  # Stripe secret and restricted keys
    r"|sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"  # OpenAI / Anthropic API keys
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # a JWT
    r")"
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        MARK,
    ),
    (_KEY_SHAPES, MARK),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {MARK}"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@\"']+:[^/\s@\"']+@"), rf"\1{MARK}@"),
    (
        re.compile(r"(?i)([?&;](?:api[_-]?key|access[_-]?token|token|password|passwd|secret|sig)=)[^&\s\"'<>]+"),
        rf"\1{MARK}",
    ),
    # "name": "value" in JSON, also escaped inside another JSON string (\"name\": \"value\"):
    # a JSON field or a header sent as JSON ({"Authorization": "Token ..."}).
    (
        re.compile(rf"(?i)(\\?\"[^\"\\]*(?:{_SECRET_NAME})[^\"\\]*\\?\"\s*:\s*\\?\")(?:[^\"\\]|\\[^\"])+(\\?\")"),
        rf"\1{MARK}\2",
    ),
    (
        re.compile(r"(?im)^(\s*(?:x-api-key|authorization|proxy-authorization|cookie|set-cookie|x-auth-token)\s*[:=]\s*).+$"),
        rf"\1{MARK}",
    ),
    (
        re.compile(rf"(?i)('[^'\s]*(?:{_SECRET_NAME})[^'\s]*'\s*:\s*')[^']+(')"),
        rf"\1{MARK}\2",
    ),
    # A command line's option (--api-key X, --db-password=X) ...
    (
        re.compile(rf"(?i)(?<![\w-])(--?[\w-]*(?:{_SECRET_NAME})[\w-]*)(=|\s+)(?!-)(?!\[REDACTED\]){_VALUE}"),
        rf"\1\2{MARK}",
    ),
    # ... and an environment assignment (API_KEY=X, export DB_PASSWORD=X, AccountKey=X).
    (
        re.compile(rf"(?i)\b([A-Za-z0-9_]*(?:{_ENV_SECRET_NAME})[A-Za-z0-9_]*=){_VALUE}"),
        rf"\1{MARK}",
    ),
)

T = TypeVar("T")


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        unique = sorted({s for s in secrets if isinstance(s, str) and len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True)
        self._exact = re.compile("|".join(re.escape(s) for s in unique)) if unique else None

    @classmethod
    def for_customers(cls, customers: Iterable[Mapping[str, Any]], also: Iterable[str] = ()) -> Redactor:
        return cls([*_secret_values(customers), *also])

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
        paths = (p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in suffixes)
        return sum(self.file(path) for path in paths)

    def file(self, path: Path) -> bool:
        """Rewrite one text file with secrets replaced (atomically); True if it changed."""
        try:
            original = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        cleaned = self.text(original)
        if cleaned == original:
            return False
        tmp = path.with_name(f".{path.name}.redacting")
        tmp.write_text(cleaned, encoding="utf-8")
        os.replace(tmp, path)
        return True


def start_secrets(
    command: str,
    env: Mapping[str, str] = {},  # noqa: B006 - read only
    named: Sequence[str] = (),
    inherited: Mapping[str, str] | None = None,
) -> list[str]:
    """The values of a start command and its environment that are credentials.

    A value is one when its option or variable looks like a secret (`--api-key X`,
    `--token=X`, `API_KEY=X` before the program or in ``env``), or when the pack names the option
    or variable in `target.secrets`; a named variable is also read from ``inherited`` (the
    harness's own environment, which the target inherits), so a key the service echoes into its
    log is known too.
    """
    wanted = {n.lower().lstrip("-") for n in named}

    def is_secret(name: str) -> bool:
        bare = name.lstrip("-")
        return bare.lower() in wanted or _SECRET_NAME_RE.search(bare) is not None

    found: list[str] = []
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: the patterns still apply to the text
        words = command.split()
    for i, word in enumerate(words):
        name, eq, value = word.partition("=")
        if eq and value and (word.startswith("-") or _ENV_NAME.fullmatch(name)) and is_secret(name):
            found.append(value)
        elif (
            word.startswith("-") and not eq and i + 1 < len(words) and is_secret(word)
            and not words[i + 1].startswith("-")
        ):  # fmt: skip
            found.append(words[i + 1])
    found += [value for name, value in env.items() if is_secret(name)]
    source = os.environ if inherited is None else inherited
    found += [source[n] for n in named if n in source]
    return [v for v in found if v]


_SECRET_NAME_RE = re.compile(_SECRET_NAME, re.I)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
