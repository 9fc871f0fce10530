"""The run history of a reports folder: run ids and folders, history.jsonl, and the database.

``runs``   run ids, run folders, history.jsonl and LATEST (the summary line of every audit)
``rows``   what of an audit record the database keeps: a run row, its metrics and samples
``store``  the SQLite database (reports/history.sqlite): schema, migrations, reads and writes
"""

from harness.history.runs import (
    HISTORY_FILE,
    LATEST_FILE,
    LOCK_FILE,
    HistoryEntry,
    create_run_dir,
    entry_for,
    latest_run_id,
    new_run_id,
    read_history,
    record_run,
)

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
