"""``python -m booking_service --port PORT --db FILE [--flaw NAME] [--host 127.0.0.1]``

Env: ``DATABASE_URL=postgresql://...`` uses PostgreSQL instead of the SQLite file;
``BOOKING_FLAW=NAME[,NAME]`` is the same as ``--flaw``.
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

    from booking_service.app import create_asgi

    app = create_asgi(settings)
    names = ", ".join(sorted(f.value for f in flaws)) or "none"
    where = "PostgreSQL" if database_url else str(settings.db_path)
    print(f"booking_service: http://{args.host}:{args.port} db={where} flaws={names}", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        workers=1,
        access_log=args.access_log,
        log_level="warning",
        backlog=4096,
        timeout_keep_alive=30,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
