"""A small invoicing SaaS: the second domain the harness's own tests audit (companies are the
customers). ``python -m invoicing_service --port PORT --db FILE [--host 127.0.0.1]``.

FastAPI on uvicorn, one SQLite file, one process. Every endpoint but ``/health``, ``POST
/companies`` and ``POST /tokens`` needs ``Authorization: Bearer <token>``; a missing, unknown
or expired token is a 401.

Tokens expire ``INVOICING_TOKEN_TTL_S`` seconds (default 3600) after they are issued.
``INVOICING_FLAW=lost-count`` (the pack's ``--flaw lost-count``) counts a company's invoices by
read-modify-write across two transactions, so invoices raised at the same moment are counted
once: a lost update that only overlapping writes for one company show.

Endpoints (JSON in and out):

* ``GET /health`` -> 200 ``{"status": "ok"}``.
* ``POST /companies`` ``{"name", "marker"}`` -> 201 ``{"id", "name", "marker", "api_key"}``:
  sign up. The api key only buys tokens.
* ``POST /tokens`` with header ``X-API-Key`` -> 201 ``{"token", "expires_at", "expires_in"}``
  (``expires_at`` in unix seconds); a wrong key is a 401. Earlier tokens stay valid until they
  expire.
* ``GET /company`` -> 200 the caller's company ``{"id", "name", "marker", "invoices_raised"}``,
  the last the number of invoices it has raised (its plan's metered usage).
* ``POST /invoices`` ``{"client", "amount_cents"}`` -> 201 ``{"id", "company_marker", "client",
  "amount_cents", "status": "open"}``; ``GET /invoices/{id}`` -> 200 the caller's invoice,
  404 for another company's; ``GET /invoices?limit=N`` -> the caller's newest invoices.
* The public feed, which every company reads: ``POST /feed`` ``{"text"}`` -> 201 ``{"id",
  "company", "company_marker", "text"}``; ``GET /feed?limit=N`` -> 200 the newest posts of all
  companies, each with its author's name and marker.
* The shared work queue: a company submits a job, a worker of any company takes and finishes it.
  ``POST /jobs`` ``{"payload"}`` -> 201 ``{"id", "company_marker", "payload", "status":
  "queued"}``; ``GET /jobs/{id}`` -> the submitter's view of its job (404 for others).
  ``POST /jobs/take`` -> 200 ``{"id", "company_id", "payload", "status": "taken"}``, the oldest
  queued job of any company, now the caller's to finish; 204 when the queue is empty.
  ``POST /jobs/{id}/finish`` ``{"result"}`` -> 200 ``{"id", "status": "done"}``, only by the
  company that took it (404 otherwise, 409 when already done).
  ``GET /jobs/{id}/receipt`` -> 200 ``{"job_id", "company_marker", "result", "finished_by"}``:
  the receipt belongs to the submitting company (404 for every other, the worker included, and
  while the job is not done).
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at
# definition time, and `Caller` is local to create_app.
import argparse
import os
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

TOKEN_TTL_ENV = "INVOICING_TOKEN_TTL_S"
FLAW_ENV = "INVOICING_FLAW"
FLAWS = ("lost-count",)
DEFAULT_TOKEN_TTL_S = 3600.0
MAX_LIMIT = 100

SCHEMA = """
CREATE TABLE IF NOT EXISTS company (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, marker TEXT NOT NULL, api_key TEXT NOT NULL UNIQUE,
  invoices_raised INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS invoice (
  id INTEGER PRIMARY KEY, company_id INTEGER NOT NULL REFERENCES company(id),
  client TEXT NOT NULL, amount_cents INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'open');
CREATE INDEX IF NOT EXISTS invoice_company ON invoice(company_id, id);
CREATE TABLE IF NOT EXISTS post (
  id INTEGER PRIMARY KEY, company_id INTEGER NOT NULL REFERENCES company(id), text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job (
  id INTEGER PRIMARY KEY, company_id INTEGER NOT NULL REFERENCES company(id),
  payload TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'queued', worker_id INTEGER,
  result TEXT);
CREATE INDEX IF NOT EXISTS job_queue ON job(status, id);
"""


class NewCompany(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    marker: str = Field(default="", max_length=64)


class NewInvoice(BaseModel):
    client: str = Field(min_length=1, max_length=200)
    amount_cents: int = Field(ge=0, le=10**12)


class NewPost(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class NewJob(BaseModel):
    payload: str = Field(min_length=1, max_length=2000)


class Finish(BaseModel):
    result: str = Field(default="", max_length=2000)


class Store:
    """One SQLite connection behind a lock: every request's few queries run one at a time,
    which keeps taking a job from the shared queue atomic without more machinery."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")


class Tokens:
    """Bearer tokens in memory: token -> (company id, unix time it expires)."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._issued: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def issue(self, company_id: int) -> tuple[str, float]:
        token, expires_at = secrets.token_urlsafe(24), time.time() + self.ttl_s
        with self._lock:
            # Expired tokens are dropped as new ones are issued: the map stays as large as the
            # number of live tokens.
            now = time.time()
            for stale in [t for t, (_, exp) in self._issued.items() if exp <= now]:
                del self._issued[stale]
            self._issued[token] = (company_id, expires_at)
        return token, expires_at

    def company(self, token: str) -> int | None:
        with self._lock:
            found = self._issued.get(token)
        if found is None or found[1] <= time.time():
            return None
        return found[0]


def _not_found(what: str) -> HTTPException:
    return HTTPException(404, f"no such {what}")


def create_app(db_path: Path, token_ttl_s: float, flaw: str | None = None) -> FastAPI:
    store = Store(db_path)
    tokens = Tokens(token_ttl_s)
    app = FastAPI(title="Invoicing service", version="1.0")

    def caller(authorization: Annotated[str | None, Header()] = None) -> int:
        scheme, _, token = (authorization or "").partition(" ")
        company = tokens.company(token) if scheme.lower() == "bearer" and token else None
        if company is None:
            raise HTTPException(401, "missing, unknown or expired bearer token")
        return company

    Caller = Annotated[int, Depends(caller)]
    Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]

    def marker_of(conn: sqlite3.Connection, company_id: int) -> str:
        return str(conn.execute("SELECT marker FROM company WHERE id = ?", (company_id,)).fetchone()[0])

    def invoice_body(row: sqlite3.Row, marker: str) -> dict[str, Any]:
        return {"id": row["id"], "company_marker": marker, "client": row["client"],
                "amount_cents": row["amount_cents"], "status": row["status"]}  # fmt: skip

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/companies", status_code=201)
    def sign_up(body: NewCompany) -> dict[str, Any]:
        api_key = secrets.token_urlsafe(24)
        with store.transaction() as conn:
            cur = conn.execute("INSERT INTO company (name, marker, api_key) VALUES (?, ?, ?)",
                               (body.name, body.marker, api_key))  # fmt: skip
        return {"id": cur.lastrowid, "name": body.name, "marker": body.marker, "api_key": api_key}

    @app.post("/tokens", status_code=201)
    def issue_token(x_api_key: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        with store.transaction() as conn:
            row = conn.execute("SELECT id FROM company WHERE api_key = ?", (x_api_key or "",)).fetchone()
        if row is None:
            raise HTTPException(401, "missing or unknown X-API-Key")
        token, expires_at = tokens.issue(int(row["id"]))
        return {"token": token, "expires_at": expires_at, "expires_in": tokens.ttl_s}

    @app.get("/company")
    def company(me: Caller) -> dict[str, Any]:
        with store.transaction() as conn:
            row = conn.execute("SELECT id, name, marker, invoices_raised FROM company WHERE id = ?",
                               (me,)).fetchone()  # fmt: skip
        return dict(row)

    @app.post("/invoices", status_code=201)
    def create_invoice(body: NewInvoice, me: Caller) -> dict[str, Any]:
        if flaw == "lost-count":
            # The usage meter read first, written back after the invoice: another invoice of the
            # same company raised in between is counted once for both.
            with store.transaction() as conn:
                raised = int(conn.execute("SELECT invoices_raised FROM company WHERE id = ?", (me,)).fetchone()[0])
        with store.transaction() as conn:
            cur = conn.execute("INSERT INTO invoice (company_id, client, amount_cents) VALUES (?, ?, ?)",
                               (me, body.client, body.amount_cents))  # fmt: skip
            if flaw == "lost-count":
                conn.execute("UPDATE company SET invoices_raised = ? WHERE id = ?", (raised + 1, me))
            else:
                conn.execute("UPDATE company SET invoices_raised = invoices_raised + 1 WHERE id = ?", (me,))
            row = conn.execute("SELECT * FROM invoice WHERE id = ?", (cur.lastrowid,)).fetchone()
            return invoice_body(row, marker_of(conn, me))

    @app.get("/invoices/{invoice_id}")
    def read_invoice(invoice_id: int, me: Caller) -> dict[str, Any]:
        with store.transaction() as conn:
            row = conn.execute("SELECT * FROM invoice WHERE id = ? AND company_id = ?",
                               (invoice_id, me)).fetchone()  # fmt: skip
            if row is None:
                raise _not_found("invoice")
            return invoice_body(row, marker_of(conn, me))

    @app.get("/invoices")
    def list_invoices(me: Caller, limit: Limit = 20) -> list[dict[str, Any]]:
        with store.transaction() as conn:
            rows = conn.execute("SELECT * FROM invoice WHERE company_id = ? ORDER BY id DESC LIMIT ?",
                                (me, limit)).fetchall()  # fmt: skip
            marker = marker_of(conn, me)
        return [invoice_body(row, marker) for row in rows]

    @app.post("/feed", status_code=201)
    def post(body: NewPost, me: Caller) -> dict[str, Any]:
        with store.transaction() as conn:
            cur = conn.execute("INSERT INTO post (company_id, text) VALUES (?, ?)", (me, body.text))
            author = conn.execute("SELECT name, marker FROM company WHERE id = ?", (me,)).fetchone()
        return {"id": cur.lastrowid, "company": author["name"], "company_marker": author["marker"],
                "text": body.text}  # fmt: skip

    @app.get("/feed")
    def feed(_me: Caller, limit: Limit = 20) -> list[dict[str, Any]]:
        with store.transaction() as conn:
            rows = conn.execute(
                "SELECT post.id, company.name, company.marker, post.text FROM post "
                "JOIN company ON company.id = post.company_id ORDER BY post.id DESC LIMIT ?", (limit,),
            ).fetchall()  # fmt: skip
        return [{"id": r["id"], "company": r["name"], "company_marker": r["marker"], "text": r["text"]}
                for r in rows]  # fmt: skip

    @app.post("/jobs", status_code=201)
    def submit(body: NewJob, me: Caller) -> dict[str, Any]:
        with store.transaction() as conn:
            cur = conn.execute("INSERT INTO job (company_id, payload) VALUES (?, ?)", (me, body.payload))
            marker = marker_of(conn, me)
        return {"id": cur.lastrowid, "company_marker": marker, "payload": body.payload, "status": "queued"}

    @app.get("/jobs/{job_id}")
    def read_job(job_id: int, me: Caller) -> dict[str, Any]:
        with store.transaction() as conn:
            row = conn.execute("SELECT * FROM job WHERE id = ? AND company_id = ?", (job_id, me)).fetchone()
            if row is None:
                raise _not_found("job")
            return {"id": row["id"], "company_marker": marker_of(conn, me), "payload": row["payload"],
                    "status": row["status"]}  # fmt: skip

    @app.post("/jobs/take", response_model=None)
    def take(me: Caller) -> dict[str, Any] | Response:
        with store.transaction() as conn:
            row = conn.execute("SELECT * FROM job WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return Response(status_code=204)
            conn.execute("UPDATE job SET status = 'taken', worker_id = ? WHERE id = ?", (me, row["id"]))
        return {"id": row["id"], "company_id": row["company_id"], "payload": row["payload"], "status": "taken"}

    @app.post("/jobs/{job_id}/finish")
    def finish(job_id: int, body: Finish, me: Caller) -> dict[str, Any]:
        with store.transaction() as conn:
            row = conn.execute("SELECT status FROM job WHERE id = ? AND worker_id = ?", (job_id, me)).fetchone()
            if row is None:
                raise _not_found("job taken by this company")
            if row["status"] == "done":
                raise HTTPException(409, "job already done")
            conn.execute("UPDATE job SET status = 'done', result = ? WHERE id = ?", (body.result, job_id))
        return {"id": job_id, "status": "done"}

    @app.get("/jobs/{job_id}/receipt")
    def receipt(job_id: int, me: Caller) -> dict[str, Any]:
        with store.transaction() as conn:
            row = conn.execute("SELECT * FROM job WHERE id = ? AND company_id = ? AND status = 'done'",
                               (job_id, me)).fetchone()  # fmt: skip
            if row is None:
                raise _not_found("receipt")
            return {"job_id": row["id"], "company_marker": marker_of(conn, me), "result": row["result"],
                    "finished_by": row["worker_id"]}  # fmt: skip

    return app


def token_ttl_s(environ: Mapping[str, str] = os.environ) -> float:
    text = environ.get(TOKEN_TTL_ENV, "")
    try:
        ttl = float(text) if text else DEFAULT_TOKEN_TTL_S
    except ValueError:
        ttl = -1.0
    if ttl <= 0:
        raise ValueError(f"{TOKEN_TTL_ENV}={text!r}: not a positive number of seconds; write e.g. {TOKEN_TTL_ENV}=15")
    return ttl


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m invoicing_service", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--db", type=Path, required=True, help="SQLite file (created if missing)")
    args = parser.parse_args(argv)
    try:
        ttl = token_ttl_s()
    except ValueError as exc:
        print(f"invoicing_service: {exc}", file=sys.stderr)
        return 2
    flaw = os.environ.get(FLAW_ENV, "") or None
    if flaw is not None and flaw not in FLAWS:
        print(f"invoicing_service: {FLAW_ENV}={flaw!r} is not a flaw; known: {', '.join(FLAWS)}", file=sys.stderr)
        return 2
    import uvicorn

    print(f"invoicing_service: http://{args.host}:{args.port} db={args.db} token_ttl_s={ttl:g} flaw={flaw}",
          flush=True)  # fmt: skip
    uvicorn.run(create_app(args.db.resolve(), ttl, flaw), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
