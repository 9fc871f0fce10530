"""The booking service's use cases, as SQL over a pooled connection.

Functions take a connection and the caller's `Clinic` and return plain dicts shaped like the
API's responses; every query is scoped to the caller's clinic. Flaw branches (``Flaw.X``) sit
exactly where the mistake would be made.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import threading
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from booking_service import scheduling
from booking_service.db import Database, UniqueViolation
from booking_service.flaws import Flaw
from booking_service.settings import Settings


class NotFound(Exception):
    """The resource does not exist, or belongs to another clinic (the caller cannot tell)."""


class Conflict(Exception):
    """The slot is already booked."""


class Invalid(Exception):
    """Well-formed input that the domain refuses (e.g. a start outside opening hours)."""


@dataclass(frozen=True, slots=True)
class Clinic:
    id: int
    name: str
    timezone: str
    opening_hours: dict[str, list[str] | None]
    marker: str | None

    def out(self, api_key: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "name": self.name, "timezone": self.timezone,
            "opening_hours": self.opening_hours, "marker": self.marker,
        }  # fmt: skip
        if api_key is not None:
            body["api_key"] = api_key
        return body


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _one_writer_at_a_time(method: _Method) -> _Method:
    """global-lock: the whole write use case (its checks, queries, commit and fsync'd audit
    line) runs under the service-wide lock, so every write waits for every other."""

    @functools.wraps(method)
    def serialised(self: Store, conn: Any, *args: Any, **kwargs: Any) -> Any:
        if Flaw.GLOBAL_LOCK not in self.flaws:
            return method(self, conn, *args, **kwargs)
        with self._write_lock.held(conn):
            return method(self, conn, *args, **kwargs)

    return serialised  # type: ignore[return-value]


class _WriteLock:
    """global-lock: one lock for every writer of the service. Within a process a reentrant
    thread lock; on PostgreSQL also a session advisory lock on the request's connection, so the
    worker processes of ``--workers N`` wait for each other too (a lock in the database, as such
    code takes it once it runs on more than one process). Both are reentrant: the transaction
    inside a write use case takes it again."""

    KEY = 720_917  # pg_advisory_lock's key: any constant the service's writers agree on

    def __init__(self, across_processes: bool) -> None:
        self._thread = threading.RLock()
        self._across_processes = across_processes

    def __enter__(self) -> None:  # the in-process part alone (tests hold it as another request)
        self._thread.acquire()

    def __exit__(self, *exc: object) -> None:
        self._thread.release()

    @contextmanager
    def held(self, conn: Any) -> Iterator[None]:
        with self._thread:
            if self._across_processes:
                conn.one("SELECT pg_advisory_lock(?)", (self.KEY,))
            try:
                yield
            finally:
                if self._across_processes:
                    conn.one("SELECT pg_advisory_unlock(?)", (self.KEY,))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _clinic(row: Any) -> Clinic:
    return Clinic(
        id=int(row["id"]),
        name=row["name"],
        timezone=row["timezone"],
        opening_hours=json.loads(row["opening_hours"]),
        marker=row["marker"],
    )


class Store:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.flaws = settings.flaws
        # global-lock: "SQLite said 'database is locked' once, so all writes go through one
        # lock, taken when a write use case starts; and the audit line must be on disk, in
        # commit order, before we answer." Reentrant: the transaction takes it again.
        self._write_lock = _WriteLock(across_processes=settings.backend == "postgresql")
        state_dir = settings.state_dir or (
            settings.db_path.parent if settings.db_path else Path.cwd()
        )
        self._audit_path = state_dir / "audit.log"
        self._pending = threading.local()  # pool-exhaustion: audit rows awaiting their commit

    # --- clinics and keys ---------------------------------------------------------------------

    @_one_writer_at_a_time
    def create_clinic(self, conn: Any, body: Any) -> dict[str, Any]:
        api_key = "bk_" + secrets.token_urlsafe(24)
        hours = body.opening_hours.as_dict() if body.opening_hours else scheduling.DEFAULT_OPENING_HOURS
        with self._writing(conn):
            clinic_id = conn.insert(
                "INSERT INTO clinics (name, timezone, opening_hours, marker, api_key, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (body.name, body.timezone, json.dumps(hours), body.marker, api_key, _now()),
            )
            conn.execute(
                "INSERT INTO clinic_usage (clinic_id, bookings_made, updated_at) VALUES (?, 0, ?)",
                (clinic_id, _now()),
            )
        return Clinic(clinic_id, body.name, body.timezone, dict(hours), body.marker).out(api_key)

    def clinic_by_key(self, conn: Any, api_key: str) -> Clinic | None:
        row = conn.one(
            "SELECT id, name, timezone, opening_hours, marker FROM clinics WHERE api_key = ?",
            (api_key,),
        )
        return _clinic(row) if row else None

    # --- practitioners ------------------------------------------------------------------------

    @staticmethod
    def _practitioner(row: Any, clinic: Clinic) -> dict[str, Any]:
        return {
            "id": row["id"], "name": row["name"], "specialty": row["specialty"],
            "slot_minutes": row["slot_minutes"], "clinic_marker": clinic.marker,
        }  # fmt: skip

    @_one_writer_at_a_time
    def create_practitioner(self, conn: Any, clinic: Clinic, body: Any) -> dict[str, Any]:
        with self._writing(conn):
            pid = conn.insert(
                "INSERT INTO practitioners (clinic_id, name, specialty, slot_minutes, created_at) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (clinic.id, body.name, body.specialty, body.slot_minutes, _now()),
            )
            self._audit(conn, clinic, "practitioner.create", pid)
        return {
            "id": pid, "name": body.name, "specialty": body.specialty,
            "slot_minutes": body.slot_minutes, "clinic_marker": clinic.marker,
        }  # fmt: skip

    def list_practitioners(self, conn: Any, clinic: Clinic) -> list[dict[str, Any]]:
        rows = conn.all(
            "SELECT id, name, specialty, slot_minutes FROM practitioners WHERE clinic_id = ? "
            "ORDER BY id",
            (clinic.id,),
        )
        return [self._practitioner(r, clinic) for r in rows]

    def _get_practitioner(self, conn: Any, clinic: Clinic, pid: int) -> Any:
        row = conn.one(
            "SELECT id, name, specialty, slot_minutes FROM practitioners "
            "WHERE id = ? AND clinic_id = ?",
            (pid, clinic.id),
        )
        if row is None:
            raise NotFound(f"practitioner {pid} not found")
        return row

    # --- patients -----------------------------------------------------------------------------

    @staticmethod
    def _patient(row: Any, clinic: Clinic) -> dict[str, Any]:
        return {
            "id": row["id"], "name": row["name"], "email": row["email"], "phone": row["phone"],
            "birth_date": row["birth_date"], "clinic_marker": clinic.marker,
        }  # fmt: skip

    def _patient_row(self, clinic: Clinic, p: Any) -> tuple[Any, ...]:
        return (clinic.id, p.name, scheduling.name_key(p.name), p.email, p.phone, p.birth_date, _now())

    _INSERT_PATIENT = (
        "INSERT INTO patients (clinic_id, name, name_key, email, phone, birth_date, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"
    )

    @_one_writer_at_a_time
    def create_patient(self, conn: Any, clinic: Clinic, body: Any) -> dict[str, Any]:
        with self._writing(conn):
            pid = conn.insert(self._INSERT_PATIENT, self._patient_row(clinic, body))
            self._audit(conn, clinic, f"patient.create {self._initials(body.name)}", pid)
        return {
            "id": pid, "name": body.name, "email": body.email, "phone": body.phone,
            "birth_date": body.birth_date, "clinic_marker": clinic.marker,
        }  # fmt: skip

    def _initials(self, name: str) -> str:
        """"Ada Lovelace" -> "A.L.", for the audit trail (no full names in logs)."""
        if Flaw.CRASH_ON_ODD_INPUT in self.flaws:
            # Written for "First Last" names typed on an English keyboard: a name with no
            # letters-and-space shape, or any non-ASCII letter, raises here -> 500.
            first, *_, last = name.split(" ")
            return f"{first[0]}.{last[0]}.".upper().encode("ascii").decode("ascii")
        parts = name.split()
        letters = [unicodedata.normalize("NFC", p)[0] for p in parts[:2]]
        return "".join(f"{c.upper()}." for c in letters)

    @_one_writer_at_a_time
    def import_patients(self, conn: Any, clinic: Clinic, patients: list[Any]) -> dict[str, Any]:
        ids: list[int] = []
        with self._writing(conn):
            for p in patients:
                ids.append(conn.insert(self._INSERT_PATIENT, self._patient_row(clinic, p)))
            self._audit(conn, clinic, f"patient.import {len(ids)}", None)
        return {"created": len(ids), "ids": ids}

    def get_patient(self, conn: Any, clinic: Clinic, pid: int) -> dict[str, Any]:
        row = conn.one(
            "SELECT id, name, email, phone, birth_date FROM patients WHERE id = ? AND clinic_id = ?",
            (pid, clinic.id),
        )
        if row is None:
            raise NotFound(f"patient {pid} not found")
        return self._patient(row, clinic)

    def search_patients(self, conn: Any, clinic: Clinic, q: str, limit: int) -> list[dict[str, Any]]:
        key = scheduling.name_key(q)
        pattern = "%" + key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        if Flaw.TENANT_LEAK in self.flaws:
            # Moved to a "shared search helper" for the admin console; the clinic filter stayed
            # behind in the old function.
            rows = conn.all(
                "SELECT id, name, email, phone, birth_date, clinic_id FROM patients "
                "WHERE name_key LIKE ? ESCAPE '\\' ORDER BY name_key, id LIMIT ?",
                (pattern, limit),
            )
            markers = self._markers(conn, {r["clinic_id"] for r in rows})
            return [{**self._patient(r, clinic), "clinic_marker": markers.get(r["clinic_id"])} for r in rows]
        if Flaw.MISSING_INDEX in self.flaws:
            # lower() on the column defeats any index, and there is no (clinic_id, ...) index:
            # SQLite walks every clinic's patients for each search.
            rows = conn.all(
                "SELECT id, name, email, phone, birth_date FROM patients "
                "WHERE lower(name_key) LIKE ? ESCAPE '\\' AND clinic_id = ? "
                "ORDER BY name_key, id LIMIT ?",
                (pattern, clinic.id, limit),
            )
            return [self._patient(r, clinic) for r in rows]
        rows = conn.all(
            "SELECT id, name, email, phone, birth_date FROM patients "
            "WHERE clinic_id = ? AND name_key LIKE ? ESCAPE '\\' ORDER BY name_key, id LIMIT ?",
            (clinic.id, pattern, limit),
        )
        return [self._patient(r, clinic) for r in rows]

    def _markers(self, conn: Any, clinic_ids: set[int]) -> dict[int, str | None]:
        return {
            cid: (row["marker"] if row else None)
            for cid in clinic_ids
            for row in [conn.one("SELECT marker FROM clinics WHERE id = ?", (cid,))]
        }

    # --- slots and bookings -------------------------------------------------------------------

    @staticmethod
    def _booking(row: Any, clinic: Clinic) -> dict[str, Any]:
        return {
            "id": row["id"], "practitioner_id": row["practitioner_id"],
            "patient_id": row["patient_id"], "start": row["start"], "end": row["end"],
            # cancelled_at is the source of truth since the "soft cancel" refactor
            "status": "cancelled" if row["cancelled_at"] else row["status"],
            "note": row["note"], "clinic_marker": clinic.marker,
        }  # fmt: skip

    _BOOKING_COLUMNS = 'id, practitioner_id, patient_id, start, "end", status, note, cancelled_at'

    def free_slots(self, conn: Any, clinic: Clinic, pid: int, day: date) -> dict[str, Any]:
        practitioner = self._get_practitioner(conn, clinic, pid)
        slots = scheduling.day_slots(clinic.opening_hours, practitioner["slot_minutes"], day)
        taken: set[str] = set()
        if slots:
            taken = {
                r["start"]
                for r in conn.all(
                    "SELECT start FROM bookings WHERE practitioner_id = ? AND day = ? "
                    "AND status = 'active'",
                    (pid, day.isoformat()),
                )
            }
        return {
            "date": day.isoformat(),
            "practitioner_id": pid,
            "slots": [{"start": s, "end": e} for s, e in slots if s not in taken],
        }

    # --- usage (metered billing) ---------------------------------------------------------------

    def usage(self, conn: Any, clinic: Clinic) -> dict[str, Any]:
        row = conn.one("SELECT bookings_made FROM clinic_usage WHERE clinic_id = ?", (clinic.id,))
        return {"bookings_made": int(row["bookings_made"]) if row else 0, "clinic_marker": clinic.marker}

    def _count_booking(self, conn: Any, clinic: Clinic, usage_read: dict[str, Any] | None) -> None:
        """One more booking made on the clinic's invoice, in the booking's transaction."""
        if usage_read is not None:
            # lost-update: the usage was loaded when the request started and is saved back
            # plus one, the way the ORM code did it (usage.bookings_made += 1; usage.save()).
            # A booking of the same clinic committed in between is overwritten.
            conn.execute(
                "UPDATE clinic_usage SET bookings_made = ?, updated_at = ? WHERE clinic_id = ?",
                (usage_read["bookings_made"] + 1, _now(), clinic.id),
            )
            return
        conn.execute(
            "UPDATE clinic_usage SET bookings_made = bookings_made + 1, updated_at = ? WHERE clinic_id = ?",
            (_now(), clinic.id),
        )

    @_one_writer_at_a_time
    def create_booking(self, conn: Any, clinic: Clinic, body: Any) -> dict[str, Any]:
        start = scheduling.parse_start(body.start)
        day = start.date()
        # lost-update: the invoice's usage, loaded up front with the rest of the request's data.
        usage_read = self.usage(conn, clinic) if Flaw.LOST_UPDATE in self.flaws else None
        if Flaw.DOUBLE_BOOKING in self.flaws:
            # "Check availability first, then book": two requests can both pass the check.
            if conn.one(
                "SELECT id FROM bookings WHERE practitioner_id = ? AND start = ? AND status = 'active'",
                (body.practitioner_id, body.start),
            ):
                raise Conflict(f"{body.start} is already booked")
        practitioner = self._get_practitioner(conn, clinic, body.practitioner_id)
        if not conn.one(
            "SELECT id FROM patients WHERE id = ? AND clinic_id = ?", (body.patient_id, clinic.id)
        ):
            raise NotFound(f"patient {body.patient_id} not found")
        slots = dict(scheduling.day_slots(clinic.opening_hours, practitioner["slot_minutes"], day))
        end = slots.get(body.start)
        if end is None:
            raise Invalid(
                f"{body.start} is not a slot of practitioner {body.practitioner_id}: the clinic is "
                f"closed then, or it is not on the {practitioner['slot_minutes']}-minute grid"
            )
        try:
            with self._writing(conn):
                bid = conn.insert(
                    'INSERT INTO bookings (clinic_id, practitioner_id, patient_id, day, start, "end", '
                    "status, note, created_at) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?) RETURNING id",
                    (clinic.id, body.practitioner_id, body.patient_id, day.isoformat(), body.start,
                     end, body.note, _now()),
                )  # fmt: skip
                self._count_booking(conn, clinic, usage_read)
                self._audit(conn, clinic, "booking.create", bid)
        except UniqueViolation:
            raise Conflict(f"{body.start} is already booked") from None
        return {
            "id": bid, "practitioner_id": body.practitioner_id, "patient_id": body.patient_id,
            "start": body.start, "end": end, "status": "active", "note": body.note,
            "clinic_marker": clinic.marker,
        }  # fmt: skip

    def get_booking(self, conn: Any, clinic: Clinic, bid: int) -> dict[str, Any]:
        row = conn.one(
            f"SELECT {self._BOOKING_COLUMNS} FROM bookings WHERE id = ? AND clinic_id = ?",
            (bid, clinic.id),
        )
        if row is None:
            raise NotFound(f"booking {bid} not found")
        return self._booking(row, clinic)

    def list_bookings(
        self, conn: Any, clinic: Clinic, day: date, pid: int | None
    ) -> list[dict[str, Any]]:
        if pid is None:
            rows = conn.all(
                f"SELECT {self._BOOKING_COLUMNS} FROM bookings WHERE clinic_id = ? AND day = ? "
                "ORDER BY start, id",
                (clinic.id, day.isoformat()),
            )
        else:
            self._get_practitioner(conn, clinic, pid)
            rows = conn.all(
                f"SELECT {self._BOOKING_COLUMNS} FROM bookings WHERE clinic_id = ? AND day = ? "
                "AND practitioner_id = ? ORDER BY start, id",
                (clinic.id, day.isoformat(), pid),
            )
        return [self._booking(r, clinic) for r in rows]

    @_one_writer_at_a_time
    def cancel_booking(self, conn: Any, clinic: Clinic, bid: int) -> dict[str, Any]:
        with self._writing(conn):
            row = conn.one(
                f"SELECT {self._BOOKING_COLUMNS} FROM bookings WHERE id = ? AND clinic_id = ?",
                (bid, clinic.id),
            )
            if row is None:
                raise NotFound(f"booking {bid} not found")
            if not row["cancelled_at"] and row["status"] == "active":
                if Flaw.FUNCTIONAL_REGRESSION in self.flaws:
                    # The soft-cancel refactor: cancelled_at now says "cancelled"... but the
                    # status column, which the slot index and /slots read, stays 'active'.
                    conn.execute("UPDATE bookings SET cancelled_at = ? WHERE id = ?", (_now(), bid))
                else:
                    conn.execute(
                        "UPDATE bookings SET status = 'cancelled', cancelled_at = ? WHERE id = ?",
                        (_now(), bid),
                    )
                self._audit(conn, clinic, "booking.cancel", bid)
                row = conn.one(f"SELECT {self._BOOKING_COLUMNS} FROM bookings WHERE id = ?", (bid,))
        return self._booking(row, clinic)

    # --- reports ------------------------------------------------------------------------------

    def daily_report(self, conn: Any, clinic: Clinic, day: date) -> dict[str, Any]:
        if Flaw.N_PLUS_ONE in self.flaws:
            return self._daily_report_one_by_one(conn, clinic, day)
        practitioners = conn.all(
            "SELECT id, name, slot_minutes FROM practitioners WHERE clinic_id = ? ORDER BY id",
            (clinic.id,),
        )
        counts = conn.all(
            "SELECT practitioner_id, status, COUNT(*) AS n FROM bookings "
            "WHERE clinic_id = ? AND day = ? GROUP BY practitioner_id, status",
            (clinic.id, day.isoformat()),
        )
        seen = conn.one(
            "SELECT COUNT(DISTINCT patient_id) AS n FROM bookings "
            "WHERE clinic_id = ? AND day = ? AND status = 'active'",
            (clinic.id, day.isoformat()),
        )
        active: dict[int, int] = {}
        cancelled = 0
        for r in counts:
            if r["status"] == "active":
                active[r["practitioner_id"]] = int(r["n"])
            else:
                cancelled += int(r["n"])
        by_practitioner = []
        for p in practitioners:
            n_slots = len(scheduling.day_slots(clinic.opening_hours, p["slot_minutes"], day))
            n = active.get(p["id"], 0)
            by_practitioner.append({
                "practitioner_id": p["id"], "name": p["name"], "bookings": n,
                "utilisation": round(n / n_slots, 3) if n_slots else 0.0,
            })  # fmt: skip
        return {
            "date": day.isoformat(), "bookings": sum(active.values()), "cancelled": cancelled,
            "patients_seen": int(seen["n"]), "by_practitioner": by_practitioner,
            "clinic_marker": clinic.marker,
        }  # fmt: skip

    def _daily_report_one_by_one(self, conn: Any, clinic: Clinic, day: date) -> dict[str, Any]:
        """The report as the ORM wrote it: lazy loads per booking, per practitioner, per slot."""
        by_practitioner = []
        booking_ids = conn.all(
            "SELECT id FROM bookings WHERE clinic_id = ? AND day = ?", (clinic.id, day.isoformat())
        )
        active = cancelled = 0
        for b in booking_ids:
            booking = conn.one(f"SELECT {self._BOOKING_COLUMNS} FROM bookings WHERE id = ?", (b["id"],))
            conn.one("SELECT * FROM practitioners WHERE id = ?", (booking["practitioner_id"],))
            conn.one("SELECT * FROM patients WHERE id = ?", (booking["patient_id"],))
            if booking["status"] == "active":
                active += 1
            else:
                cancelled += 1
        for p in conn.all("SELECT id FROM practitioners WHERE clinic_id = ? ORDER BY id", (clinic.id,)):
            practitioner = conn.one("SELECT * FROM practitioners WHERE id = ?", (p["id"],))
            slots = scheduling.day_slots(clinic.opening_hours, practitioner["slot_minutes"], day)
            booked = 0
            for start, _end in slots:  # "is this slot taken?" once per slot
                row = conn.one(
                    "SELECT COUNT(*) AS n FROM bookings WHERE clinic_id = ? AND practitioner_id = ? "
                    "AND start = ? AND status = 'active'",
                    (clinic.id, p["id"], start),
                )
                booked += int(row["n"])
            by_practitioner.append({
                "practitioner_id": practitioner["id"], "name": practitioner["name"],
                "bookings": booked, "utilisation": round(booked / len(slots), 3) if slots else 0.0,
            })  # fmt: skip
        # "Patients seen that day": for patient in clinic.patients, patient.bookings lazy-loaded
        # and filtered to the day - one query per patient. The relation's query filters on
        # patient_id alone, which no index covers, so each of them reads the bookings table.
        seen = 0
        for patient in conn.all("SELECT id FROM patients WHERE clinic_id = ?", (clinic.id,)):
            if conn.one(
                "SELECT id FROM bookings WHERE patient_id = ? AND day = ? AND status = 'active' LIMIT 1",
                (patient["id"], day.isoformat()),
            ):
                seen += 1
        return {
            "date": day.isoformat(), "bookings": active, "cancelled": cancelled,
            "patients_seen": seen, "by_practitioner": by_practitioner,
            "clinic_marker": clinic.marker,
        }  # fmt: skip

    # --- writes: transaction and audit --------------------------------------------------------

    def _writing(self, conn: Any) -> Any:
        if Flaw.GLOBAL_LOCK in self.flaws:
            return _LockedTransaction(self._write_lock, conn, self._audit_path)
        if Flaw.POOL_EXHAUSTION in self.flaws:
            return _AuditOnItsOwnConnection(self.db, conn, self._pending)
        return conn.transaction()

    def _audit(self, conn: Any, clinic: Clinic, action: str, entity_id: int | None) -> None:
        row = (clinic.id, action, entity_id, _now())
        if Flaw.POOL_EXHAUSTION in self.flaws:
            self._pending.rows.append(row)
            return
        conn.execute(_INSERT_AUDIT, row)


_INSERT_AUDIT = "INSERT INTO audit_log (clinic_id, action, entity_id, at) VALUES (?, ?, ?, ?)"


class _AuditOnItsOwnConnection:
    """pool-exhaustion: "an audit row must survive a rolled-back request", so after the commit
    it is written through a second connection taken from the pool while the request still
    holds its first. Four such requests at once and none of them can get a second one."""

    def __init__(self, db: Database, conn: Any, pending: threading.local) -> None:
        self._db, self._conn, self._pending = db, conn, pending
        self._tx: Any = None

    def __enter__(self) -> None:
        self._pending.rows = []
        self._tx = self._conn.transaction()
        self._tx.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._tx.__exit__(*exc)
        rows, self._pending.rows = self._pending.rows, []
        if exc[0] is None and rows:
            with self._db.connection() as audit_conn:
                audit_conn.many(_INSERT_AUDIT, rows)


class _LockedTransaction:
    """global-lock: the service-wide lock around the transaction, its commit, and an fsync'd
    audit line, "so the audit file is in commit order"."""

    def __init__(self, lock: _WriteLock, conn: Any, audit_path: Path) -> None:
        self._held = lock.held(conn)
        self._conn, self._audit_path = conn, audit_path
        self._tx: Any = None

    def __enter__(self) -> None:
        self._held.__enter__()
        try:
            self._tx = self._conn.transaction()
            self._tx.__enter__()
        except BaseException as exc:
            self._held.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def __exit__(self, *exc: Any) -> None:
        try:
            self._tx.__exit__(*exc)
            if exc[0] is None:
                with open(self._audit_path, "a", encoding="utf-8") as log:
                    log.write(f"{_now()} commit\n")
                    log.flush()
                    os.fsync(log.fileno())
        finally:
            self._held.__exit__(None, None, None)
