"""Files the harness writes: atomically, and only into a reports folder checked up front."""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.files import atomic_write_text, check_writable


def test_a_crash_while_writing_keeps_the_previous_file_whole_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "scorecard.json"
    atomic_write_text(target, '{"verdict": "READY"}\n')

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write_text(target, '{"verdict": "NOT READY", "half": ')
    assert target.read_text() == '{"verdict": "READY"}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["scorecard.json"]


def test_written_reports_are_readable_by_others(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "x.md", "hello")
    assert (tmp_path / "x.md").stat().st_mode & 0o777 == 0o644


def test_check_writable_creates_a_missing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "reports"
    check_writable(folder)
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_check_writable_explains_a_folder_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"reports folder .*file/reports: cannot be created"):
        check_writable(tmp_path / "file" / "reports")


def test_check_writable_explains_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "reports").write_text("x")
    with pytest.raises(ConfigError, match="a file with that name exists"):
        check_writable(tmp_path / "reports")


def test_check_writable_explains_a_folder_it_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)  # root can write anywhere: simulate it
    with pytest.raises(ConfigError, match=r"is not writable \(Permission denied\)"):
        check_writable(tmp_path)


def test_check_writable_refuses_a_nearly_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**10, 10**10, 12 * 1024 * 1024))
    with pytest.raises(ConfigError, match="only 12 MB free .* at least 50 MB"):
        check_writable(tmp_path)
