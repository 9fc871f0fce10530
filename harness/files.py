"""Files the harness writes: atomically (a reader never sees half a file) and only where there is
room, checked before any load so that a bad reports folder fails in a second, not after an hour.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from harness.errors import ConfigError

__all__ = ["MIN_FREE_MB", "atomic_write_text", "check_writable"]

# A run folder holds a few MB (reports, JUnit, logs, histograms); history and charts are small.
# 50 MB leaves room for a long nightly run without letting a nearly full disk fail late, after
# an hour of load, when nothing can be saved any more.
MIN_FREE_MB = 50


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) all at once: readers never see a partial file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a crash right after must not bring the old file back)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not supported on this platform/filesystem: the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_writable(reports_dir: Path, min_free_mb: int = MIN_FREE_MB) -> None:
    """Raise ConfigError unless ``reports_dir`` exists (or can be made), is writable and has room.

    The audit calls this before any load, so a bad folder fails in a second, not after an hour.
    """
    reports_dir = Path(reports_dir)
    try:
        reports_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(
            f"reports folder {reports_dir}: a file with that name exists, so the folder cannot "
            f"be created; remove the file or choose another with --reports"
        ) from None
    except OSError as e:
        raise ConfigError(
            f"reports folder {reports_dir}: cannot be created ({e.strerror or e}); "
            f"create it yourself, fix its permissions or choose another with --reports"
        ) from None
    if not reports_dir.is_dir():
        raise ConfigError(
            f"reports folder {reports_dir}: is not a folder; choose another with --reports"
        )
    try:
        fd, probe = tempfile.mkstemp(dir=reports_dir, prefix=".write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(
            f"reports folder {reports_dir}: is not writable ({e.strerror or e}); fix its "
            f"permissions or choose another with --reports"
        ) from None
    free_mb = shutil.disk_usage(reports_dir).free / (1024 * 1024)
    if free_mb < min_free_mb:
        raise ConfigError(
            f"reports folder {reports_dir}: only {free_mb:.0f} MB free on its disk, and an audit "
            f"needs at least {min_free_mb} MB for its reports; free some space or choose a "
            f"folder on another disk with --reports"
        )
