"""The history database: every audit of a reports folder in one SQLite file.

``reports/history.sqlite`` (stdlib sqlite3) holds each run (``runs``), its metrics per tier and
endpoint (``metrics``), the samples behind them (``samples``: the steady window's histograms as
buckets, and each window's p95), and the baselines a team pinned (``baselines``). The schema is
versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` brings an older file up to date when
it is opened, and a file newer than this harness is refused rather than guessed at.

Several audits may finish at once on one reports folder (a nightly job and a developer): the
database runs in WAL mode, so readers never block the writer; each run is written in one
``BEGIN IMMEDIATE`` transaction, and a writer waits up to :data:`BUSY_TIMEOUT_S` for another
instead of failing. A file that is not a readable database is reported in one sentence and never
written to, so nothing in it is lost.

The first time a folder's database is opened, the runs of its ``history.jsonl`` (the summary line
every audit has written since before the database) are imported, without metrics.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import asdict, fields
from pathlib import Path

from harness.errors import ConfigError
from harness.history.runs import read_history
from harness.records import Buckets, MetricKey, RunMetrics, RunSummary
from harness.timestamps import iso_utc

__all__ = ["BUSY_TIMEOUT_S", "DB_FILE", "MIGRATIONS", "HistoryError", "HistoryStore", "SCHEMA_VERSION"]

DB_FILE = "history.sqlite"
BUSY_TIMEOUT_S = 30.0

#: One script per schema version: MIGRATIONS[i] takes a database from version i to i + 1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, pack TEXT NOT NULL, profile TEXT NOT NULL,
        started_at REAL, finished_at REAL NOT NULL, verdict TEXT NOT NULL,
        partial INTEGER NOT NULL DEFAULT 0, ready_up_to INTEGER,
        capacity REAL, capacity_low REAL, capacity_high REAL, headroom REAL,
        commit_sha TEXT, branch TEXT, label TEXT, flaw TEXT,
        harness_version TEXT, cores INTEGER, cpu_model TEXT, steal_pct REAL,
        source TEXT NOT NULL DEFAULT 'audit'
    );
    CREATE INDEX runs_by_pack ON runs (pack, profile, finished_at);
    CREATE TABLE metrics (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        tier INTEGER NOT NULL, endpoint TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL,
        PRIMARY KEY (run_id, tier, endpoint, metric)
    );
    CREATE TABLE samples (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        tier INTEGER NOT NULL, endpoint TEXT NOT NULL, kind TEXT NOT NULL,
        buckets TEXT NOT NULL,  -- JSON [[value, count], ...]
        PRIMARY KEY (run_id, tier, endpoint, kind)
    );
    CREATE TABLE baselines (
        pack TEXT NOT NULL, profile TEXT NOT NULL, run_id TEXT NOT NULL, pinned_at TEXT NOT NULL,
        PRIMARY KEY (pack, profile)
    );
    CREATE TABLE imports (source TEXT PRIMARY KEY, runs INTEGER NOT NULL);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# RunSummary field -> runs column, where the names differ ("commit" is an SQL keyword)
_COLUMNS = {"commit": "commit_sha"}


class HistoryError(ConfigError):
    """The history database cannot be read or does not hold what was asked for (exit 2)."""


class HistoryStore:
    """The history database of one reports folder. Use as a context manager."""

    def __init__(self, reports_dir: Path, *, import_jsonl: bool = True) -> None:
        self.reports_dir = Path(reports_dir)
        self.path = self.reports_dir / DB_FILE
        self._db = self._open()
        try:
            self._migrate()
            if import_jsonl:
                self._import_jsonl()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise self._unreadable(exc) from None

    # --- opening -------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA foreign_keys = ON")
            db.row_factory = sqlite3.Row
        except sqlite3.DatabaseError as exc:
            raise self._unreadable(exc) from None
        return db

    def _unreadable(self, exc: Exception) -> HistoryError:
        return HistoryError(
            f"{self.path} is not a readable history database ({exc}); nothing was changed in it: "
            f"move it aside (the next audit starts a new one) or restore it from a backup"
        )

    def _migrate(self) -> None:
        version = self._version()
        if version == SCHEMA_VERSION:
            return
        with self._write():
            version = self._version()  # again, under the write lock: another audit may have migrated it
            for target in range(version, SCHEMA_VERSION):
                for statement in _statements(MIGRATIONS[target]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {target + 1}")

    def _version(self) -> int:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"{self.path} has schema version {version}, newer than this harness's "
                f"{SCHEMA_VERSION}: upgrade scaleready to read it"
            )
        return version

    def _import_jsonl(self) -> None:
        if self._db.execute("SELECT 1 FROM imports WHERE source = 'history.jsonl'").fetchone():
            return
        entries = read_history(self.reports_dir)
        with self._write():
            if self._db.execute("SELECT 1 FROM imports WHERE source = 'history.jsonl'").fetchone():
                return  # another process imported it while this one waited
            for e in entries:
                run = RunSummary(
                    run_id=e.run_id, pack=e.pack, profile=e.profile,
                    finished_at=_unix(e.finished_at), started_at=_unix(e.started_at) if e.started_at else None,
                    verdict=e.verdict, partial=e.partial, ready_up_to=e.ready_up_to,
                    capacity=e.predicted_customers, headroom=e.headroom, source="history.jsonl",
                )  # fmt: skip
                self._insert_run(run, replace=False)
            self._db.execute("INSERT INTO imports (source, runs) VALUES ('history.jsonl', ?)", (len(entries),))

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock at once, so two audits finishing together queue up
        # (busy_timeout) instead of one failing halfway through its transaction.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------------

    def add_run(self, measured: RunMetrics) -> None:
        """Store a run with its metrics and samples (a run stored again replaces itself)."""
        run_id = measured.run.run_id
        try:
            with self._write():
                self._insert_run(measured.run, replace=True)
                self._db.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
                self._db.execute("DELETE FROM samples WHERE run_id = ?", (run_id,))
                self._db.executemany(
                    "INSERT INTO metrics (run_id, tier, endpoint, metric, value) VALUES (?, ?, ?, ?, ?)",
                    [(run_id, t, e, m, float(v)) for (t, e, m), v in measured.values.items()],
                )
                self._db.executemany(
                    "INSERT INTO samples (run_id, tier, endpoint, kind, buckets) VALUES (?, ?, ?, ?, ?)",
                    [(run_id, t, e, k, json.dumps([list(b) for b in buckets]))
                     for (t, e, k), buckets in measured.samples.items()],
                )  # fmt: skip
        except sqlite3.DatabaseError as exc:
            raise self._unreadable(exc) from None

    def _insert_run(self, run: RunSummary, *, replace: bool) -> None:
        data = asdict(run)
        data["partial"] = int(run.partial)
        columns = [_COLUMNS.get(k, k) for k in data]
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        self._db.execute(
            f"{verb} INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            list(data.values()),
        )

    def pin_baseline(self, run_id: str) -> RunSummary:
        """Make ``run_id`` its pack's and profile's baseline, whatever its verdict."""
        run = self.run(run_id)
        with self._write():
            self._db.execute(
                "INSERT OR REPLACE INTO baselines (pack, profile, run_id, pinned_at) VALUES (?, ?, ?, datetime('now'))",
                (run.pack, run.profile, run.run_id),
            )
        return run

    def unpin_baseline(self, pack: str, profile: str) -> bool:
        with self._write():
            cur = self._db.execute("DELETE FROM baselines WHERE pack = ? AND profile = ?", (pack, profile))
        return cur.rowcount > 0

    # --- reading -------------------------------------------------------------------------------

    def runs(self, *, pack: str | None = None, profile: str | None = None, limit: int | None = None) -> list[RunSummary]:
        """Runs oldest first (the newest ``limit`` of them)."""
        where, args = _where(pack=pack, profile=profile)
        sql = f"SELECT * FROM runs {where} ORDER BY finished_at DESC, run_id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return list(reversed([_run(row) for row in self._rows(sql, args)]))

    def run(self, run_id: str) -> RunSummary:
        sql = "SELECT * FROM runs WHERE run_id = ?"
        rows = self._rows(sql, (run_id,))
        if not rows:
            newest = self.runs(limit=1)
            example = f" (the newest is {newest[0].run_id})" if newest else " (it holds no runs yet)"
            raise HistoryError(f"no run {run_id} in {self.path}: give a run id that `scaleready history` lists{example}")
        return _run(rows[0])

    def metrics(self, run_id: str) -> RunMetrics:
        run = self.run(run_id)
        values = {(t, e, m): v for t, e, m, v in
                  self._rows("SELECT tier, endpoint, metric, value FROM metrics WHERE run_id = ?", (run_id,))}  # fmt: skip
        samples: dict[MetricKey, Buckets] = {
            (t, e, k): tuple((float(v), int(c)) for v, c in json.loads(b))
            for t, e, k, b in self._rows("SELECT tier, endpoint, kind, buckets FROM samples WHERE run_id = ?", (run_id,))
        }
        return RunMetrics(run=run, values=values, samples=samples)

    def series(self, metric: str, *, pack: str, profile: str | None = None, tier: int = 0,
               endpoint: str = "*", before: str | None = None) -> list[tuple[RunSummary, float]]:  # fmt: skip
        """One metric's value in each run that has it, oldest first (runs before ``before`` only)."""
        runs = [r for r in self.runs(pack=pack, profile=profile) if before is None or r.run_id < before]
        found = dict(tuple(row) for row in self._rows(
            "SELECT m.run_id, m.value FROM metrics m JOIN runs r ON r.run_id = m.run_id "
            "WHERE r.pack = ? AND m.tier = ? AND m.endpoint = ? AND m.metric = ?",
            (pack, tier, endpoint, metric)))  # fmt: skip
        return [(r, float(found[r.run_id])) for r in runs if r.run_id in found]

    def metric_keys(self, *, pack: str, profile: str | None = None) -> list[MetricKey]:
        where, args = _where(pack=pack, profile=profile, table="r")
        return [(int(row[0]), str(row[1]), str(row[2])) for row in self._rows(
            f"SELECT DISTINCT m.tier, m.endpoint, m.metric FROM metrics m JOIN runs r ON r.run_id = m.run_id {where} "
            "ORDER BY m.tier, m.endpoint, m.metric", args)]  # fmt: skip

    def pinned_baseline(self, pack: str, profile: str) -> str | None:
        rows = self._rows("SELECT run_id FROM baselines WHERE pack = ? AND profile = ?", (pack, profile))
        return str(rows[0][0]) if rows else None

    def baseline_for(self, pack: str, profile: str, *, before: str | None = None) -> RunSummary | None:
        """The run a new run of ``pack`` and ``profile`` is compared with: the pinned baseline,
        else the last READY, complete audit of them (before ``before``, a run id)."""
        pinned = self.pinned_baseline(pack, profile)
        if pinned is not None and pinned != before:
            with contextlib.suppress(HistoryError):
                return self.run(pinned)
        candidates = [r for r in self.runs(pack=pack, profile=profile)
                      if r.verdict == "READY" and not r.partial and r.source == "audit" and r.flaw in (None, "none")
                      and (before is None or r.run_id < before)]  # fmt: skip
        return candidates[-1] if candidates else None

    def _rows(self, sql: str, args: Sequence[object]) -> list[sqlite3.Row]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._unreadable(exc) from None


def _statements(script: str) -> list[str]:
    """A migration script's statements (none of ours has a ';' or '--' inside a string);
    executescript would commit the transaction the migration runs in."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _where(*, pack: str | None, profile: str | None, table: str = "") -> tuple[str, list[object]]:
    prefix = f"{table}." if table else ""
    clauses: list[str] = []
    args: list[object] = []
    if pack is not None:
        clauses.append(f"{prefix}pack = ?")
        args.append(pack)
    if profile is not None:
        clauses.append(f"{prefix}profile = ?")
        args.append(profile)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


_FIELDS = {f.name for f in fields(RunSummary)}
_BY_COLUMN = {v: k for k, v in _COLUMNS.items()}


def _run(row: sqlite3.Row) -> RunSummary:
    data = {_BY_COLUMN.get(n, n): row[n] for n in row.keys()}  # noqa: SIM118 - a Row iterates its values
    data = {k: v for k, v in data.items() if k in _FIELDS}
    data["partial"] = bool(data.get("partial"))
    return RunSummary(**data)  # type: ignore[arg-type]


def _unix(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def finished_iso(run: RunSummary) -> str:
    """The run's finish time as ISO 8601 UTC, for tables."""
    return iso_utc(run.finished_at) or ""
