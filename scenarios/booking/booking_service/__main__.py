"""``python -m booking_service --port PORT --db FILE [--flaw NAME] [--host 127.0.0.1] [--workers N]``

Env: ``DATABASE_URL=postgresql://...`` uses PostgreSQL instead of the SQLite file;
``BOOKING_FLAW=NAME[,NAME]`` is the same as ``--flaw``; ``WEB_CONCURRENCY=N`` (uvicorn's and
gunicorn's convention) is the same as ``--workers N``: N worker processes behind one socket, each
with its own connection pool (use it with PostgreSQL: SQLite's one writer is the bottleneck then).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from booking_service.flaws import DESCRIPTIONS, UnknownFlawError, parse_flaws
from booking_service.settings import parse_slowdown
from booking_service.settings import Settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m booking_service",
        description="The booking demo service (one uvicorn worker).",
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--db", type=Path, help="SQLite file (created if missing); not used with DATABASE_URL")
    p.add_argument(
        "--flaw", action="append", default=[], metavar="NAME",
        help="start with a named flaw (repeatable; 'none' = healthy); see --list-flaws",
    )  # fmt: skip
    p.add_argument("--list-flaws", action="store_true", help="print the flaws and exit")
    p.add_argument("--access-log", action="store_true", help="log every request (costs CPU)")
    p.add_argument(
        "--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY") or 1), metavar="N",
        help="worker processes (default: $WEB_CONCURRENCY or 1)",
    )  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list_flaws:
        for flaw, text in DESCRIPTIONS.items():
            print(f"{flaw.value:24} {text}")
        return 0
    env_flaw = os.environ.get("BOOKING_FLAW", "")
    try:
        flaws = parse_flaws([*args.flaw, env_flaw])
    except UnknownFlawError as exc:
        print(f"booking_service: {exc}", file=sys.stderr)
        return 2
    database_url = os.environ.get("DATABASE_URL") or None
    if database_url is None and args.db is None:
        print(
            "booking_service: no database: pass --db PATH (an SQLite file) "
            "or set DATABASE_URL=postgresql://...",
            file=sys.stderr,
        )
        return 2
    try:
        slowdown = parse_slowdown(os.environ.get("BOOKING_SLOWDOWN", ""))
    except ValueError as exc:
        print(f"booking_service: {exc}", file=sys.stderr)
        return 2
    settings = Settings(
        db_path=args.db.resolve() if args.db else None,
        database_url=database_url,
        flaws=flaws,
        slowdown_ms=slowdown,
    )

    import uvicorn

    from booking_service.app import SETTINGS_ENV, create_asgi, create_from_env

    names = ", ".join(sorted(f.value for f in flaws)) or "none"
    where = "PostgreSQL" if database_url else str(settings.db_path)
    print(
        f"booking_service: http://{args.host}:{args.port} db={where} flaws={names} workers={args.workers}",
        flush=True,
    )
    options: dict[str, object] = {
        "host": args.host, "port": args.port, "access_log": args.access_log, "log_level": "warning",
        "backlog": 4096, "timeout_keep_alive": 30,
    }  # fmt: skip
    if args.workers > 1:
        # uvicorn's supervisor starts each worker from an import string: the settings travel in
        # the environment the workers inherit.
        os.environ[SETTINGS_ENV] = settings.to_env()
        uvicorn.run(f"{create_from_env.__module__}:{create_from_env.__name__}", factory=True,
                    workers=args.workers, **options)  # type: ignore[arg-type]  # fmt: skip
    else:
        uvicorn.run(create_asgi(settings), workers=1, **options)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
