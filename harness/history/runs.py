"""Run ids, run folders and the run history of a reports folder.

A reports folder looks like::

    reports/
      20261123-101500-ab12/     one folder per audit (created exclusively: never shared)
      history.jsonl             one JSON line per finished audit, oldest first
      LATEST                    the run id of the most recently finished audit
      .history.lock             taken (fcntl.flock) while history.jsonl and LATEST change

Several audits may finish at the same moment on the same reports folder (a nightly job and a
developer, two CI jobs on one runner): the history is only changed under an exclusive lock, each
line is written with a single append, and LATEST is replaced atomically, so no line is lost or
interleaved and LATEST always names a complete run. A torn last line (a crash mid-write) is
skipped when reading and never glued to the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from harness.errors import HarnessError
from harness.files import atomic_write_text
from harness.records import AuditRecord
from harness.timestamps import iso_utc

__all__ = [
    "HISTORY_FILE",
    "LATEST_FILE",
    "LOCK_FILE",
    "HistoryEntry",
    "create_run_dir",
    "entry_for",
    "latest_run_id",
    "new_run_id",
    "read_history",
    "record_run",
]

HISTORY_FILE = "history.jsonl"
LATEST_FILE = "LATEST"
LOCK_FILE = ".history.lock"

_RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{4}$")

# The 4-hex suffix: random per process, then counting, so two ids made by one process in the same
# second always differ, and two processes collide only by chance (1 in 65,536), which the
# exclusive mkdir in create_run_dir then catches instead of mixing two runs in one folder.
_suffixes = itertools.count(secrets.randbelow(0x10000))


@dataclass(frozen=True)
class HistoryEntry:
    """One line of history.jsonl."""

    run_id: str
    pack: str
    profile: str
    verdict: str
    ready_up_to: int | None
    predicted_customers: int | None
    finished_at: str  # ISO 8601 UTC
    started_at: str | None = None
    partial: bool = False
    headroom: float | None = None


def new_run_id(now: float | datetime, *, token: str | None = None) -> str:
    """``20261123-101500-ab12``: the UTC start time (so ids sort by time) and a 4-hex suffix.

    ``now`` is unix time or an aware datetime (a naive one is taken as UTC). ``token`` fixes the
    suffix, for tests.
    """
    if isinstance(now, datetime):
        dt = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    else:
        dt = datetime.fromtimestamp(now, tz=UTC)
    suffix = token if token is not None else f"{next(_suffixes) % 0x10000:04x}"
    if not re.fullmatch(r"[0-9a-f]{4}", suffix):
        raise ValueError(f"run id token {suffix!r}: must be 4 lowercase hex digits, e.g. 'ab12'")
    return f"{dt:%Y%m%d-%H%M%S}-{suffix}"


def create_run_dir(reports_dir: Path, run_id: str) -> Path:
    """Create ``reports_dir/run_id`` (and ``reports_dir`` if needed); never reuse an existing one."""
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r}: expected the form 20261123-101500-ab12")
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    run_dir = reports_dir / run_id
    try:
        run_dir.mkdir()
    except FileExistsError:
        raise HarnessError(
            f"run folder {run_dir} already exists: another audit started in the same second and "
            f"drew the same run id; run the audit again"
        ) from None
    return run_dir


def entry_for(record: AuditRecord) -> HistoryEntry:
    cap = record.capacity
    predicted = cap.predicted_customers if cap is not None else None
    headroom = cap.headroom if cap is not None else None
    return HistoryEntry(
        run_id=record.run_id,
        pack=record.pack,
        profile=record.profile,
        verdict=record.verdict,
        ready_up_to=record.ready_up_to,
        predicted_customers=None if predicted is None else int(round(predicted)),
        finished_at=iso_utc(record.finished_at) or "",
        started_at=iso_utc(record.started_at),
        partial=record.partial,
        headroom=None if headroom is None else round(headroom, 2),
    )


@contextlib.contextmanager
def _locked(reports_dir: Path) -> Iterator[None]:
    fd = os.open(reports_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def record_run(reports_dir: Path, record: AuditRecord) -> HistoryEntry:
    """Append ``record`` to history.jsonl and point LATEST at the newest finished run."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    entry = entry_for(record)
    line = (json.dumps(asdict(entry), ensure_ascii=False) + "\n").encode("utf-8")
    path = reports_dir / HISTORY_FILE
    with _locked(reports_dir):
        with open(path, "a+b") as f:  # "a": every write lands at the end, whatever the offset
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = b"\n" + line  # a torn line from a crash stays on its own line
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        newest = max(read_history(reports_dir), key=lambda e: (e.finished_at, e.run_id))
        atomic_write_text(reports_dir / LATEST_FILE, newest.run_id + "\n")
    return entry


def read_history(reports_dir: Path) -> list[HistoryEntry]:
    """Every readable line of history.jsonl, oldest first; malformed lines are skipped."""
    path = Path(reports_dir) / HISTORY_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    known = {f.name for f in fields(HistoryEntry)}
    entries = []
    for text in raw.decode("utf-8", errors="replace").splitlines():
        try:
            data = json.loads(text)
            entries.append(HistoryEntry(**{k: v for k, v in data.items() if k in known}))
        except (ValueError, TypeError, AttributeError):
            continue  # blank or torn line, or not one of ours
    return entries


def latest_run_id(reports_dir: Path) -> str | None:
    """The run id in LATEST, or None when no audit has finished in this folder."""
    try:
        text = (Path(reports_dir) / LATEST_FILE).read_text("utf-8").strip()
    except FileNotFoundError:
        return None
    return text or None
